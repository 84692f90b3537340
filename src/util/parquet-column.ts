/**
 * hyparquet-writer's `writeColumn`, specialised to the columns pairgen writes in bulk (UTF8 strings,
 * INT32, INT64, FLOAT, DOUBLE, BOOLEAN; flat or as list elements; no forced encoding or dictionary
 * cap) and written for speed: the same decisions, pages, statistics, page indexes and bloom filter, the
 * same bytes. Anything else returns null and the caller uses hyparquet-writer's own writeColumn.
 *
 * Why by hand: encoding the 10-million-row manifest (issue 15) spent most of its time in
 * hyparquet-writer's general per-value code (statistics compared value by value twice, strings encoded
 * to UTF-8 one `TextEncoder` call at a time, values copied per page). Here a dictionary column's
 * statistics come from its distinct values, numbers are written straight into the page buffer, and
 * plain strings are encoded once. What is reused from hyparquet-writer: page headers, the RLE /
 * bit-packing hybrid, the dictionary page, min/max conversion, the bloom filter builder and compressors.
 * test/shards/parquet-column.test.ts checks byte identity against hyparquet-writer on many columns.
 */
import type { ParquetWriter, SchemaElement } from 'hyparquet-writer';
import { ByteWriter } from 'hyparquet-writer';
import { writePageHeader } from 'hyparquet-writer/src/datapage.js';
import { writeDictionaryPage } from 'hyparquet-writer/src/dictionary.js';
import { writeRleBitPackedHybrid } from 'hyparquet-writer/src/encoding.js';
import { writePlain as writePlainValues } from 'hyparquet-writer/src/plain.js';
import { unconvertMinMax } from 'hyparquet-writer/src/unconvert.js';
import { BloomBuilder } from 'hyparquet-writer/src/bloom.js';
import { stringBloomFilter } from './bloom.ts';

/** Levels as arrays or typed arrays (parquet-row-group.ts makes Uint8Arrays). */
export type Levels = number[] | Uint8Array;

export interface PageData {
  values: unknown[];
  definitionLevels: Levels;
  repetitionLevels: Levels;
  maxDefinitionLevel: number;
}

/** What writeColumn takes as `column` (hyparquet-writer's ColumnEncoder). */
export interface ColumnEncoder {
  columnName: string;
  element: SchemaElement;
  schemaPath: SchemaElement[];
  codec: string;
  compressors: Record<string, ((input: Uint8Array) => Uint8Array) | undefined>;
  stats: boolean;
  statisticsTruncateLength?: number;
  pageSize: number;
  dictionarySize?: number;
  columnIndex?: boolean;
  offsetIndex?: boolean;
  encoding?: string;
  bloomFilter?: boolean | object;
}

type Writer = ParquetWriter['writer'] & ByteWriter;
type Kind = 'string' | 'int32' | 'int64' | 'float' | 'boolean';

const SAMPLE_REJECTION_RATIO = 0.9; // hyparquet-writer's dictionary sampling threshold
const textEncoder = new TextEncoder();
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function kindOf(element: SchemaElement): Kind | null {
  if (element.logical_type || element.type_length) return null;
  const ct = element.converted_type;
  if (element.type === 'BYTE_ARRAY') return ct === 'UTF8' ? 'string' : null;
  if (ct) return null;
  if (element.type === 'INT32') return 'int32';
  if (element.type === 'INT64') return 'int64';
  if (element.type === 'FLOAT' || element.type === 'DOUBLE') return 'float';
  if (element.type === 'BOOLEAN') return 'boolean';
  return null;
}

/** Every non-null value has the JS type the kind's fast path handles (else hyparquet-writer decides, or throws). */
function valuesFit(kind: Kind, values: unknown[]): boolean {
  const t = kind === 'string' ? 'string' : kind === 'int64' ? 'bigint' : kind === 'boolean' ? 'boolean' : 'number';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v !== null && v !== undefined && typeof v !== t) return false;
    if (kind === 'int32' && v !== null && v !== undefined && ((v as number) | 0) !== v) return false;
  }
  return true;
}

