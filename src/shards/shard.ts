import { DataType, type Field } from 'apache-arrow';
import { parquetMetadataAsync, parquetReadObjects, type AsyncBuffer, type FileMetaData } from 'hyparquet';
import { UserError } from '../errors.ts';
import { encodeRows, FORMAT_VERSION, type FileKind } from './parquet.ts';
import { IMAGE_COLUMNS, isJsonField, rejectsSchema, runSchemas, scoreFields, scorersInColumns, type ManifestRow, type PairRecord, type RunSchemas } from './record.ts';

/** A row group is sized by bytes: ~32 MiB of images keeps readers' memory flat and seeks cheap. */
export const DEFAULT_ROW_GROUP_BYTES = 32 * 1024 * 1024;
const REJECTS_ROW_GROUP_ROWS = 50_000;

export interface ShardOptions {
  /** Target bytes of image data per row group (default 32 MiB); the row count is derived from the records. */
  rowGroupBytes?: number;
  /** A fixed row count per row group; overrides rowGroupBytes. */
  rowGroupRows?: number;
  /** The run's schemas (runSchemas of its scorers); default: the fixed columns only. */
  schemas?: RunSchemas;
}

/** Rows per row group so that a group holds about `targetBytes` of images (at least 1 row). */
export function rowGroupRowsFor(records: readonly PairRecord[], targetBytes: number): number {
  if (records.length === 0) return 1;
  let bytes = 0;
  for (const r of records) bytes += (r.source_image?.bytes.length ?? 0) + (r.edited_image?.bytes.length ?? 0) + 1024;
  return Math.max(1, Math.floor(targetBytes / (bytes / records.length)));
}

/** The accepted pairs of one shard as a Parquet file, images embedded. Same records → same bytes. */
export function encodeShard(records: readonly PairRecord[], opts: ShardOptions = {}): Uint8Array {
  for (const r of records) {
    if (!r.accepted) throw new Error(`encodeShard: pair ${r.pair_id} is rejected; rejected pairs go to encodeRejects`);
    if (!r.source_image || !r.edited_image) throw new Error(`encodeShard: pair ${r.pair_id} has no encoded images`);
  }
  for (const [name, v] of [['rowGroupRows', opts.rowGroupRows], ['rowGroupBytes', opts.rowGroupBytes]] as const) {
    if (v !== undefined && !(Number.isInteger(v) && v > 0)) throw new UserError(`shard option ${name}: expected a positive integer, got ${v}`);
  }
  const rowGroupRows = opts.rowGroupRows ?? rowGroupRowsFor(records, opts.rowGroupBytes ?? DEFAULT_ROW_GROUP_BYTES);
  let sizeHint = 1 << 16;
  for (const r of records) sizeHint += r.source_image!.bytes.length + r.edited_image!.bytes.length + 2048;
  return encodeRows(records, { schema: (opts.schemas ?? runSchemas()).pair, kind: 'shard', rowGroupRows, sizeHint });
}

/** Every rejected candidate of one shard as a Parquet file: all columns except the two image columns. */
export function encodeRejects(records: readonly PairRecord[], schemas: RunSchemas = runSchemas()): Uint8Array {
  for (const r of records) {
    if (r.accepted) throw new Error(`encodeRejects: pair ${r.pair_id} is accepted; accepted pairs go to encodeShard`);
  }
  return encodeRows(records, { schema: schemas.rejects, kind: 'rejects', rowGroupRows: REJECTS_ROW_GROUP_ROWS });
}

/**
 * A file to read: its bytes, or a range reader (byteLength + slice) so that only the footer and the
 * requested column chunks are fetched, e.g. ranged GETs on S3.
 */
export type ParquetSource = Uint8Array | AsyncBuffer;

/** What hyparquet reads from: bytes in memory are wrapped (no copy until a slice is asked for). */
export function asAsyncBuffer(src: ParquetSource): AsyncBuffer {
  if (!(src instanceof Uint8Array)) return src;
  return { byteLength: src.byteLength, slice: (start, end) => src.buffer.slice(src.byteOffset + start, src.byteOffset + (end ?? src.byteLength)) as ArrayBuffer };
}

/** Parse and check the footer of a pairgen file; `file` names it in errors. */
export async function readPairgenMetadata(src: ParquetSource, file: string): Promise<{ metadata: FileMetaData; kind: FileKind; buffer: AsyncBuffer }> {
  const buffer = asAsyncBuffer(src);
  let metadata: FileMetaData;
  try {
    metadata = await parquetMetadataAsync(buffer);
  } catch (e) {
    throw new UserError(`${file}: not a readable Parquet file (${(e as Error).message})`);
  }
  const kv = metadata.key_value_metadata?.find((k) => k.key === 'pairgen')?.value;
  let tag: { kind?: FileKind; version?: number } = {};
  try {
    tag = kv ? JSON.parse(kv) : {};
  } catch {
    /* reported below */
  }
  if (!tag.kind || tag.version !== FORMAT_VERSION) {
    throw new UserError(`${file}: not a pairgen v${FORMAT_VERSION} data file (Parquet key-value metadata "pairgen" is ${kv === undefined ? 'missing' : JSON.stringify(kv)})`);
  }
  return { metadata, kind: tag.kind, buffer };
}

/**
 * Read a shard or rejects file WITHOUT its image bytes (only the metadata column chunks are decoded)
 * and return manifest rows. `file` is the file's key relative to the run root, recorded in each row.
 */
export async function readShardMetadataRows(source: ParquetSource, file: string): Promise<ManifestRow[]> {
  const { metadata, kind, buffer } = await readPairgenMetadata(source, file);
  if (kind === 'manifest' || kind === 'manifest-part') throw new UserError(`${file}: is a ${kind}, expected a shard or rejects file`);
  const present = new Set(metadata.schema.map((s) => s.name));
  const missing = rejectsSchema.fields.filter((f) => !present.has(f.name)).map((f) => f.name);
  if (missing.length) throw new UserError(`${file}: missing column(s) ${missing.join(', ')}`);
  // The score columns are the ones of the scorers the file's run enabled.
  const fields = [...rejectsSchema.fields, ...scoreFields(scorersInColumns(present))];
  const rows = await parquetReadObjects({ file: buffer, metadata, columns: fields.map((f) => f.name) });
  return rows.map((raw, i) => {
    const row: Record<string, unknown> = {};
    for (const f of fields) row[f.name] = recordValue(f, raw[f.name]);
    row.file = file;
    row.file_row = i;
    return row as ManifestRow;
  });
}

/**
 * A cell as hyparquet reads it → its PairRecord value: JSON columns parsed, 64-bit integers as
 * numbers, image cells as { bytes, path }. Read with utf8: false, so image bytes stay binary.
 */
export function recordValue(field: Field, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (isJsonField(field)) return JSON.parse(v as string);
  if (DataType.isInt(field.type) && typeof v === 'bigint') return Number(v);
  if (DataType.isStruct(field.type) && (IMAGE_COLUMNS as readonly string[]).includes(field.name)) {
    const cell = v as { bytes: Uint8Array; path?: string | null };
    return { bytes: cell.bytes, path: cell.path ?? null };
  }
  return v;
}
