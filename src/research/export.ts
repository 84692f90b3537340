import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { DataType } from 'apache-arrow';
import tar from 'tar-stream';
import { stringify as toYaml } from 'yaml';
import { UserError } from '../errors.ts';
import { openStore } from '../store/index.ts';
import type { Store } from '../store/types.ts';
import { RunDb, firstLine } from '../dataset/db.ts';
import { predicateSql } from '../dataset/predicate.ts';
import { ShardFile, type RowRef, type StoredImages } from '../dataset/rows.ts';
import { manifestSchema } from '../shards/index.ts';
import { EXPORT_FORMATS, type ExportFormat } from './formats.ts';

export { EXPORT_FORMATS, type ExportFormat };

export interface ExportOptions {
  format: ExportFormat;
  /** SQL condition over the manifest columns (e.g. "split = 'train'"); only accepted pairs have images. */
  where?: string;
  /** Most pairs per tar file (default 1000). */
  shardSize?: number;
}

export interface ExportResult {
  uri: string;
  pairs: number;
  /** Every file written, tars first, then the wids indexes and README.md. */
  files: string[];
}

const JSON_COLUMNS = new Set(['attributes', 'sampler', 'identity_settings', 'extra', 'changes']);
const SPLIT_ORDER = ['train', 'validation', 'test'];
// Fixed header fields: the same pairs give the same tar bytes.
const EPOCH = new Date(0);

/**
 * `pairgen export --format webdataset`: the accepted pairs of a run (or those matching `where`) as
 * WebDataset tars, one set per split: `<split>-NNNNN-of-MMMMM.tar`, pairs in run order. Each pair is four
 * members sharing the key `<pair_id>`: `.source.<ext>` and `.edited.<ext>` (the stored bytes), `.txt`
 * (the instruction) and `.json` (every manifest column but file/file_row, JSON columns as objects). Every
 * sample's JSON has the same keys at every depth (null where a pair has no value) and spells each field
 * the same way (see toJson): HF's webdataset loader types the columns from the first five samples, drops
 * keys it meets later and fails on an int in one sample and a float in another. Beside the tars:
 * `<split>.wids.json`, a wids shard index (relative urls, sizes, md5 and sha256 of each tar), and
 * README.md, whose `configs` make `load_dataset(<folder>)` read the tars by split and whose
 * `dataset_info.features` types every field from all samples. The folder must be empty; each file is
 * written atomically through the store, README.md last; nothing holds an absolute path.
 */
export async function exportRun(runUri: string, outUri: string, options: ExportOptions): Promise<ExportResult> {
  if (!EXPORT_FORMATS.includes(options.format)) throw new UserError(`--format ${options.format}: expected one of ${EXPORT_FORMATS.join(', ')}`);
  const shardSize = options.shardSize ?? 1000;
  if (!Number.isInteger(shardSize) || shardSize < 1) throw new UserError(`--shard-size must be a positive integer, got ${shardSize}`);
  const run = await RunDb.open(runUri, { views: ['manifest'] });
  let rows: Record<string, unknown>[];
  try {
    if (!run.views.has('manifest')) throw new UserError(`${run.store.uri}: the run has no manifest.parquet yet; finish it with \`pairgen finalize\` first`);
    const where = options.where === undefined ? '' : ` AND ${predicateSql(options.where, { option: '--where', view: 'manifest', columns: await run.columns('manifest') })}`;
    try {
      rows = (await run.db.runAndReadAll(`SELECT * EXCLUDE (file_row), file_row::DOUBLE AS file_row FROM manifest WHERE accepted${where}\nORDER BY "index"`)).getRowObjectsJS();
    } catch (e) {
      throw new UserError(`--where ${JSON.stringify(options.where)}: ${firstLine(e)} (manifest columns: ${(await run.columns('manifest')).join(', ')})`);
    }
  } finally {
    await run.close();
  }
  if (rows.length === 0) throw new UserError(`${run.store.uri}: no accepted pair${options.where ? ` matches --where ${JSON.stringify(options.where)}` : ''}; nothing to export`);

  const out = openStore(outUri);
  await refuseNonEmpty(out, outUri);
  const plan = run.plan;
  const samples = stableSamples(rows);
  const images = new ImageReader(run.store, rows);
  const written: string[] = [];
  try {
    await writeExport(out, written, samples, images, { shardSize, name: plan.config.name, runId: plan.run_id, where: options.where ?? null });
  } catch (e) {
    // Nothing half-written: what this export wrote goes (each file was atomic, so no temp file is left).
    for (const key of written) await out.delete(key).catch(() => {});
    throw e;
  }
  return { uri: out.uri, pairs: rows.length, files: written };
}

