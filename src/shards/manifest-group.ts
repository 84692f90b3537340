import { DataType, type Field } from 'apache-arrow';
import { UserError } from '../errors.ts';
import type { Store } from '../store/types.ts';
import { columnSettings, listColumns, parquetWriter } from './parquet.ts';
import { canonicalJson } from '../util/json.ts';
import { isJsonField, runSchemas, type RunSchemas } from './record.ts';
import type { ScorerName } from '../scorers/config.ts';
import { readPairgenMetadata, type ParquetSource } from './shard.ts';
import { readColumns } from './column-reader.ts';
import { V1ListPagesWriter } from './v1-pages.ts';
import type { EncodedRowGroup } from '../util/parquet-groups.ts';
import { writeRowGroup } from '../util/parquet-row-group.ts';

/**
 * A shard's manifest part, made from its files without going through row objects: each file's metadata
 * columns are decoded column by column, reordered by candidate index and encoded as one row group by
 * util/parquet-row-group.ts (the row group writeManifest writes for the same rows). The worker makes it
 * at commit (dataset/commit.ts), finalize for a shard committed without one, and finalize merges the
 * parts (manifest-merge.ts). Also here: a group's stats columns and the types both share.
 */

/** A committed shard's files (each with its row count from the marker). */
export interface ManifestShard {
  shard: number;
  files: { name: string; size: number; rows: number }[];
  /** The shard's manifest part (its rows already encoded, manifest-part), when its marker lists one. */
  part?: { name: string; size: number; rows: number };
}

/** A manifest row group of whole shards: their rows in shard order (each shard's files merged by index). */
export interface GroupTask {
  shards: ManifestShard[];
  /** The run's scorers: their score columns are read and written after the fixed ones. */
  scorers: ScorerName[];
  /** Score columns handed to stats (those the run's rules read). */
  statsScores: string[];
  /** With the duplicates scorer: the group's `duplicate_of` marks in row order (finalize's near-duplicate pass). */
  duplicateOf?: (string | null)[];
  rows: number;
}

/**
 * The columns stats.json needs, for the group's rows in order: the teacher's ground truth from `extra`
 * (`identity_kept`, `edit_kept`: 1 / 0, -1 when extra has none; `edit_made`: EDIT_MADE's index, -1 when
 * none) and the score columns the run's rules read (to judge the identity and the rules apart).
 */
export interface GroupStatsColumns {
  category: string[];
  split: string[];
  accepted: Uint8Array;
  reject_reason: (string | null)[];
  identity_similarity: (number | null)[];
  identity_threshold: number[];
  identity_kept: Int8Array;
  edit_kept: Int8Array;
  edit_made: Int8Array;
  scores: Record<string, (number | null)[]>;
}

/** The reference teacher's `edit_made` values, by their index in GroupStatsColumns.edit_made. */
export const EDIT_MADE = ['right', 'none', 'wrong'] as const;

/** An encoded row group placed at file offset 4 (right after the magic), with what ParquetWriter keeps of it. */
export interface EncodedGroup extends EncodedRowGroup {
  stats: GroupStatsColumns;
}

/** Shard files above this size are read by ranges (footer and metadata column chunks, never image bytes). */
export const RANGE_READ_BYTES = 8 * 2 ** 20;

export function fileSource(store: Store, f: { name: string; size: number }, rangeReadBytes: number): Promise<ParquetSource> | ParquetSource {
  if (f.size <= rangeReadBytes) return store.get(f.name);
  return {
    byteLength: f.size,
    slice: async (start: number, end?: number) => {
      const bytes = await store.getRange(f.name, start, end ?? f.size);
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    },
  };
}

type Columns = unknown[][];
const INDEX_COL = runSchemas().manifest.fields.findIndex((f) => f.name === 'index');
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Decode one shard or rejects file's metadata columns as the manifest's columns (values as ParquetWriter takes them). */
async function readFileColumns(source: ParquetSource, file: string, expectedRows: number, schemas: RunSchemas): Promise<Columns> {
  const READ_FIELDS = schemas.rejects.fields;
  const READ_NAMES = READ_FIELDS.map((f) => f.name);
  const { metadata, kind, buffer } = await readPairgenMetadata(source, file);
  if (kind === 'manifest' || kind === 'manifest-part') throw new UserError(`${file}: is a ${kind}, expected a shard or rejects file`);
  const present = new Set(metadata.schema.map((s) => s.name));
  const missing = READ_NAMES.filter((n) => !present.has(n));
  if (missing.length) throw new UserError(`${file}: missing column(s) ${missing.join(', ')}`);
  const n = Number(metadata.num_rows);
  if (n !== expectedRows) throw new UserError(`${file}: holds ${n} rows, its shard's marker says ${expectedRows}`);
  const raw = await readColumns(buffer, metadata, READ_NAMES);
  const cols: Columns = READ_FIELDS.map((f, c) => cellColumn(f, raw[c], file));
  cols.push(new Array(n).fill(file));
  cols.push(Array.from({ length: n }, (_, i) => BigInt(i)));
  if (schemas.manifest.fields.length > cols.length) cols.push(new Array(n).fill(null)); // duplicate_of: null in a part, set by finalize's merge
  return cols;
}

/**
 * A column as read → as written. The same values the row path gave (recordValue, then cell in
 * parquet.ts): nulls checked against the schema, JSON text made canonical, 64-bit integers kept as
 * bigints when they are safe integers. Each distinct JSON text is made canonical once (JSON columns
 * repeat a few texts down a run: the sampler, the settings, a prompt's attributes).
 */
