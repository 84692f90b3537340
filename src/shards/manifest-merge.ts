/**
 * One manifest row group made of whole shards' manifest parts (manifest-part.ts), mostly by copying
 * pages. A part is a shard's manifest rows already encoded: one row group of the manifest's columns,
 * written by the worker that committed the shard. For each column of the group:
 *
 * - when no part encodes it with a dictionary, the parts' pages are copied as they are, one after the
 *   other: a plain page holds its own values and levels and never refers to a file position, so it is
 *   valid anywhere. Statistics, page indexes and encoding stats are put together from the parts'.
 * - when every part encodes it with a dictionary (low-cardinality columns: category, split, the JSON
 *   settings, ...), a chunk can hold only one: the parts' dictionaries are joined (first seen first) into
 *   the chunk's dictionary page, and each part's pages are copied when its indexes mean the same entries
 *   there, else their indexes are mapped to the joined dictionary and the pages written again. Values are
 *   never decoded.
 * - anything else (a column with a dictionary in some parts only or compressed differently across
 *   parts, a joined dictionary over MAX_JOINED_DICTIONARY_BYTES): the values are decoded and encoded again as one
 *   chunk, as a single writer would.
 * - `duplicate_of` is encoded from finalize's near-duplicate marks (a part holds nulls there).
 *
 * The group's bytes are a function of the parts' bytes and the marks alone, so the manifest is the same
 * bytes whichever threads merged it, and whether a part was read from the store or made here from the
 * shard's files (a shard committed before parts existed).
 */
import type { AsyncBuffer, FileMetaData } from 'hyparquet';
import { parquetHeader } from 'hyparquet/src/column.js';
import { decompressPage } from 'hyparquet/src/datapage.js';
import { readRleBitPackedHybrid } from 'hyparquet/src/encoding.js';
import { readOffsetIndex } from 'hyparquet/src/indexes.js';
import { deserializeTCompactProtocol } from 'hyparquet/src/thrift.js';
import { ByteWriter, type ColumnSource, type SchemaElement } from 'hyparquet-writer';
import { writePageHeader } from 'hyparquet-writer/src/datapage.js';
import { writeRleBitPackedHybrid } from 'hyparquet-writer/src/encoding.js';
import { UserError } from '../errors.ts';
import { stringBloomFilter } from '../util/bloom.ts';
import { schemaLeaves, writeColumnChunk } from '../util/parquet-row-group.ts';
import { columnSettings, listColumns, parquetSchema, parquetWriter } from './parquet.ts';
import { DUPLICATE_OF, runSchemas } from './record.ts';
import { readColumns } from './column-reader.ts';
import { V1ListPagesWriter } from './v1-pages.ts';
import { encodeManifestPart, statsColumns, type EncodedGroup, type GroupTask, type ManifestShard } from './manifest-group.ts';
import { readPairgenMetadata, type ParquetSource } from './shard.ts';

/** A part as read: its bytes, hyparquet's metadata (for decoding values) and the raw footer (for statistics). */
interface Part {
  bytes: Uint8Array;
  buffer: AsyncBuffer;
  metadata: FileMetaData;
  /** The thrift ColumnChunk of each column of its row group, as stored (statistics as bytes). */
  raw: RawChunk[];
  rows: number;
}

interface RawChunk {
  offset_index_offset?: bigint;
  column_index_offset?: bigint;
  meta: {
    num_values: bigint;
    total_uncompressed_size: bigint;
    total_compressed_size: bigint;
    data_page_offset: bigint;
    dictionary_page_offset?: bigint;
    statistics?: RawStats;
  };
}

interface RawStats {
  null_count?: bigint;
  max_value?: Uint8Array;
  min_value?: Uint8Array;
  is_max_value_exact?: boolean;
  is_min_value_exact?: boolean;
  nan_count?: bigint;
}

/** One page of a copied chunk: where it is in its part, and what the column index says of it. */
interface PageEntry {
  offset: bigint;
  size: number;
  firstRow: bigint;
  nullPage: boolean;
  min: Uint8Array | undefined;
  max: Uint8Array | undefined;
  nullCount: bigint;
  nanCount: bigint | undefined;
}

const MAGIC = 'PAR1';