async function writeExport(out: Store, written: string[], samples: Sample[], images: ImageReader, o: { shardSize: number; name: string; runId: string; where: string | null }): Promise<void> {
  const shardSize = o.shardSize;
  const json = featureOf(samples.map((x) => x.meta), FLOAT_COLUMNS);
  const bySplit = groupBySplit(samples);
  const configs: { split: string; path: string }[] = [];
  const splitInfo: { name: string; num_examples: number; num_bytes: number }[] = [];
  for (const [split, chunkRows] of bySplit) {
    const total = Math.ceil(chunkRows.length / shardSize);
    const shardlist: WidsShard[] = [];
    for (let n = 0; n < total; n++) {
      const file = `${split}-${String(n).padStart(5, '0')}-of-${String(total).padStart(5, '0')}.tar`;
      const chunk = chunkRows.slice(n * shardSize, (n + 1) * shardSize);
      const sums = await writeTar(out, file, chunk, images, json);
      written.push(file);
      shardlist.push({ url: file, nsamples: chunk.length, filesize: sums.size, md5sum: sums.md5, sha256: sums.sha256 });
    }
    const index = { __kind__: 'wids-shard-index-v1', wids_version: 1, name: `${o.name}-${split}`, shardlist };
    const indexFile = `${split}.wids.json`;
    await write(out, indexFile, JSON.stringify(index, null, 2) + '\n', 'application/json');
    written.push(indexFile);
    configs.push({ split, path: `${split}-*.tar` });
    splitInfo.push({ name: split, num_examples: chunkRows.length, num_bytes: shardlist.reduce((a, s) => a + s.filesize, 0) });
  }
  const ext = extension(String(samples[0].row.image_format));
  const card = {
    configs: [{ config_name: 'default', data_files: configs }],
    dataset_info: { features: cardFeatures(json, ext), splits: splitInfo },
  };
  await write(out, 'README.md', readme(card, { name: o.name, runId: o.runId, where: o.where, pairs: samples.length, ext }), 'text/markdown');
  written.push('README.md');
}

interface Sample {
  row: Record<string, unknown>;
  meta: Record<string, unknown>;
}

interface WidsShard {
  url: string;
  nsamples: number;
  filesize: number;
  md5sum: string;
  sha256: string;
}

async function refuseNonEmpty(out: Store, outUri: string): Promise<void> {
  try {
    for await (const e of out.list('')) throw new UserError(`--out ${outUri} is not empty (it holds ${e.key}); give an empty or new folder`);
  } catch (e) {
    throw writeError(e, outUri);
  }
}

function extension(format: string): string {
  return format === 'jpeg' ? 'jpg' : format;
}

