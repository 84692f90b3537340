/**
 * One row group of the prompt table, encoded on its own (in a worker thread or inline) from a batch's
 * UTF-8 bytes, and appended to the file afterwards by util/parquet-groups.ts's placeRowGroup, which
 * moves its offsets.
 *
 * Each column chunk is one snappy-compressed DATA_PAGE_V2 (hyparquet-writer's page headers, dictionary
 * page and RLE/bit-packing; prompt_id's uncompressed): prompt_id, source_prompt and target_prompt PLAIN; prompt_split, category,
 * instruction, identity_threshold and attributes dictionary-encoded, entries in order of first
 * appearance. The layout is fixed, not chosen from the data, so the bytes depend on the rows only.
 * Statistics (min, max, null count) as hyparquet-writer writes them; no page indexes (one page per chunk).
 */
import { hash } from 'node:crypto';
import { ByteWriter, type SchemaElement } from 'hyparquet-writer';
import { writePageHeader } from 'hyparquet-writer/src/datapage.js';
import { writeDictionaryPage } from 'hyparquet-writer/src/dictionary.js';
import { writeRleBitPackedHybrid } from 'hyparquet-writer/src/encoding.js';
import type { EncodedRowGroup, RowGroupMeta } from '../util/parquet-groups.ts';
import { jsonHead, SEPARATOR, type RowBatch } from './expand.ts';
import { snappyCompress } from './snappy.ts';
import { dataViews } from '../util/data-view.ts';

export const STRING_COLUMNS = ['prompt_id', 'prompt_split', 'category', 'source_prompt', 'instruction', 'target_prompt'] as const;

export const SCHEMA: SchemaElement[] = [
  { name: 'root', num_children: STRING_COLUMNS.length + 2 },
  ...STRING_COLUMNS.map((name) => ({ name, type: 'BYTE_ARRAY' as const, converted_type: 'UTF8' as const, repetition_type: 'REQUIRED' as const })),
  { name: 'identity_threshold', type: 'DOUBLE' as const, repetition_type: 'OPTIONAL' as const },
  // JSON text as plain UTF8, as in the shards: readers that know no JSON logical type see a string.
  { name: 'attributes', type: 'BYTE_ARRAY' as const, converted_type: 'UTF8' as const, repetition_type: 'REQUIRED' as const },
];
export const CREATED_BY = 'pairgen';
/** hyparquet-writer's SNAPPY compressor, same bytes, faster (snappy.ts). */
export const COMPRESSORS = { SNAPPY: snappyCompress };
const HEADER_BYTES = 4; // "PAR1"
const ELEMENT = new Map(SCHEMA.slice(1).map((e) => [e.name, e]));
const SPLITS = ['train', 'eval'];

type Chunk = RowGroupMeta['columns'][number];
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encode a batch of rows (prompt_id computed here) as one row group, as if it started at file offset 4. */
export function encodeRowGroup(b: RowBatch): EncodedRowGroup {
  const n = b.rows;
  if (b.bounds.length !== 4 * n || b.eval.length !== n || b.category.length !== n || b.attributes.length !== n) {
    throw new Error(`parquet columns must have the same length (a batch of ${n} rows)`);
  }
  const w = new ByteWriter(b.text.length + 64 * n + 4096);
  w.appendUint32(0x31524150); // stands for the file's "PAR1", cut off below
  const columns: Chunk[] = [];
  // source = text[a, b), instruction = text[b + 3, c), target = text[c + 3, d) for bounds (a, b, c, d)
  const field = (k: number) => {
    const starts = new Int32Array(n);
    const ends = new Int32Array(n);
    const { bounds } = b;
    for (let i = 0; i < n; i++) {
      starts[i] = bounds[4 * i + k] + (k ? SEPARATOR : 0);
      ends[i] = bounds[4 * i + k + 1];
    }
    return { starts, ends };
  };
  const source = field(0);
  const instruction = field(1);
  const target = field(2);

  // Each plain page is built behind the values it copies, in one buffer, so copyWithin moves them (a
  // copy between two arrays would cost a subarray object per value).
  const ids = promptIds(b, 32 * n + 36 * n);
  const idStarts = new Int32Array(n).map((_, i) => 32 * i);
  columns.push(plainColumn(w, 'prompt_id', ids, idStarts, idStarts.map((s) => s + 32), 32 * n));
  let pageRoom = 0;
  for (let i = 0; i < n; i++) pageRoom = Math.max(pageRoom, source.ends[i] - source.starts[i] + 4, target.ends[i] - target.starts[i] + 4);
  const text = new Uint8Array(b.text.length + n * pageRoom);
  text.set(b.text);
  columns.push(smallDictionaryColumn(w, 'prompt_split', b.eval, SPLITS));
  columns.push(smallDictionaryColumn(w, 'category', b.category, b.tables.categories));
  columns.push(plainColumn(w, 'source_prompt', text, source.starts, source.ends, b.text.length));
  columns.push(textDictionaryColumn(w, 'instruction', b.text, instruction.starts, instruction.ends));
  columns.push(plainColumn(w, 'target_prompt', text, target.starts, target.ends, b.text.length));
  columns.push(thresholdColumn(w, b));
  columns.push(smallDictionaryColumn(w, 'attributes', b.attributes, b.tables.attributes));

  let totalByteSize = 0n;
  for (const { meta_data } of columns) totalByteSize += meta_data!.total_uncompressed_size;
  const bytes = w.getBytes().slice(HEADER_BYTES);
  return {
    rows: n,
    bytes,
    rowGroup: { columns, total_byte_size: totalByteSize, num_rows: BigInt(n), total_compressed_size: BigInt(bytes.length) },
    indexes: columns.map((chunk) => ({ chunk, columnIndex: undefined, offsetIndex: undefined, bloomFilter: undefined })) as unknown as EncodedRowGroup['indexes'],
  };
}