/** Above this many bytes of joined dictionary values, a column is encoded again instead (a single writer would likely not use a dictionary). */
export const MAX_JOINED_DICTIONARY_BYTES = 1 << 20;

/** The parts of `task.shards`, read from the store or, for a shard that has none, made from its files. */
async function loadParts(task: GroupTask, openPart: (name: string) => Promise<Uint8Array>, openFile: (f: { name: string; size: number }) => Promise<ParquetSource> | ParquetSource): Promise<Part[]> {
  const expected = parquetSchema(runSchemas(task.scorers).manifest).map((e) => e.name).join(',');
  return Promise.all(
    task.shards.map(async (shard) => {
      const name = shard.part?.name ?? `the manifest part of shard ${shard.shard} (made from its files)`;
      const bytes = shard.part ? await openPart(shard.part.name) : await encodeManifestPart(shard, openFile, task.scorers);
      return await readPart(name, bytes, rowsOf(shard), expected);
    }),
  );
}

function rowsOf(shard: ManifestShard): number {
  return shard.files.reduce((a, f) => a + f.rows, 0);
}

async function readPart(name: string, bytes: Uint8Array, rows: number, expectedColumns: string): Promise<Part> {
  const { metadata, kind, buffer } = await readPairgenMetadata(bytes, name);
  if (kind !== 'manifest-part') throw new UserError(`${name}: not a pairgen manifest part (a ${kind} file)`);
  if (metadata.schema.map((e) => e.name).join(',') !== expectedColumns) throw new UserError(`${name}: its columns are not the run's manifest columns; remake the shard with \`pairgen work --force\``);
  if (Number(metadata.num_rows) !== rows) throw new UserError(`${name}: holds ${metadata.num_rows} rows, its shard's marker says ${rows}`);
  if (metadata.row_groups.length > 1) throw new UserError(`${name}: holds ${metadata.row_groups.length} row groups, a manifest part has one`);
  return { bytes, buffer, metadata, raw: rawChunks(bytes), rows };
}

/**
 * The footer's column chunks as thrift gives them: hyparquet's metadata turns statistics into values and
 * drops nan_count. Statistics bytes are copied out of the part: they go into the manifest's footer, and a
 * view would keep (and, sent between threads, copy) the whole part.
 */
function rawChunks(bytes: Uint8Array): RawChunk[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getUint32(bytes.length - 8, true);
  const footer = deserializeTCompactProtocol({ view, offset: bytes.length - 8 - length }) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const group = footer.field_4?.[0];
  if (!group) return [];
  return (group.field_1 as Record<string, any>[]).map((c) => { // eslint-disable-line @typescript-eslint/no-explicit-any
    const m = c.field_3;
    const s = m.field_12;
    return {
      offset_index_offset: c.field_4,
      column_index_offset: c.field_6,
      meta: {
        num_values: m.field_5,
        total_uncompressed_size: m.field_6,
        total_compressed_size: m.field_7,
        data_page_offset: m.field_9,
        dictionary_page_offset: m.field_11,
        statistics: s && { null_count: s.field_3, max_value: s.field_5?.slice(), min_value: s.field_6?.slice(), is_max_value_exact: s.field_7, is_min_value_exact: s.field_8, nan_count: s.field_9 },
      },
    };
  });
}