/** Code point order of two strings (UTF-8 byte order), as hyparquet-writer's compareStrings. */
function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  if (i === n) return a.length - b.length;
  const x = a.charCodeAt(i);
  const y = b.charCodeAt(i);
  // Below the surrogates UTF-16 order is code point order; at or above them, compare code points.
  if (x < 0xd800 && y < 0xd800) return x - y;
  if (i > 0) {
    const prev = a.charCodeAt(i - 1);
    if (prev >= 0xd800 && prev <= 0xdbff) i--;
  }
  while (i < a.length && i < b.length) {
    const p = codePoint(a, i);
    const q = codePoint(b, i);
    if (p !== q) return p - q;
    i += p > 0xffff ? 2 : 1;
  }
  return a.length - b.length;
}

function codePoint(s: string, i: number): number {
  const c = s.codePointAt(i) ?? 0xfffd;
  return c >= 0xd800 && c <= 0xdfff ? 0xfffd : c;
}

function compare(a: unknown, b: unknown): number {
  if (typeof a === 'string') return compareStrings(a, b as string);
  return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
}

interface Stats {
  min_value: unknown;
  max_value: unknown;
  null_count: bigint;
  nan_count: bigint | undefined;
}

/** hyparquet-writer's getStatistics over values[start, end). */
function statistics(values: unknown[], start: number, end: number, isFloat: boolean): Stats {
  let min: unknown = undefined;
  let max: unknown = undefined;
  let nulls = 0;
  let nans = 0;
  for (let i = start; i < end; i++) {
    const v = values[i];
    if (v === null || v === undefined) {
      nulls++;
      continue;
    }
    if (v !== v) {
      nans++;
      continue;
    }
    if (min === undefined || compare(v, min) < 0) min = v;
    if (max === undefined || compare(v, max) > 0) max = v;
  }
  if (min === 0) min = -0;
  if (max === 0) max = 0;
  return { min_value: min, max_value: max, null_count: BigInt(nulls), nan_count: isFloat ? BigInt(nans) : undefined };
}

/** The same statistics for a page of dictionary indexes, from each entry's rank in sorted order. */
function dictionaryStatistics(indexes: number[], start: number, end: number, dictionary: unknown[], rank: Int32Array): Stats {
  let lo = -1;
  let hi = -1;
  let nulls = 0;
  for (let i = start; i < end; i++) {
    const k = indexes[i];
    if (k === undefined) {
      nulls++;
      continue;
    }
    if (lo < 0 || rank[k] < rank[lo]) lo = k;
    if (hi < 0 || rank[k] > rank[hi]) hi = k;
  }
  let min = lo < 0 ? undefined : dictionary[lo];
  let max = hi < 0 ? undefined : dictionary[hi];
  if (min === 0) min = -0;
  if (max === 0) max = 0;
  return { min_value: min, max_value: max, null_count: BigInt(nulls), nan_count: undefined };
}

function valueSize(kind: Kind, type: string, v: unknown): number {
  if (v === null || v === undefined) return 0;
  if (kind === 'string') return (v as string).length;
  if (kind === 'boolean') return 0.125;
  return type === 'INT32' || type === 'FLOAT' ? 4 : 8;
}