const HEX = new Uint8Array(512);
for (let i = 0; i < 256; i++) {
  const h = i.toString(16).padStart(2, '0');
  HEX[2 * i] = h.charCodeAt(0);
  HEX[2 * i + 1] = h.charCodeAt(1);
}
let scratch = new Uint8Array(4096);

/**
 * Each row's prompt_id (32 hex digits, back to back): sha256 of JSON.stringify([category, source,
 * instruction, target]). The batch holds each row as that JSON text, but for escapes: hashed in place
 * unless the set has characters to escape.
 */
function promptIds(b: RowBatch, size: number): Uint8Array {
  const heads = b.tables.categories.map(jsonHead);
  const out = new Uint8Array(size);
  const { text, bounds } = b;
  const plain = b.tables.jsonPlain;
  for (let i = 0; i < b.rows; i++) {
    const head = heads[b.category[i]];
    const start = bounds[4 * i];
    const end = bounds[4 * i + 3];
    let json: Uint8Array;
    if (plain) {
      json = text.subarray(start - head.length, end + 2);
    } else {
      const need = head.length + 6 * (end - start) + 8;
      if (need > scratch.length) scratch = new Uint8Array(2 * need);
      const s = scratch;
      s.set(head);
      let p = jsonEscape(s, head.length, text, start, bounds[4 * i + 1]);
      s[p++] = 0x22; // ","
      s[p++] = 0x2c;
      s[p++] = 0x22;
      p = jsonEscape(s, p, text, bounds[4 * i + 1] + SEPARATOR, bounds[4 * i + 2]);
      s[p++] = 0x22;
      s[p++] = 0x2c;
      s[p++] = 0x22;
      p = jsonEscape(s, p, text, bounds[4 * i + 2] + SEPARATOR, end);
      s[p++] = 0x22; // "]
      s[p++] = 0x5d;
      json = s.subarray(0, p);
    }
    // hex out is cheaper than a Buffer out (one string vs an ArrayBuffer per call)
    const digest = hash('sha256', json, 'hex');
    for (let k = 0; k < 32; k++) out[32 * i + k] = digest.charCodeAt(k);
  }
  return out;
}

/** Copy UTF-8 text[start, end) into out at p as JSON.stringify escapes it (", \, control characters); returns the new end. */
function jsonEscape(out: Uint8Array, p: number, text: Uint8Array, start: number, end: number): number {
  for (let i = start; i < end; i++) {
    const c = text[i];
    if (c >= 0x20 && c !== 0x22 && c !== 0x5c) {
      out[p++] = c;
      continue;
    }
    out[p++] = 0x5c; // backslash
    const short = c === 0x22 ? 0x22 : c === 0x5c ? 0x5c : c === 8 ? 0x62 : c === 9 ? 0x74 : c === 10 ? 0x6e : c === 12 ? 0x66 : c === 13 ? 0x72 : 0;
    if (short) {
      out[p++] = short;
    } else {
      out[p++] = 0x75; // u00XX
      out[p++] = 0x30;
      out[p++] = 0x30;
      out[p++] = HEX[2 * c];
      out[p++] = HEX[2 * c + 1];
    }
  }
  return p;
}

/**
 * UTF-8 byte order (= code point order) of x[a, aEnd) and y[b, bEnd); 4 bytes at a time as big-endian
 * words (prompts share long prefixes, and this runs twice per value for the statistics).
 */
function compareBytes(x: Uint8Array, a: number, aEnd: number, y: Uint8Array, b: number, bEnd: number): number {
  const n = Math.min(aEnd - a, bEnd - b);
  let i = 0;
  if (n >= 4) {
    const vx = viewOf(x);
    const vy = x === y ? vx : new DataView(y.buffer, y.byteOffset, y.byteLength);
    for (; i + 4 <= n; i += 4) if (vx.getUint32(a + i) !== vy.getUint32(b + i)) break;
  }
  for (; i < n; i++) {
    const d = x[a + i] - y[b + i];
    if (d) return d;
  }
  return aEnd - a - (bEnd - b);
}