/** Merge the group's shards' parts (read, or made from the shards' files) into one manifest row group. */
export async function mergeManifestGroup(
  task: GroupTask,
  openPart: (name: string) => Promise<Uint8Array>,
  openFile: (f: { name: string; size: number }) => Promise<ParquetSource> | ParquetSource,
): Promise<EncodedGroup> {
  const parts = (await loadParts(task, openPart, openFile)).filter((p) => p.rows > 0);
  const rows = parts.reduce((a, p) => a + p.rows, 0);
  if (rows !== task.rows) throw new Error(`manifest group: expected ${task.rows} rows, the parts hold ${rows}`);
  const { manifest } = runSchemas(task.scorers);
  const fields = manifest.fields;
  const reencode = new Set<string>();
  const dictionaries = new Map<number, JoinedDictionary>();
  fields.forEach((f, c) => {
    const withDictionary = parts.filter((p) => p.raw[c].meta.dictionary_page_offset !== undefined).length;
    const codecs = new Set(parts.map((p) => p.metadata.row_groups[0].columns[c].meta_data!.codec));
    if (f.name === DUPLICATE_OF || (withDictionary > 0 && withDictionary < parts.length) || codecs.size > 1) reencode.add(f.name);
    else if (withDictionary > 0) {
      const joined = joinDictionaries(parts, c);
      if (joined) dictionaries.set(c, joined);
      else reencode.add(f.name);
    }
  });
  const wanted = [...new Set([...reencode, ...STATS_COLUMNS, ...task.statsScores, 'pair_id'])].filter((n) => n !== DUPLICATE_OF && fields.some((f) => f.name === n));
  const values = await decodeColumns(parts, wanted, rows);
  if (reencode.has(DUPLICATE_OF)) {
    if (task.duplicateOf?.length !== rows) throw new Error(`manifest group: ${task.duplicateOf?.length ?? 'no'} duplicate_of marks for ${rows} rows`);
    values.set(DUPLICATE_OF, task.duplicateOf);
  }

  const writer = new V1ListPagesWriter(listColumns(manifest), 1 << 20);
  const pq = parquetWriter(writer, manifest, 'manifest');
  writer.attach(pq);
  const leaves = schemaLeaves(pq.schema);
  const columns: typeof pq.row_groups[number]['columns'] = [];
  fields.forEach((f, c) => {
    const settings = columnSettings(f);
    const result = reencode.has(f.name)
      ? writeColumnChunk(pq, { name: f.name, data: values.get(f.name)!, ...settings } as ColumnSource)
      : copyChunk(writer, parts, c, leaves.get(f.name)!.path.at(-1)!, settings.bloomFilter ? values.get(f.name)! : null, dictionaries.get(c) ?? null, pq.compressors);
    columns.push(result.chunk);
    pq.pendingIndexes.push(result);
  });
  pq.num_rows = BigInt(rows);
  const group = { columns, total_byte_size: 0n, num_rows: BigInt(rows), total_compressed_size: BigInt(writer.offset - MAGIC.length) };
  pq.row_groups.push(group);
  writer.flush(); // list columns' pages to v1 (copied ones already are)
  // After the conversion: the chunks' final sizes (hyparquet-writer's row path sums the v2 sizes of list columns).
  for (const { meta_data } of columns) group.total_byte_size += meta_data?.total_uncompressed_size ?? 0n;
  const col = (name: string) => values.get(name)!;
  const stats = statsColumns(col, task.statsScores);
  return { bytes: writer.getBytes().slice(MAGIC.length), rows, rowGroup: pq.row_groups[0], indexes: pq.pendingIndexes, stats };
}

/** The columns statsColumns reads (manifest-group.ts). */
const STATS_COLUMNS = ['category', 'split', 'accepted', 'reject_reason', 'identity_similarity', 'identity_threshold', 'extra'];

/** The named columns' values over the parts, in row order. */
async function decodeColumns(parts: Part[], names: string[], rows: number): Promise<Map<string, unknown[]>> {
  const out = new Map(names.map((n) => [n, new Array<unknown>(rows)]));
  let at = 0;
  for (const part of parts) {
    const cols = await readColumns(part.buffer, part.metadata, names);
    names.forEach((n, i) => {
      const dst = out.get(n)!;
      const src = cols[i];
      for (let r = 0; r < src.length; r++) dst[at + r] = src[r];
    });
    at += part.rows;
  }
  return out;
}

type ChunkResult = ReturnType<typeof writeColumnChunk>;

/** The parts' dictionaries of one column joined: the entries (PLAIN bytes), and each part's index → joined index. */
interface JoinedDictionary {
  entries: Uint8Array[];
  bytes: number;
  maps: Int32Array[];
  /** Whether a part's indexes already mean the same entries in the joined dictionary. */
  same: boolean[];
}