/** Samples grouped by split: train, validation, test first, then any other split by name; run order inside. */
function groupBySplit(samples: Sample[]): Map<string, Sample[]> {
  const groups = new Map<string, Sample[]>();
  for (const s of samples) {
    const split = String(s.row.split ?? 'train');
    if (!/^[A-Za-z0-9_]+$/.test(split)) throw new Error(`export: split name ${JSON.stringify(split)} cannot name a file`);
    if (!groups.has(split)) groups.set(split, []);
    groups.get(split)!.push(s);
  }
  const rank = (s: string) => (SPLIT_ORDER.includes(s) ? SPLIT_ORDER.indexOf(s) : SPLIT_ORDER.length);
  return new Map([...groups].sort(([a], [b]) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Each row's JSON member: every manifest column but file/file_row, JSON columns parsed, and every object
 * (at any depth) given the union of the keys its column has over all rows, missing ones as null, keys sorted.
 */
function stableSamples(rows: Record<string, unknown>[]): Sample[] {
  const metas = rows.map((row) => {
    const meta: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(row)) {
      if (k === 'file' || k === 'file_row') continue;
      meta[k] = typeof v === 'bigint' ? Number(v) : JSON_COLUMNS.has(k) && typeof v === 'string' ? JSON.parse(v) : v ?? null;
    }
    return meta;
  });
  let shape: Shape = null;
  for (const m of metas) shape = widen(shape, m);
  return rows.map((row, i) => ({ row, meta: fill(metas[i], shape) as Record<string, unknown> }));
}

/** The keys of every object at every depth (arrays are leaves). */
type Shape = Map<string, Shape> | null;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function widen(shape: Shape, value: unknown): Shape {
  if (!isObject(value)) return shape;
  const map = shape ?? new Map<string, Shape>();
  for (const [k, v] of Object.entries(value)) map.set(k, widen(map.get(k) ?? null, v));
  return map;
}

function fill(value: unknown, shape: Shape): unknown {
  if (shape === null || !isObject(value)) return value ?? null;
  const out: Record<string, unknown> = {};
  for (const k of [...shape.keys()].sort()) out[k] = fill(value[k], shape.get(k)!);
  return out;
}

/** A field's feature in the card's YAML form: a dtype, a struct of named fields, or a list (`sequence`). */
type Feature = { dtype: string } | { struct: ({ name: string } & Feature)[] } | { sequence: string | Feature };

// Manifest columns stored as floats: typed float64 even when every exported value happens to be whole.
const FLOAT_COLUMNS = new Set(
  manifestSchema.fields.filter((f) => DataType.isFloat(f.type) || (DataType.isList(f.type) && DataType.isFloat(f.type.children[0].type))).map((f) => f.name),
);

/**
 * The feature of a field from all its values: struct, list, or a dtype (numbers: float64 unless every
 * value is whole; all null: `null`). `floats` names the struct keys that are float64 whatever their values.
 */
function featureOf(values: unknown[], floats: Set<string> = new Set(), isFloat = false): Feature {
  const present = values.filter((v) => v !== null && v !== undefined);
  if (present.length === 0) return { dtype: 'null' };
  if (present.every(isObject)) {
    const keys = [...new Set(present.flatMap((v) => Object.keys(v as object)))].sort();
    return { struct: keys.map((k) => ({ name: k, ...featureOf(present.map((v) => (v as Record<string, unknown>)[k]), undefined, floats.has(k)) })) };
  }
  if (present.every(Array.isArray)) {
    const inner = featureOf(present.flat(), undefined, isFloat);
    return { sequence: 'dtype' in inner ? inner.dtype : inner };
  }
  if (present.every((v) => typeof v === 'boolean')) return { dtype: 'bool' };
  if (present.every((v) => typeof v === 'number')) return { dtype: isFloat || !present.every((v) => Number.isInteger(v)) ? 'float64' : 'int64' };
  return { dtype: 'string' };
}

/**
 * JSON text of a value written to its feature, so every sample spells each field the same way: a float
 * field's whole numbers keep a ".0" (Python reads -1 as int and -1.0 as float, and pyarrow will not merge
 * the two), and a string field's odd non-string value is written as its JSON text in a string.
 */
function toJson(value: unknown, feature: Feature): string {
  if (value === null || value === undefined) return 'null';
  if ('struct' in feature) {
    const obj = value as Record<string, unknown>;
    return `{${feature.struct.map((f) => `${JSON.stringify(f.name)}:${toJson(obj[f.name], f)}`).join(',')}}`;
  }
  if ('sequence' in feature) {
    const inner = typeof feature.sequence === 'string' ? { dtype: feature.sequence } : feature.sequence;
    return `[${(value as unknown[]).map((v) => toJson(v, inner)).join(',')}]`;
  }
  if (feature.dtype === 'float64' && Number.isInteger(value) && Math.abs(value as number) < 1e21) return `${value}.0`;
  if (feature.dtype === 'string' && typeof value !== 'string') return JSON.stringify(JSON.stringify(value));
  return JSON.stringify(value);
}

/** HF `datasets` features (card YAML form) of the sample fields. */
function cardFeatures(json: Feature, ext: string): unknown[] {
  return [
    { name: `source.${ext}`, dtype: 'image' },
    { name: `edited.${ext}`, dtype: 'image' },
    { name: 'txt', dtype: 'string' },
    { name: 'json', ...json },
    { name: '__key__', dtype: 'string' },
    { name: '__url__', dtype: 'string' },
  ];
}

function readme(card: object, facts: { name: string; runId: string; where: string | null; pairs: number; ext: string }): string {
  const { name, runId, where, pairs, ext } = facts;
  return `---
${toYaml(card, { lineWidth: 0 })}---

# ${name}: WebDataset export

${pairs} accepted pairs of pairgen run \`${runId}\`${where === null ? '' : ` matching \`${where.replace(/`/g, "'")}\``}, one set of tar files per split.
Each sample is four members sharing the key \`<pair_id>\`: \`<pair_id>.source.${ext}\` and \`<pair_id>.edited.${ext}\`
(the stored images), \`<pair_id>.txt\` (the edit instruction) and \`<pair_id>.json\` (the pair's manifest
row; every sample has the same keys, null where a pair has no value).

\`\`\`python
from datasets import load_dataset
ds = load_dataset("path/to/this/folder")                      # splits and features from this card
ds = load_dataset("webdataset", data_files={"train": "path/to/this/folder/train-*.tar"})

import wids                                                   # random access, per split
train = wids.ShardListDataset("path/to/this/folder/train.wids.json")
\`\`\`

\`<split>.wids.json\` lists each split's tars (relative urls) with their sample counts, sizes, md5 and sha256.
`;
}