const viewOf = dataViews();

interface Page {
  values: Uint8Array;
  levels: Uint8Array | null;
  nulls: number;
  encoding: 'PLAIN' | 'RLE_DICTIONARY';
}

/** Write a column chunk: an optional dictionary page, then one DATA_PAGE_V2 (values snappy-compressed, levels not). */
function chunk(w: ByteWriter, name: string, rows: number, dictionary: (Uint8Array | number)[] | null, page: Page, min: unknown, max: unknown): Chunk {
  // prompt ids are hex digits of a hash: snappy would spend time and save ~2%
  const codec = name === 'prompt_id' ? 'UNCOMPRESSED' : 'SNAPPY';
  const element = ELEMENT.get(name)!;
  const start = w.offset;
  let uncompressed = 0;
  let dictionaryOffset: bigint | undefined;
  if (dictionary) {
    dictionaryOffset = BigInt(w.offset);
    uncompressed += writeDictionaryPage(w, { columnName: name, element, codec, compressors: COMPRESSORS } as never, dictionary as never);
  }
  const dataOffset = BigInt(w.offset);
  const compressed = codec === 'SNAPPY' ? snappyCompress(page.values) : page.values;
  const levels = page.levels?.length ?? 0;
  const headerStart = w.offset;
  writePageHeader(w, {
    type: 'DATA_PAGE_V2',
    uncompressed_page_size: levels + page.values.length,
    compressed_page_size: levels + compressed.length,
    data_page_header_v2: {
      num_values: rows,
      num_nulls: page.nulls,
      num_rows: rows,
      encoding: page.encoding,
      definition_levels_byte_length: levels,
      repetition_levels_byte_length: 0,
      is_compressed: codec === 'SNAPPY',
    },
  } as never);
  uncompressed += w.offset - headerStart + levels + page.values.length;
  if (page.levels) w.appendBytes(page.levels);
  w.appendBytes(compressed);
  const isFloat = element.type === 'DOUBLE';
  if (min === 0) min = -0;
  if (max === 0) max = 0;
  return {
    meta_data: {
      type: element.type!,
      encodings: dictionary ? ['PLAIN', page.encoding] : [page.encoding],
      path_in_schema: [name],
      codec,
      num_values: BigInt(rows),
      total_compressed_size: BigInt(w.offset - start),
      total_uncompressed_size: BigInt(uncompressed),
      data_page_offset: dataOffset,
      dictionary_page_offset: dictionaryOffset,
      statistics: { min_value: min, max_value: max, null_count: BigInt(page.nulls), nan_count: isFloat ? 0n : undefined },
      encoding_stats: [
        ...(dictionary ? [{ page_type: 'DICTIONARY_PAGE', encoding: 'PLAIN', count: 1 }] : []),
        { page_type: 'DATA_PAGE_V2', encoding: page.encoding, count: 1 },
      ],
      geospatial_statistics: undefined,
    },
    file_offset: BigInt(start),
  } as unknown as Chunk;
}

/** A PLAIN string column of bytes[starts[i], ends[i]): a 4-byte length, then the bytes, per row; the page is built in bytes from pageAt on. */
function plainColumn(w: ByteWriter, name: string, bytes: Uint8Array, starts: Int32Array, ends: Int32Array, pageAt: number): Chunk {
  const n = starts.length;
  let p = pageAt;
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < n; i++) {
    const s = starts[i];
    const e = ends[i];
    const len = e - s;
    bytes[p] = len;
    bytes[p + 1] = len >>> 8;
    bytes[p + 2] = len >>> 16;
    bytes[p + 3] = len >>> 24;
    p += 4;
    if (len > 16) bytes.copyWithin(p, s, e);
    else for (let k = 0; k < len; k++) bytes[p + k] = bytes[s + k];
    p += len;
    if (compareBytes(bytes, s, e, bytes, starts[lo], ends[lo]) < 0) lo = i;
    if (compareBytes(bytes, s, e, bytes, starts[hi], ends[hi]) > 0) hi = i;
  }
  const text = (i: number) => decoder.decode(bytes.subarray(starts[i], ends[i]));
  return chunk(w, name, n, null, { values: bytes.subarray(pageAt, p), levels: null, nulls: 0, encoding: 'PLAIN' }, n ? text(lo) : undefined, n ? text(hi) : undefined);
}