/** Join column c's dictionaries over the parts (first seen first); null when the result would be too large. */
function joinDictionaries(parts: Part[], c: number): JoinedDictionary | null {
  const type = parts[0].metadata.row_groups[0].columns[c].meta_data!.type;
  const width = type === 'INT32' || type === 'FLOAT' ? 4 : type === 'INT64' || type === 'DOUBLE' ? 8 : type === 'BYTE_ARRAY' ? 0 : -1;
  if (width < 0) return null;
  const position = new Map<string, number>();
  const entries: Uint8Array[] = [];
  let bytes = 0;
  const maps: Int32Array[] = [];
  const same: boolean[] = [];
  for (const part of parts) {
    const raw = part.raw[c];
    const meta = part.metadata.row_groups[0].columns[c].meta_data!;
    const view = new DataView(part.bytes.buffer, part.bytes.byteOffset, part.bytes.byteLength);
    const reader = { view, offset: Number(raw.meta.dictionary_page_offset) };
    const header = parquetHeader(reader);
    if (header.type !== 'DICTIONARY_PAGE' || header.dictionary_page_header?.encoding !== 'PLAIN') return null;
    const page = decompressPage(part.bytes.subarray(reader.offset, reader.offset + header.compressed_page_size), header.uncompressed_page_size, meta.codec as never, undefined);
    const count = header.dictionary_page_header.num_values;
    const map = new Int32Array(count);
    let identity = true;
    let at = 0;
    for (let k = 0; k < count; k++) {
      const size = width || 4 + new DataView(page.buffer, page.byteOffset + at, 4).getUint32(0, true);
      const entry = page.subarray(at, at + size);
      at += size;
      const key = Buffer.from(entry.buffer, entry.byteOffset, entry.byteLength).toString('latin1');
      let j = position.get(key);
      if (j === undefined) {
        j = entries.length;
        position.set(key, j);
        entries.push(entry);
        bytes += entry.length;
        if (bytes > MAX_JOINED_DICTIONARY_BYTES) return null;
      }
      map[k] = j;
      if (j !== k) identity = false;
    }
    maps.push(map);
    same.push(identity);
  }
  return { entries, bytes, maps, same };
}

/** `count` dictionary indexes (bit width byte, then the RLE / bit-packing hybrid) mapped through `map`, encoded again the same way. */
function remapIndexes(values: Uint8Array, count: number, map: Int32Array): Uint8Array {
  const indexes = new Int32Array(count);
  if (count) readRleBitPackedHybrid({ view: new DataView(values.buffer, values.byteOffset, values.byteLength), offset: 1 }, values[0], indexes as never, values.length - 1);
  let max = 0;
  for (let i = 0; i < count; i++) {
    const k = map[indexes[i]];
    indexes[i] = k;
    if (k > max) max = k;
  }
  const out = new ByteWriter(count + 16);
  const bitWidth = Math.ceil(Math.log2(max + 1)); // per page, as hyparquet-writer: from the largest index in it
  out.appendUint8(bitWidth);
  writeRleBitPackedHybrid(out, indexes as never, bitWidth);
  return out.getBytes();
}

/**
 * A part's data page with its dictionary indexes mapped through `map`, levels kept as they are: a v2
 * page (flat columns), or an uncompressed v1 page (list columns, v1-pages.ts) whose list elements have
 * definition level 3 when set. Returns the bytes it adds to the chunk's total_uncompressed_size.
 */