/** Write a small file; a failed write is one clear line. */
async function write(out: Store, key: string, body: string, contentType: string): Promise<void> {
  try {
    await out.put(key, body, { contentType });
  } catch (e) {
    throw writeError(e, `${out.uri}/${key}`);
  }
}

/**
 * A write that failed for a reason the user fixes (no space, a file size limit, a quota) as a UserError;
 * the store already words permission and not-a-folder errors as UserErrors.
 */
function writeError(e: unknown, where: string): unknown {
  const code = (e as NodeJS.ErrnoException)?.code;
  const why: Record<string, string> = {
    ENOSPC: 'no space left on the device: free some or give --out another place',
    EDQUOT: 'disk quota exceeded: free some or give --out another place',
    EFBIG: 'the file would exceed the file size limit of this process (ulimit -f): raise it, or lower --shard-size',
  };
  return code && why[code] ? new UserError(`cannot write ${where} (${code}): ${why[code]}`, { cause: e }) : e;
}

/**
 * One tar, streamed to the store (an atomic upload: a failure leaves no partial file and no temp file)
 * while its size, md5 and sha256 are computed on the way.
 */
async function writeTar(out: Store, file: string, samples: Sample[], images: ImageReader, json: Feature): Promise<{ size: number; md5: string; sha256: string }> {
  const pack = tar.pack();
  const md5 = createHash('md5');
  const sha256 = createHash('sha256');
  let size = 0;
  const sums = new Transform({
    transform(chunk: Buffer, _enc, done) {
      md5.update(chunk);
      sha256.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  const body = pack.pipe(sums);
  // Errors reach us through the upload and the entry callbacks; these would otherwise be uncaught events.
  pack.on('error', () => {});
  sums.on('error', () => {});
  let uploadError: unknown = null;
  // Handled at once: a failed upload (full disk, lost store) must stop the packing, not wait unhandled.
  const upload = out.putStream(file, body, { contentType: 'application/x-tar' }).catch((e: unknown) => {
    uploadError = e;
    pack.destroy(e as Error);
  });
  const add = (name: string, bytes: Uint8Array | string) =>
    new Promise<void>((resolve, reject) => pack.entry({ name, mtime: EPOCH, mode: 0o644, uid: 0, gid: 0, uname: '', gname: '' }, Buffer.from(bytes as Uint8Array), (e) => (e ? reject(e) : resolve())));
  try {
    for (const { row, meta } of samples) {
      const key = String(row.pair_id);
      const ext = extension(String(row.image_format));
      const { source_image: source, edited_image: edited } = await images.get(String(row.file), key);
      await add(`${key}.source.${ext}`, source.bytes);
      await add(`${key}.edited.${ext}`, edited.bytes);
      await add(`${key}.txt`, String(row.instruction));
      await add(`${key}.json`, toJson(meta, json));
    }
    pack.finalize();
  } catch (e) {
    if (!uploadError) {
      pack.destroy(e as Error);
      body.destroy(e as Error);
    }
    await upload;
    throw writeError(uploadError ?? e, `${out.uri}/${file}`);
  }
  await upload;
  if (uploadError) throw writeError(uploadError, `${out.uri}/${file}`);
  return { size, md5: md5.digest('hex'), sha256: sha256.digest('hex') };
}

/** Stored images by pair_id; holds one data file's chosen pairs at a time (rows come in file order). */
class ImageReader {
  private readonly byFile = new Map<string, RowRef[]>();
  private file: string | null = null;
  private images = new Map<string, StoredImages>();

  constructor(private readonly store: Store, rows: Record<string, unknown>[]) {
    for (const r of rows) {
      const file = String(r.file);
      if (!this.byFile.has(file)) this.byFile.set(file, []);
      this.byFile.get(file)!.push({ pair_id: String(r.pair_id), file_row: Number(r.file_row) });
    }
  }

  async get(file: string, pairId: string): Promise<StoredImages> {
    if (file !== this.file) {
      const images = await (await ShardFile.fetch(this.store, file)).images(this.byFile.get(file) ?? []);
      if (!images) throw new UserError(`${this.store.uri}/${file}: holds no images, but the manifest lists accepted pair ${pairId} there; re-run \`pairgen finalize\``);
      this.images = images;
      this.file = file;
    }
    return this.images.get(pairId)!;
  }
}