function cellColumn(f: Field<DataType>, values: unknown[], file: string): unknown[] {
  const json = isJsonField(f);
  const int64 = DataType.isInt(f.type) && f.type.bitWidth === 64;
  const int32 = DataType.isInt(f.type) && !int64;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined) {
      if (!f.nullable) throw new Error(`${file} row ${i}: column ${f.name} is ${v} but the column is not nullable`);
      values[i] = null;
    } else if (json) {
      const text = canonicalText(v as string);
      if (text === null) throw new Error(`${file} row ${i}: column ${f.name} is null but the column is not nullable`);
      values[i] = text;
    } else if (int64) {
      const b = typeof v === 'bigint' ? v : BigInt(v as number);
      if (b > MAX_SAFE || b < -MAX_SAFE) throw new Error(`${file} row ${i}: column ${f.name} needs an integer, got ${Number(b)}`);
      values[i] = b;
    } else if (int32 && !Number.isSafeInteger(v)) {
      throw new Error(`${file} row ${i}: column ${f.name} needs an integer, got ${String(v)}`);
    }
  }
  return values;
}

const canonical = new Map<string, string | null>();
const CANONICAL_CACHE_SIZE = 10_000;

/** A JSON column's text as written: canonical JSON (a JSON string as its value); null for JSON null. */
function canonicalText(text: string): string | null {
  let out = canonical.get(text);
  if (out === undefined) {
    const parsed = JSON.parse(text);
    out = parsed === null ? null : typeof parsed === 'string' ? parsed : canonicalJson(parsed);
    if (canonical.size >= CANONICAL_CACHE_SIZE) canonical.clear();
    canonical.set(text, out);
  }
  return out;
}

/** A shard's rows: its files' rows merged by candidate index (stable, as the row path sorted them). */
async function readShardColumns(shard: ManifestShard, open: (f: { name: string; size: number }) => Promise<ParquetSource> | ParquetSource, schemas: RunSchemas): Promise<Columns> {
  const parts: Columns[] = [];
  for (const f of shard.files) parts.push(await readFileColumns(await open(f), f.name, f.rows, schemas));
  const cols: Columns = schemas.manifest.fields.map((_, c) => concat(parts.map((p) => p[c])));
  const index = cols[INDEX_COL] as bigint[];
  let sorted = true;
  for (let i = 1; i < index.length && sorted; i++) sorted = index[i - 1] <= index[i];
  if (sorted) return cols;
  const order = Array.from({ length: index.length }, (_, i) => i).sort((a, b) => Number(index[a]) - Number(index[b]));
  return cols.map((col) => order.map((o) => col[o]));
}

/** Arrays joined end to end (Array.prototype.flatMap is many times slower at these sizes). */
function concat(arrays: unknown[][]): unknown[] {
  if (arrays.length === 1) return arrays[0];
  const out = new Array(arrays.reduce((a, x) => a + x.length, 0));
  let k = 0;
  for (const a of arrays) for (let i = 0; i < a.length; i++) out[k++] = a[i];
  return out;
}

/** The stats columns of a group whose manifest columns `col` gives by name. */
export function statsColumns(col: (name: string) => unknown[], statsScores: string[]): GroupStatsColumns {
  const accepted = col('accepted') as boolean[];
  const extra = col('extra') as string[];
  const kept = new Int8Array(extra.length);
  const editKept = new Int8Array(extra.length);
  const editMade = new Int8Array(extra.length);
  const flag = (v: unknown) => (typeof v === 'boolean' ? Number(v) : -1);
  const flags = new Uint8Array(accepted.length); // a loop: Uint8Array.from with a map function walks an iterator
  for (let i = 0; i < accepted.length; i++) flags[i] = accepted[i] ? 1 : 0;
  let lastText = '';
  let last = [-1, -1, -1];
  for (let i = 0; i < extra.length; i++) {
    if (extra[i] !== lastText) {
      const e = (JSON.parse(extra[i]) as Record<string, unknown>) ?? {};
      last = [flag(e.identity_kept), flag(e.edit_kept), EDIT_MADE.indexOf(e.edit_made as (typeof EDIT_MADE)[number])];
      lastText = extra[i];
    }
    [kept[i], editKept[i], editMade[i]] = last;
  }
  return {
    category: col('category') as string[],
    split: col('split') as string[],
    accepted: flags,
    reject_reason: col('reject_reason') as (string | null)[],
    identity_similarity: col('identity_similarity') as (number | null)[],
    identity_threshold: col('identity_threshold') as number[],
    identity_kept: kept,
    edit_kept: editKept,
    edit_made: editMade,
    scores: Object.fromEntries(statsScores.map((c) => [c, col(c) as (number | null)[]])),
  };
}

/**
 * A shard's manifest part: its rows as one manifest row group (duplicate_of null), written as a Parquet
 * file of kind "manifest-part". The worker writes it when it commits the shard; finalize merges parts
 * (manifest-merge.ts), and makes one here for a shard committed without.
 */
export async function encodeManifestPart(shard: ManifestShard, open: (f: { name: string; size: number }) => Promise<ParquetSource> | ParquetSource, scorers: ScorerName[]): Promise<Uint8Array> {
  const schemas = runSchemas(scorers);
  const { manifest } = schemas;
  const cols = await readShardColumns(shard, open, schemas);
  const writer = new V1ListPagesWriter(listColumns(manifest), 1 << 16);
  const pq = parquetWriter(writer, manifest, 'manifest-part');
  writer.attach(pq);
  writeRowGroup(pq, manifest.fields.map((f, c) => ({ name: f.name, data: cols[c], ...columnSettings(f) }))); // no rows: no row group
  pq.finish();
  return writer.getBytes();
}