function remapPage(writer: ByteWriter, body: Uint8Array, header: ReturnType<typeof parquetHeader>, map: Int32Array, codec: string, compress: ((b: Uint8Array) => Uint8Array) | undefined): number {
  const start = writer.offset;
  const v1 = header.data_page_header;
  if (header.type === 'DATA_PAGE' && v1?.encoding === 'RLE_DICTIONARY' && codec === 'UNCOMPRESSED') {
    // [rep length][rep levels][def length][def levels][values]
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    const defAt = 4 + view.getUint32(0, true);
    const defLength = view.getUint32(defAt, true);
    const levels = new Uint8Array(v1.num_values);
    readRleBitPackedHybrid({ view, offset: defAt + 4 }, 2, levels as never, defLength);
    let count = 0;
    for (let i = 0; i < levels.length; i++) if (levels[i] === 3) count++;
    const valuesAt = defAt + 4 + defLength;
    const values = remapIndexes(body.subarray(valuesAt), count, map);
    writePageHeader(writer, { type: 'DATA_PAGE', uncompressed_page_size: valuesAt + values.length, compressed_page_size: valuesAt + values.length, data_page_header: v1 } as never);
    writer.appendBytes(body.subarray(0, valuesAt));
    writer.appendBytes(values);
    return writer.offset - start;
  }
  const v2 = header.data_page_header_v2;
  if (header.type !== 'DATA_PAGE_V2' || !v2 || v2.encoding !== 'RLE_DICTIONARY') throw new Error(`manifest merge: a dictionary column holds a ${header.type} page (${v2?.encoding ?? v1?.encoding}, ${codec})`);
  const levels = v2.repetition_levels_byte_length + v2.definition_levels_byte_length;
  const compressed = body.subarray(levels);
  const values = v2.is_compressed === false ? compressed : decompressPage(compressed, header.uncompressed_page_size - levels, codec as never, undefined);
  const plain = remapIndexes(values, v2.num_values - v2.num_nulls, map);
  const packed = v2.is_compressed === false ? plain : (compress?.(plain) ?? plain);
  writePageHeader(writer, {
    type: 'DATA_PAGE_V2',
    uncompressed_page_size: levels + plain.length,
    compressed_page_size: levels + packed.length,
    data_page_header_v2: { ...v2, statistics: undefined },
  } as never);
  const headerSize = writer.offset - start;
  writer.appendBytes(body.subarray(0, levels));
  writer.appendBytes(packed);
  return headerSize + levels + plain.length;
}

/**
 * Column c of every part at the writer's offset: pages copied one after the other, or, with a joined
 * dictionary, its dictionary page first and each part's data pages copied or remapped.
 */
