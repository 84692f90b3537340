import { DataType, type Field, type Schema } from 'apache-arrow';
import { ParquetWriter, type ColumnSource, type KeyValue, type SchemaElement, type Writer } from 'hyparquet-writer';
import { V1ListPagesWriter } from './v1-pages.ts';
import type { Writable } from 'node:stream';
import { isJsonField } from './record.ts';
import { canonicalJson } from '../util/json.ts';

/**
 * The bridge from the Arrow schema (record.ts) to Parquet via hyparquet-writer: the Parquet schema,
 * per-column write settings, value conversion and the key-value metadata (`huggingface`, `pairgen`).
 * hyparquet-writer was chosen by measurement (bench/write.ts; docs/shards.md).
 */

export type FileKind = 'shard' | 'rejects' | 'manifest' | 'manifest-part';
export const FORMAT_VERSION = 1;
const CREATED_BY = 'pairgen (hyparquet-writer)';

/**
 * Every column is OPTIONAL in the file, as `datasets` (pyarrow) writes them: datasets skips the features
 * declared in the `huggingface` metadata for REQUIRED columns. Records are still checked for nulls
 * against the Arrow schema's nullability before they are written (cell() below).
 */
function element(f: Field<DataType>): SchemaElement[] {
  const repetition_type = 'OPTIONAL';
  const t = f.type;
  if (DataType.isUtf8(t)) return [{ name: f.name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type }];
  if (DataType.isBinary(t)) return [{ name: f.name, type: 'BYTE_ARRAY', repetition_type }];
  if (DataType.isBool(t)) return [{ name: f.name, type: 'BOOLEAN', repetition_type }];
  if (DataType.isInt(t)) return [{ name: f.name, type: t.bitWidth === 64 ? 'INT64' : 'INT32', repetition_type }];
  if (DataType.isFloat(t)) return [{ name: f.name, type: t.precision === 2 ? 'DOUBLE' : 'FLOAT', repetition_type }];
  if (DataType.isStruct(t)) {
    return [{ name: f.name, repetition_type, num_children: t.children.length }, ...t.children.flatMap(element)];
  }
  if (DataType.isList(t)) {
    // The standard three-level list: <name> (LIST) → repeated group "list" → "element".
    return [
      { name: f.name, repetition_type, converted_type: 'LIST', num_children: 1 },
      { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
      ...element(t.children[0]),
    ];
  }
  throw new Error(`pairgen shards: no Parquet mapping for column ${f.name} of Arrow type ${t}`);
}

export function parquetSchema(schema: Schema): SchemaElement[] {
  return [{ name: 'root', num_children: schema.fields.length }, ...schema.fields.flatMap(element)];
}

function hfFeature(t: DataType): unknown {
  if (DataType.isStruct(t)) {
    const names = t.children.map((c) => c.name).join(',');
    if (names === 'bytes,path') return { _type: 'Image' };
    return Object.fromEntries(t.children.map((c) => [c.name, hfFeature(c.type)]));
  }
  // "Sequence" with length -1 (variable) is read by every datasets version (4.x maps it to List).
  if (DataType.isList(t)) return { feature: hfFeature(t.children[0].type), length: -1, _type: 'Sequence' };
  const dtype = DataType.isUtf8(t) ? 'string'
    : DataType.isBinary(t) ? 'binary'
    : DataType.isBool(t) ? 'bool'
    : DataType.isInt(t) ? `int${t.bitWidth}`
    : DataType.isFloat(t) ? (t.precision === 2 ? 'float64' : 'float32')
    : null;
  if (!dtype) throw new Error(`pairgen shards: no datasets feature for Arrow type ${t}`);
  return { dtype, _type: 'Value' };
}

/** The `huggingface` key-value metadata `datasets` writes and reads: {"info": {"features": {...}}}. */
export function huggingfaceMetadata(schema: Schema): string {
  return JSON.stringify({ info: { features: Object.fromEntries(schema.fields.map((f) => [f.name, hfFeature(f.type)])) } });
}

export function kvMetadata(schema: Schema, kind: FileKind): KeyValue[] {
  return [
    { key: 'huggingface', value: huggingfaceMetadata(schema) },
    { key: 'pairgen', value: JSON.stringify({ format: 'pairgen', kind, version: FORMAT_VERSION }) },
  ];
}

/** Convert one record property to what hyparquet-writer takes for its column (and check it). */
function cell(f: Field<DataType>, value: unknown, rowId: string): unknown {
  if (value === null || value === undefined) {
    if (!f.nullable) throw new Error(`pair record ${rowId}: column ${f.name} is ${value} but the column is not nullable`);
    return null;
  }
  const t = f.type;
  if (isJsonField(f)) return typeof value === 'string' ? value : canonicalJson(value);
  if (DataType.isInt(t)) {
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new Error(`pair record ${rowId}: column ${f.name} needs an integer, got ${String(value)}`);
    return t.bitWidth === 64 ? BigInt(value) : value;
  }
  return value;
}

/** Column data for a batch of row objects whose properties are the schema's column names. */
export function columnData(schema: Schema, rows: readonly object[], settings: (f: Field<DataType>) => Partial<ColumnSource> = () => ({})): ColumnSource[] {
  return schema.fields.map((f) => {
    const data = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i] as Record<string, unknown>;
      data[i] = cell(f, row[f.name], String(row.pair_id ?? i));
    }
    return { name: f.name, data, ...settings(f) };
  });
}