/** The dictionary indexes of a data page: their bit width, then the RLE / bit-packing hybrid. */
function indexPage(indexes: Int32Array, entries: number): Uint8Array {
  const page = new ByteWriter(indexes.length + 64);
  const bitWidth = Math.ceil(Math.log2(entries));
  page.appendUint8(bitWidth);
  writeRleBitPackedHybrid(page, indexes as never, bitWidth);
  return page.getBytes();
}

/** A dictionary column of keys into `values` (a small table): entries in order of first appearance. */
function smallDictionaryColumn(w: ByteWriter, name: string, keys: ArrayLike<number>, values: string[]): Chunk {
  const n = keys.length;
  const position = new Int32Array(values.length).fill(-1);
  const entries: string[] = [];
  const indexes = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = keys[i];
    let d = position[k];
    if (d < 0) {
      position[k] = d = entries.length;
      entries.push(values[k]);
    }
    indexes[i] = d;
  }
  const bytes = entries.map((s) => encoder.encode(s));
  let lo = 0;
  let hi = 0;
  for (let d = 1; d < bytes.length; d++) {
    if (compareBytes(bytes[d], 0, bytes[d].length, bytes[lo], 0, bytes[lo].length) < 0) lo = d;
    if (compareBytes(bytes[d], 0, bytes[d].length, bytes[hi], 0, bytes[hi].length) > 0) hi = d;
  }
  return chunk(w, name, n, bytes, { values: indexPage(indexes, bytes.length), levels: null, nulls: 0, encoding: 'RLE_DICTIONARY' }, entries[lo], entries[hi]);
}

/** A dictionary column of strings bytes[starts[i], ends[i]), entries found by a hash of their bytes. */
function textDictionaryColumn(w: ByteWriter, name: string, bytes: Uint8Array, starts: Int32Array, ends: Int32Array): Chunk {
  const n = starts.length;
  let cap = 16;
  while (cap < 2 * n) cap *= 2;
  const table = new Int32Array(cap).fill(-1);
  const view = viewOf(bytes);
  const entryRow: number[] = [];
  const indexes = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const s = starts[i];
    const e = ends[i];
    let h = 0x811c9dc5 ^ (e - s);
    let k = s;
    for (; k + 4 <= e; k += 4) h = Math.imul(h ^ view.getInt32(k, true), 0x01000193);
    for (; k < e; k++) h = Math.imul(h ^ bytes[k], 0x01000193);
    let slot = (h ^ (h >>> 15)) & (cap - 1);
    for (;;) {
      const d = table[slot];
      if (d < 0) {
        table[slot] = indexes[i] = entryRow.length;
        entryRow.push(i);
        break;
      }
      const r = entryRow[d];
      if (compareBytes(bytes, s, e, bytes, starts[r], ends[r]) === 0) {
        indexes[i] = d;
        break;
      }
      slot = (slot + 1) & (cap - 1);
    }
  }
  let lo = 0;
  let hi = 0;
  for (let d = 1; d < entryRow.length; d++) {
    const r = entryRow[d];
    if (compareBytes(bytes, starts[r], ends[r], bytes, starts[entryRow[lo]], ends[entryRow[lo]]) < 0) lo = d;
    if (compareBytes(bytes, starts[r], ends[r], bytes, starts[entryRow[hi]], ends[entryRow[hi]]) > 0) hi = d;
  }
  const entries = entryRow.map((r) => bytes.subarray(starts[r], ends[r]));
  const text = (d: number) => (entries.length ? decoder.decode(entries[d]) : undefined);
  return chunk(w, name, n, entries, { values: indexPage(indexes, entries.length), levels: null, nulls: 0, encoding: 'RLE_DICTIONARY' }, text(lo), text(hi));
}

/** identity_threshold: OPTIONAL DOUBLE, the category's threshold; dictionary-encoded, or PLAIN (no values) when all null. */
function thresholdColumn(w: ByteWriter, b: RowBatch): Chunk {
  const n = b.rows;
  const definition = new Uint8Array(n);
  const position = new Map<number, number>();
  const entries: number[] = [];
  const indexes: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = b.tables.thresholds[b.category[i]];
    if (v === null) continue;
    definition[i] = 1;
    let d = position.get(v);
    if (d === undefined) {
      position.set(v, (d = entries.length));
      entries.push(v);
    }
    indexes.push(d);
  }
  const levels = new ByteWriter(64 + (n >> 3));
  writeRleBitPackedHybrid(levels, definition as never, 1);
  const page: Page = { values: new Uint8Array(0), levels: levels.getBytes(), nulls: n - indexes.length, encoding: 'PLAIN' };
  if (!entries.length) return chunk(w, 'identity_threshold', n, null, page, undefined, undefined);
  page.values = indexPage(Int32Array.from(indexes), entries.length);
  page.encoding = 'RLE_DICTIONARY';
  return chunk(w, 'identity_threshold', n, entries, page, Math.min(...entries), Math.max(...entries));
}