function copyChunk(writer: V1ListPagesWriter, parts: Part[], c: number, element: SchemaElement, bloomValues: unknown[] | null, dictionary: JoinedDictionary | null, compressors: Record<string, ((b: Uint8Array) => Uint8Array) | undefined>): ChunkResult {
  const type = element.type!;
  const isFloat = type === 'FLOAT' || type === 'DOUBLE';
  const chunkStart = writer.offset;
  const codec = parts[0].metadata.row_groups[0].columns[c].meta_data!.codec;
  const pages: PageEntry[] = [];
  const encodings: string[] = [];
  const encodingStats: { page_type: string; encoding: string; count: number }[] = [];
  let numValues = 0n;
  let uncompressed = 0n;
  if (dictionary) {
    const plain = new Uint8Array(dictionary.bytes);
    let at = 0;
    for (const e of dictionary.entries) {
      plain.set(e, at);
      at += e.length;
    }
    const packed = compressors[codec]?.(plain) ?? plain;
    writePageHeader(writer, {
      type: 'DICTIONARY_PAGE',
      uncompressed_page_size: plain.length,
      compressed_page_size: packed.length,
      dictionary_page_header: { num_values: dictionary.entries.length, encoding: 'PLAIN' },
    } as never);
    uncompressed += BigInt(writer.offset - chunkStart + plain.length);
    writer.appendBytes(packed);
    encodingStats.push({ page_type: 'DICTIONARY_PAGE', encoding: 'PLAIN', count: 1 });
  }
  const dataStart = writer.offset;
  let stats: RawStats | undefined = {};
  let rowBase = 0n;
  let indexable = true; // every page has a column index entry
  parts.forEach((part, p) => {
    const raw = part.raw[c];
    const meta = part.metadata.row_groups[0].columns[c].meta_data!;
    const start = Number(raw.meta.data_page_offset);
    const end = Number(raw.meta.dictionary_page_offset ?? raw.meta.data_page_offset) + Number(raw.meta.total_compressed_size);
    const partPages = pagesOf(part, raw, type);
    if (!partPages) indexable = false;
    const entries = partPages ?? [{ offset: BigInt(start), size: end - start, firstRow: 0n } as PageEntry];
    if (!dictionary || dictionary.same[p]) {
      // Every page as it is; the part's data pages are contiguous, up to the chunk's end.
      const shift = BigInt(writer.offset - start);
      writer.appendBytes(part.bytes.subarray(start, end));
      for (const e of entries) pages.push({ ...e, offset: e.offset + shift, firstRow: e.firstRow + rowBase });
      uncompressed += raw.meta.total_uncompressed_size - dictionaryPageSize(part, raw);
    } else {
      const view = new DataView(part.bytes.buffer, part.bytes.byteOffset, part.bytes.byteLength);
      for (const e of entries) {
        const reader = { view, offset: Number(e.offset) };
        const header = parquetHeader(reader);
        const body = part.bytes.subarray(reader.offset, reader.offset + header.compressed_page_size);
        const offset = writer.offset;
        uncompressed += BigInt(remapPage(writer, body, header, dictionary.maps[p], codec, compressors[codec]));
        pages.push({ ...e, offset: BigInt(offset), size: writer.offset - offset, firstRow: e.firstRow + rowBase });
      }
    }
    for (const e of meta.encodings) if (!encodings.includes(e)) encodings.push(e);
    for (const s of meta.encoding_stats ?? []) {
      if (s.page_type === 'DICTIONARY_PAGE') continue; // the chunk's own, above
      const same = encodingStats.find((x) => x.page_type === s.page_type && x.encoding === s.encoding);
      if (same) same.count += s.count;
      else encodingStats.push({ ...s });
    }
    numValues += raw.meta.num_values;
    stats = stats && raw.meta.statistics ? mergeStats(stats, raw.meta.statistics, type) : undefined;
    rowBase += BigInt(part.rows);
  });
  const several = pages.length > 1;
  const columnIndex = several && indexable ? pageColumnIndex(pages, type, isFloat) : undefined;
  const offsetIndex = several ? { page_locations: pages.map((p) => ({ offset: p.offset, compressed_page_size: p.size, first_row_index: p.firstRow })) } : undefined;
  // Statistics and index entries are the parts' own bytes, already truncated by the same writer settings.
  const statistics = stats && {
    min_value: statValue(stats.min_value, type),
    max_value: statValue(stats.max_value, type),
    null_count: stats.null_count ?? 0n,
    nan_count: isFloat ? (stats.nan_count ?? 0n) : undefined,
    is_min_value_exact: stats.is_min_value_exact,
    is_max_value_exact: stats.is_max_value_exact,
  };
  const bloomFilter = bloomValues ? stringBloomFilter(bloomValues) : undefined;
  if (bloomFilter === 'not strings') throw new Error(`manifest merge: the bloom filter column ${element.name} holds values other than strings`);
  return {
    chunk: {
      meta_data: {
        type,
        encodings,
        path_in_schema: parts[0].metadata.row_groups[0].columns[c].meta_data!.path_in_schema,
        codec: parts[0].metadata.row_groups[0].columns[c].meta_data!.codec,
        num_values: numValues,
        total_compressed_size: BigInt(writer.offset - chunkStart),
        total_uncompressed_size: uncompressed,
        data_page_offset: BigInt(dataStart),
        dictionary_page_offset: dictionary ? BigInt(chunkStart) : undefined,
        statistics,
        encoding_stats: encodingStats,
        geospatial_statistics: undefined,
      },
      file_offset: BigInt(chunkStart),
    },
    columnIndex,
    offsetIndex,
    bloomFilter,
  } as never;
}

/** The bytes a part chunk's dictionary page counts in its total_uncompressed_size (header and values); 0 without one. */
function dictionaryPageSize(part: Part, raw: RawChunk): bigint {
  if (raw.meta.dictionary_page_offset === undefined) return 0n;
  const reader = { view: new DataView(part.bytes.buffer, part.bytes.byteOffset, part.bytes.byteLength), offset: Number(raw.meta.dictionary_page_offset) };
  const header = parquetHeader(reader);
  return BigInt(reader.offset - Number(raw.meta.dictionary_page_offset) + header.uncompressed_page_size);
}