/**
 * Encoded images are already compressed: store them as PLAIN, uncompressed pages with no statistics,
 * which skips dictionary probing and snappy over megabytes that would not shrink.
 */
export function imageSettings(f: Field<DataType>): Partial<ColumnSource> {
  return DataType.isStruct(f.type) ? { encoding: 'PLAIN', codec: 'UNCOMPRESSED', statistics: false } : columnSettings(f);
}

/**
 * Every other column: a page index (column and offset indexes, so readers skip pages by value), a
 * bloom filter on pair_id (so `WHERE pair_id = ...` skips row groups of a large manifest, whose pair
 * ids are hashes that min/max statistics cannot prune), and list columns uncompressed: they hold a few
 * floats per row, and their pages convert to v1 as they are (v1-pages.ts).
 */
export function columnSettings(f: Field<DataType>): Partial<ColumnSource> {
  return {
    columnIndex: true,
    ...(f.name === 'pair_id' ? { bloomFilter: true } : {}),
    ...(DataType.isList(f.type) ? { codec: 'UNCOMPRESSED' as const } : {}),
  };
}

/** The top-level names of a schema's list columns (their pages are rewritten as v1 pages, v1-pages.ts). */
export function listColumns(schema: Schema): Set<string> {
  return new Set(schema.fields.filter((f) => DataType.isList(f.type)).map((f) => f.name));
}

/** A ParquetWriter with pairgen's file settings (schema, key-value metadata, created_by) writing into `writer`. */
export function parquetWriter(writer: Writer, schema: Schema, kind: FileKind): ParquetWriter {
  return new ParquetWriter({ writer, schema: parquetSchema(schema), kvMetadata: kvMetadata(schema, kind), createdBy: CREATED_BY });
}

export interface WriteOptions {
  schema: Schema;
  kind: FileKind;
  rowGroupRows: number;
}

/** Encode rows into one in-memory Parquet file. */
export function encodeRows(rows: readonly object[], o: WriteOptions & { sizeHint?: number }): Uint8Array {
  // Sizing the buffer up front avoids re-copying hundreds of MB of images while it doubles.
  const writer = new V1ListPagesWriter(listColumns(o.schema), Math.max(1 << 16, o.sizeHint ?? 0));
  const pq = parquetWriter(writer, o.schema, o.kind);
  writer.attach(pq);
  pq.write({ columnData: columnData(o.schema, rows, imageSettings), rowGroupSize: o.rowGroupRows });
  pq.finish();
  return writer.getBytes();
}

/** Write `chunk` to `sink`; resolves once the sink takes more (backpressure), rejects on its error. */
export function writeToSink(sink: Writable, chunk: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    sink.once('error', onError);
    const ok = sink.write(chunk, (e) => {
      if (e) reject(e);
    });
    const done = () => {
      sink.off('error', onError);
      resolve();
    };
    if (ok) done();
    else sink.once('drain', done);
  });
}

/** A hyparquet-writer Writer that hands each finished row group to a Node stream, with backpressure. */
class StreamWriter extends V1ListPagesWriter {
  constructor(private readonly sink: Writable, lists: Set<string>) {
    super(lists, 1 << 20);
  }
  override flush(): Promise<void> {
    super.flush();
    if (this.index === 0) return Promise.resolve();
    const chunk = new Uint8Array(this.buffer.slice(0, this.index));
    this.index = 0;
    return writeToSink(this.sink, chunk);
  }
  override finish(): Promise<void> {
    return this.flush();
  }
}

/** Stream rows (sync or async) into a Parquet file on `sink`, one row group in memory at a time. Does not end the sink. */
export async function streamRows(sink: Writable, rows: AsyncIterable<object> | Iterable<object>, o: WriteOptions): Promise<void> {
  const writer = new StreamWriter(sink, listColumns(o.schema));
  const pq = parquetWriter(writer, o.schema, o.kind);
  writer.attach(pq);
  let batch: object[] = [];
  const writeBatch = async () => {
    await pq.write({ columnData: columnData(o.schema, batch, columnSettings), rowGroupSize: batch.length });
    batch = [];
  };
  for await (const row of rows) {
    batch.push(row);
    if (batch.length >= o.rowGroupRows) await writeBatch();
  }
  if (batch.length) await writeBatch();
  await pq.finish();
}