/** hyparquet-writer's useDictionary for these kinds (no forced encoding, no size cap). */
function useDictionary(kind: Kind, type: string, values: unknown[], required: boolean): { dictionary: unknown[]; indexes: number[] } | null {
  if (kind === 'boolean') return null;
  const prefix = kind === 'string' ? 4 : 0;
  const n = values.length;
  const sampleSize = Math.min(n, 1000);
  const sampleSizes = new Map<unknown, number>();
  let sampleDictionarySize = 0;
  let sampleTotalSize = 0;
  for (let i = 0; i < sampleSize; i++) {
    const v = values[sampleSize === 1 ? 0 : Math.floor((i * (n - 1)) / (sampleSize - 1))];
    let size = sampleSizes.get(v);
    if (size === undefined) {
      size = valueSize(kind, type, v) + (v === null || v === undefined ? 0 : prefix);
      sampleSizes.set(v, size);
      sampleDictionarySize += size;
    }
    sampleTotalSize += size;
  }
  if (!sampleTotalSize || sampleDictionarySize / sampleTotalSize > SAMPLE_REJECTION_RATIO) return null;

  const dictionary: unknown[] = [];
  const indexes = new Array<number>(n);
  const position = new Map<unknown, number>();
  const sizes: number[] = [];
  let dictSize = 0;
  let totalSize = 0;
  let nonNull = 0;
  let last: unknown = undefined; // a run of equal values needs no lookup (=== agrees with the Map's keys here)
  let lastK = -1;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v === null || v === undefined) {
      if (required) throw new Error('parquet required value is undefined');
      continue;
    }
    nonNull++;
    if (v === last) {
      totalSize += sizes[lastK];
      indexes[i] = lastK;
      continue;
    }
    let k = position.get(v);
    last = v;
    if (k === undefined) {
      const size = valueSize(kind, type, v);
      totalSize += size;
      dictSize += size;
      k = dictionary.length;
      dictionary.push(v);
      sizes.push(size);
      position.set(v, k);
    } else totalSize += sizes[k];
    indexes[i] = k;
    lastK = k;
  }
  const bitWidth = Math.ceil(Math.log2(dictionary.length));
  const indexSize = Math.ceil((nonNull * bitWidth) / 8);
  const plainSize = totalSize + nonNull * prefix;
  const dictionaryValueSize = dictSize + dictionary.length * prefix;
  if (2 * (dictionaryValueSize + indexSize) > plainSize) return null;
  return { dictionary, indexes };
}

/** Pages of at most ~pageSize estimated bytes, each starting at a row boundary (hyparquet-writer's getPageBoundaries). */
function pageBoundaries(sizeOf: (i: number) => number, n: number, pageSize: number, repetitionLevels: Levels): { start: number; end: number }[] {
  if (!pageSize) return [{ start: 0, end: n }];
  const out: { start: number; end: number }[] = [];
  let start = 0;
  let bytes = 0;
  const repeated = repetitionLevels.length > 0;
  for (let i = 0; i < n; i++) {
    const size = sizeOf(i);
    bytes += size;
    if (bytes >= pageSize && i > start && (!repeated || repetitionLevels[i] === 0)) {
      out.push({ start, end: i });
      start = i;
      bytes = size;
    }
  }
  if (start < n) out.push({ start, end: n });
  return out;
}

/** UTF-8 byte length of each string (-1 for a null), and whether it is ASCII (then bytes are char codes). */
function utf8Lengths(values: unknown[]): { lengths: Int32Array; ascii: Uint8Array } {
  const lengths = new Int32Array(values.length);
  const ascii = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== 'string') {
      lengths[i] = -1;
      continue;
    }
    let plain = 1;
    for (let c = 0; c < v.length; c++) {
      if (v.charCodeAt(c) > 0x7f) {
        plain = 0;
        break;
      }
    }
    ascii[i] = plain;
    lengths[i] = plain ? v.length : Buffer.byteLength(v, 'utf8');
  }
  return { lengths, ascii };
}

/** Plain-encode the non-null values of values[start, end) into `page`, straight into its buffer. */
function writePlain(page: ByteWriter, kind: Kind, type: string, values: unknown[], start: number, end: number, utf8: ReturnType<typeof utf8Lengths> | null): void {
  if (kind === 'string') {
    const { lengths, ascii } = utf8!;
    let bytes = 0;
    for (let i = start; i < end; i++) if (lengths[i] >= 0) bytes += 4 + lengths[i];
    page.ensure(bytes);
    const out = new Uint8Array(page.buffer);
    let at = page.index;
    for (let i = start; i < end; i++) {
      const n = lengths[i];
      if (n < 0) continue;
      page.view.setUint32(at, n, true);
      at += 4;
      const v = values[i] as string;
      if (ascii[i]) for (let c = 0; c < n; c++) out[at + c] = v.charCodeAt(c);
      else textEncoder.encodeInto(v, out.subarray(at, at + n));
      at += n;
    }
    page.offset += at - page.index;
    page.index = at;
    return;
  }
  const width = type === 'INT32' || type === 'FLOAT' ? 4 : 8;
  page.ensure(width * (end - start));
  const view = page.view;
  let at = page.index;
  for (let i = start; i < end; i++) {
    const v = values[i];
    if (v === null || v === undefined) continue;
    if (type === 'INT32') view.setInt32(at, v as number, true);
    else if (type === 'INT64') view.setBigInt64(at, v as bigint, true);
    else if (type === 'FLOAT') view.setFloat32(at, v as number, true);
    else view.setFloat64(at, v as number, true);
    at += width;
  }
  page.offset += at - page.index;
  page.index = at;
}