/** A part chunk's pages with their column index entries; null when it has several pages and no column index. */
function pagesOf(part: Part, raw: RawChunk, type: string): PageEntry[] | null {
  const view = new DataView(part.bytes.buffer, part.bytes.byteOffset, part.bytes.byteLength);
  if (raw.offset_index_offset === undefined) {
    const s = raw.meta.statistics ?? {};
    const nullCount = s.null_count ?? 0n;
    const end = raw.meta.dictionary_page_offset ?? raw.meta.data_page_offset;
    return [{
      offset: raw.meta.data_page_offset,
      size: Number(end + raw.meta.total_compressed_size - raw.meta.data_page_offset),
      firstRow: 0n,
      nullPage: nullCount === raw.meta.num_values,
      min: s.min_value,
      max: s.max_value,
      nullCount,
      nanCount: type === 'FLOAT' || type === 'DOUBLE' ? (s.nan_count ?? 0n) : undefined,
    }];
  }
  const locations = readOffsetIndex({ view, offset: Number(raw.offset_index_offset) }).page_locations;
  if (raw.column_index_offset === undefined) return null;
  const ci = deserializeTCompactProtocol({ view, offset: Number(raw.column_index_offset) }) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  return locations.map((loc, i) => ({
    offset: loc.offset,
    size: loc.compressed_page_size,
    firstRow: loc.first_row_index,
    nullPage: ci.field_1[i],
    min: ci.field_1[i] ? undefined : ci.field_2[i].slice(),
    max: ci.field_1[i] ? undefined : ci.field_3[i].slice(),
    nullCount: ci.field_5?.[i] ?? 0n,
    nanCount: ci.field_8?.[i],
  }));
}

/** The column index of the merged chunk (hyparquet-writer's rules: a non-null page without min or max drops it). */
function pageColumnIndex(pages: PageEntry[], type: string, isFloat: boolean) {
  if (pages.some((p) => !p.nullPage && (!p.min || !p.max))) return undefined;
  let ascending = true;
  let descending = true;
  let prevMin: Uint8Array | undefined;
  let prevMax: Uint8Array | undefined;
  for (const p of pages) {
    if (prevMin && p.min) {
      const order = compareStat(prevMin, p.min, type);
      if (order > 0) ascending = false;
      if (order < 0) descending = false;
    }
    if (prevMax && p.max) {
      const order = compareStat(prevMax, p.max, type);
      if (order > 0) ascending = false;
      if (order < 0) descending = false;
    }
    prevMin = p.min;
    prevMax = p.max;
  }
  return {
    null_pages: pages.map((p) => p.nullPage),
    min_values: pages.map((p) => p.min ?? new Uint8Array()),
    max_values: pages.map((p) => p.max ?? new Uint8Array()),
    boundary_order: ascending ? 'ASCENDING' : descending ? 'DESCENDING' : 'UNORDERED',
    null_counts: pages.map((p) => p.nullCount),
    nan_counts: isFloat ? pages.map((p) => p.nanCount ?? 0n) : undefined,
  };
}

/** Two adjacent chunks' statistics as one: the smaller min, the larger max (first wins a tie), counts added. */
function mergeStats(a: RawStats, b: RawStats, type: string): RawStats {
  const out = { ...a };
  if (b.min_value && (!a.min_value || compareStat(b.min_value, a.min_value, type) < 0)) {
    out.min_value = b.min_value;
    out.is_min_value_exact = b.is_min_value_exact;
  }
  if (b.max_value && (!a.max_value || compareStat(b.max_value, a.max_value, type) > 0)) {
    out.max_value = b.max_value;
    out.is_max_value_exact = b.is_max_value_exact;
  }
  out.null_count = (a.null_count ?? 0n) + (b.null_count ?? 0n);
  out.nan_count = a.nan_count === undefined && b.nan_count === undefined ? undefined : (a.nan_count ?? 0n) + (b.nan_count ?? 0n);
  return out;
}

/** Order of two plain-encoded statistics values of a column of `type`. */
function compareStat(a: Uint8Array, b: Uint8Array, type: string): number {
  if (type === 'BYTE_ARRAY') {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
    return a.length - b.length;
  }
  const x = statValue(a, type) as number | bigint | boolean;
  const y = statValue(b, type) as number | bigint | boolean;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** A statistics value as hyparquet-writer takes it: bytes for byte arrays (written as they are), else the number. */
function statValue(bytes: Uint8Array | undefined, type: string): unknown {
  if (bytes === undefined) return undefined;
  if (type === 'BYTE_ARRAY') return bytes;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (type === 'BOOLEAN') return bytes[0] === 1;
  if (type === 'INT32') return view.getInt32(0, true);
  if (type === 'INT64') return view.getBigInt64(0, true);
  if (type === 'FLOAT') return view.getFloat32(0, true);
  if (type === 'DOUBLE') return view.getFloat64(0, true);
  throw new Error(`manifest merge: no statistics for Parquet type ${type}`);
}