function nonNullSlice(values: unknown[], start: number, end: number): unknown[] {
  const out: unknown[] = [];
  for (let i = start; i < end; i++) if (values[i] !== null && values[i] !== undefined) out.push(values[i]);
  return out;
}

/** Write one column chunk as hyparquet-writer's writeColumn would, or return null for a column this does not handle. */
export function writeColumnFast({ writer, column, pageData }: { writer: Writer; column: ColumnEncoder; pageData: PageData }): ReturnType<typeof import('hyparquet-writer/src/column.js').writeColumn> | null {
  const { element, stats, pageSize } = column;
  const kind = kindOf(element);
  if (!kind || column.encoding || column.dictionarySize) return null;
  const { values, definitionLevels, repetitionLevels, maxDefinitionLevel } = pageData;
  if (!Array.isArray(values) || !valuesFit(kind, values)) return null;
  const type = element.type!;
  const isFloat = kind === 'float';
  const maxRepetitionLevel = column.schemaPath.filter((e) => e.repetition_type === 'REPEATED').length;
  const offsetStart = writer.offset;
  let uncompressedSize = 0;
  const encodings: string[] = [];

  let bloomFilter: Uint32Array | undefined;
  if (column.bloomFilter) {
    const options = typeof column.bloomFilter === 'object' ? (column.bloomFilter as { fpp?: number; maxBytes?: number }) : {};
    const strings = kind === 'string' ? stringBloomFilter(values, options.fpp, options.maxBytes) : 'not strings';
    if (strings !== 'not strings') bloomFilter = strings;
    else {
      const builder = new BloomBuilder(element, options);
      for (const v of values) builder.insert(v);
      bloomFilter = builder.finalize();
    }
  }

  if (type === 'INT64') {
    for (const v of values) {
      if (v !== null && v !== undefined && ((v as bigint) < INT64_MIN || (v as bigint) > INT64_MAX)) throw new RangeError(`parquet INT64 value out of range: ${v}`);
    }
  }

  const dict = useDictionary(kind, type, values, maxDefinitionLevel === 0);
  let dictionary_page_offset: bigint | undefined;
  let encoding: string;
  let rank: Int32Array | null = null;
  let utf8: ReturnType<typeof utf8Lengths> | null = null;
  if (dict) {
    encoding = 'RLE_DICTIONARY';
    dictionary_page_offset = BigInt(writer.offset);
    const entries = kind === 'string' ? dict.dictionary.map((s) => textEncoder.encode(s as string)) : dict.dictionary;
    uncompressedSize += writeDictionaryPage(writer, column as never, entries as never);
    encodings.push('PLAIN');
    const order = isFloat ? [] : dict.dictionary.map((_, k) => k).sort((a, b) => compare(dict.dictionary[a], dict.dictionary[b]));
    rank = new Int32Array(order.length);
    order.forEach((k, r) => (rank![k] = r));
  } else {
    encoding = kind === 'boolean' && values.length > 16 ? 'RLE' : 'PLAIN';
    if (kind === 'string') utf8 = utf8Lengths(values);
  }
  encodings.push(encoding);

  const sizeOf = dict
    ? (i: number) => (dict.indexes[i] === undefined ? 0 : 4)
    : kind === 'string'
      ? (i: number) => Math.max(0, utf8!.lengths[i])
      : (i: number) => valueSize(kind, type, values[i]);
  const pages = pageBoundaries(sizeOf, values.length, pageSize, repetitionLevels);
  // Floats keep the value-by-value path: NaN has no rank.
  const pageStats = (start: number, end: number) => (dict && !isFloat ? dictionaryStatistics(dict.indexes, start, end, dict.dictionary, rank!) : statistics(values, start, end, isFloat));

  let columnIndex: {
    null_pages: boolean[];
    min_values: Uint8Array[];
    max_values: Uint8Array[];
    boundary_order: string;
    null_counts: bigint[];
    nan_counts?: bigint[];
  } | undefined = column.columnIndex && pages.length > 1
    ? { null_pages: [], min_values: [], max_values: [], boundary_order: 'UNORDERED', null_counts: [], nan_counts: isFloat ? [] : undefined }
    : undefined;
  const offsetIndex: { page_locations: { offset: bigint; compressed_page_size: number; first_row_index: bigint }[] } | undefined =
    column.offsetIndex && pages.length > 1 ? { page_locations: [] } : undefined;

  const data_page_offset = BigInt(writer.offset);
  let firstRowIndex = 0n;
  let prevStart = 0;
  let prevMin: unknown;
  let prevMax: unknown;
  let ascending = true;
  let descending = true;
  let chunkStats: Stats | null = null;
  const codec = column.codec;
  const compress = column.compressors[codec];

  for (const { start, end } of pages) {
    const pageOffset = writer.offset;
    // Levels, then values, then the header, as writeDataPageV2.
    const levels = new ByteWriter();
    let nulls = 0;
    let rows = 0;
    let repetitionBytes = 0;
    let definitionBytes = 0;
    const rep = repetitionLevels.length ? repetitionLevels.slice(start, end) : null;
    const def = definitionLevels.length ? definitionLevels.slice(start, end) : null;
    if (rep) for (let i = 0; i < rep.length; i++) rows += rep[i] === 0 ? 1 : 0;
    else rows = end - start;
    if (def) for (let i = 0; i < def.length; i++) nulls += def[i] < maxDefinitionLevel ? 1 : 0;
    if (maxRepetitionLevel) repetitionBytes = writeRleBitPackedHybrid(levels, rep ?? [], Math.ceil(Math.log2(maxRepetitionLevel + 1)));
    if (maxDefinitionLevel) definitionBytes = writeRleBitPackedHybrid(levels, def ?? [], Math.ceil(Math.log2(maxDefinitionLevel + 1)));

    const page = new ByteWriter();
    if (dict) {
      const idx = nulls ? nonNullSlice(dict.indexes, start, end) as number[] : dict.indexes.slice(start, end);
      let maxValue = 0;
      for (const k of idx) if (k > maxValue) maxValue = k;
      const bitWidth = Math.ceil(Math.log2(maxValue + 1));
      page.appendUint8(bitWidth);
      writeRleBitPackedHybrid(page, idx, bitWidth);
    } else if (encoding === 'RLE') {
      const rle = new ByteWriter();
      writeRleBitPackedHybrid(rle, nonNullSlice(values, start, end) as never, 1);
      page.appendUint32(rle.offset);
      page.appendBytes(rle.getBytes());
    } else if (kind === 'boolean') {
      writePlainValues(page, nonNullSlice(values, start, end) as never, 'BOOLEAN', undefined); // at most 16 values
    } else {
      writePlain(page, kind, type, values, start, end, utf8);
    }
    const pageBytes = page.getBytes();
    const compressed = compress?.(pageBytes) ?? pageBytes;
    const headerStart = writer.offset;
    writePageHeader(writer, {
      type: 'DATA_PAGE_V2',
      uncompressed_page_size: levels.offset + page.offset,
      compressed_page_size: levels.offset + compressed.length,
      data_page_header_v2: {
        num_values: def ? def.length : end - start,
        num_nulls: nulls,
        num_rows: rows,
        encoding,
        definition_levels_byte_length: definitionBytes,
        repetition_levels_byte_length: repetitionBytes,
        is_compressed: !!codec,
      },
    } as never);
    const headerSize = writer.offset - headerStart;
    writer.appendBytes(levels.getBytes());
    writer.appendBytes(compressed);
    uncompressedSize += headerSize + levels.offset + page.offset;

    const s = stats || columnIndex ? pageStats(start, end) : null;
    if (s) chunkStats = chunkStats ? merge(chunkStats, s) : s;
    if (columnIndex && s) {
      const nullPage = s.null_count === BigInt(end - start);
      const minBytes = unconvertMinMax(s.min_value as never, element, false, column.statisticsTruncateLength);
      const maxBytes = unconvertMinMax(s.max_value as never, element, true, column.statisticsTruncateLength);
      if (!nullPage && (!minBytes || !maxBytes)) columnIndex = undefined;
      else {
        columnIndex.null_pages.push(nullPage);
        columnIndex.min_values.push(minBytes ?? new Uint8Array());
        columnIndex.max_values.push(maxBytes ?? new Uint8Array());
        columnIndex.null_counts.push(s.null_count);
        if (s.nan_count !== undefined) columnIndex.nan_counts?.push(s.nan_count);
        if (prevMin !== undefined && s.min_value !== undefined) {
          const order = compare(prevMin, s.min_value);
          if (order > 0) ascending = false;
          if (order < 0) descending = false;
        }
        if (prevMax !== undefined && s.max_value !== undefined) {
          const order = compare(prevMax, s.max_value);
          if (order > 0) ascending = false;
          if (order < 0) descending = false;
        }
        prevMin = s.min_value;
        prevMax = s.max_value;
      }
    }
    if (offsetIndex) {
      if (repetitionLevels.length) {
        for (let i = prevStart + 1; i <= start; i++) if (repetitionLevels[i] === 0) firstRowIndex++;
      } else firstRowIndex = BigInt(start);
      offsetIndex.page_locations.push({ offset: BigInt(pageOffset), compressed_page_size: writer.offset - pageOffset, first_row_index: firstRowIndex });
    }
    prevStart = start;
  }
  if (columnIndex) {
    if (ascending) columnIndex.boundary_order = 'ASCENDING';
    else if (descending) columnIndex.boundary_order = 'DESCENDING';
  }

  let encoding_stats: { page_type: string; encoding: string; count: number }[] | undefined;
  if (stats) {
    encoding_stats = [];
    if (dictionary_page_offset !== undefined) encoding_stats.push({ page_type: 'DICTIONARY_PAGE', encoding: 'PLAIN', count: 1 });
    encoding_stats.push({ page_type: 'DATA_PAGE_V2', encoding, count: pages.length });
  }
  const statistics_ = stats ? (chunkStats ?? { min_value: undefined, max_value: undefined, null_count: 0n, nan_count: isFloat ? 0n : undefined }) : undefined;
  return {
    chunk: {
      meta_data: {
        type,
        encodings,
        path_in_schema: column.schemaPath.slice(1).map((s) => s.name),
        codec: codec ?? 'UNCOMPRESSED',
        num_values: BigInt(values.length),
        total_compressed_size: BigInt(writer.offset - offsetStart),
        total_uncompressed_size: BigInt(uncompressedSize),
        data_page_offset,
        dictionary_page_offset,
        statistics: statistics_,
        encoding_stats,
        geospatial_statistics: undefined,
      },
      file_offset: BigInt(offsetStart),
    },
    columnIndex,
    offsetIndex,
    bloomFilter,
  } as never;
}

/** Statistics of two adjacent runs of values, as one getStatistics over both. */
function merge(a: Stats, b: Stats): Stats {
  let min = a.min_value;
  let max = a.max_value;
  if (b.min_value !== undefined && (min === undefined || compare(b.min_value, min) < 0)) min = b.min_value;
  if (b.max_value !== undefined && (max === undefined || compare(b.max_value, max) > 0)) max = b.max_value;
  if (min === 0) min = -0;
  if (max === 0) max = 0;
  return {
    min_value: min,
    max_value: max,
    null_count: a.null_count + b.null_count,
    nan_count: a.nan_count === undefined ? undefined : a.nan_count + (b.nan_count ?? 0n),
  };
}
