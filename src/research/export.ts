import { PassThrough } from 'node:stream';
import tar from 'tar-stream';
import { UserError } from '../errors.ts';
import { openStore } from '../store/index.ts';
import type { Store } from '../store/types.ts';
import { RunDb, firstLine } from '../dataset/db.ts';
import { ShardFile, type RowRef, type StoredImages } from '../dataset/rows.ts';

export const EXPORT_FORMATS = ['webdataset'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportOptions {
  format: ExportFormat;
  /** SQL condition over the manifest columns (e.g. "split = 'train'"); only accepted pairs have images. */
  where?: string;
  /** Pairs per tar file (default 1000). */
  shardSize?: number;
}

export interface ExportResult {
  uri: string;
  pairs: number;
  files: string[];
}

const JSON_COLUMNS = new Set(['attributes', 'sampler', 'identity_settings', 'extra', 'changes']);
// Fixed header fields: the same pairs give the same tar bytes.
const EPOCH = new Date(0);

/**
 * `pairgen export --format webdataset`: the accepted pairs of a run (or those matching `where`), in run
 * order, as WebDataset tar shards `pairs-000000.tar`, ... Each pair is three members sharing the key
 * `<pair_id>`: `<key>.source.<ext>`, `<key>.edited.<ext>` (the stored bytes) and `<key>.json` (every
 * manifest column but file/file_row, JSON columns as objects). Written with tar-stream; each tar is
 * uploaded atomically through the store, and index.json (pairs per tar) goes last.
 */
export async function exportRun(runUri: string, outUri: string, options: ExportOptions): Promise<ExportResult> {
  if (!EXPORT_FORMATS.includes(options.format)) throw new UserError(`--format ${options.format}: expected one of ${EXPORT_FORMATS.join(', ')}`);
  const shardSize = options.shardSize ?? 1000;
  if (!Number.isInteger(shardSize) || shardSize < 1) throw new UserError(`--shard-size must be a positive integer, got ${shardSize}`);
  const run = await RunDb.open(runUri, { views: ['manifest'] });
  let rows: Record<string, unknown>[];
  try {
    if (!run.views.has('manifest')) throw new UserError(`${run.store.uri}: the run has no manifest.parquet yet; finish it with \`pairgen finalize\` first`);
    if (options.where !== undefined && options.where.trim() === '') throw new UserError('--where is empty: expected an SQL condition over the manifest columns');
    const where = options.where === undefined ? '' : ` AND (\n${options.where}\n)`;
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
  for await (const e of out.list('')) {
    if (e.key.endsWith('.tar') || e.key === 'index.json') throw new UserError(`--out ${outUri} already holds an export (${e.key}); give an empty folder`);
  }
  const images = new ImageReader(run.store, rows);
  const files: { file: string; pairs: number }[] = [];
  for (let start = 0; start < rows.length; start += shardSize) {
    const file = `pairs-${String(files.length).padStart(6, '0')}.tar`;
    const chunk = rows.slice(start, start + shardSize);
    await writeTar(out, file, chunk, images);
    files.push({ file, pairs: chunk.length });
  }
  const index = { format: 'webdataset', run: run.store.uri, run_id: run.plan.run_id, where: options.where ?? null, pairs: rows.length, files };
  await out.put('index.json', JSON.stringify(index, null, 2) + '\n', { contentType: 'application/json' });
  return { uri: out.uri, pairs: rows.length, files: files.map((f) => f.file) };
}

async function writeTar(out: Store, file: string, rows: Record<string, unknown>[], images: ImageReader): Promise<void> {
  const pack = tar.pack();
  const body = new PassThrough();
  pack.pipe(body);
  const upload = out.putStream(file, body, { contentType: 'application/x-tar' });
  const add = (name: string, bytes: Uint8Array | string) =>
    new Promise<void>((resolve, reject) => pack.entry({ name, mtime: EPOCH, mode: 0o644, uid: 0, gid: 0, uname: '', gname: '' }, Buffer.from(bytes as Uint8Array), (e) => (e ? reject(e) : resolve())));
  try {
    for (const row of rows) {
      const key = String(row.pair_id);
      const ext = row.image_format === 'jpeg' ? 'jpg' : String(row.image_format);
      const { source_image: source, edited_image: edited } = await images.get(String(row.file), key);
      await add(`${key}.source.${ext}`, source.bytes);
      await add(`${key}.edited.${ext}`, edited.bytes);
      await add(`${key}.json`, JSON.stringify(metadata(row)));
    }
    pack.finalize();
  } catch (e) {
    pack.destroy(e as Error);
    body.destroy(e as Error);
    await upload.catch(() => {});
    throw e;
  }
  await upload;
}

function metadata(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    if (k === 'file' || k === 'file_row') continue;
    out[k] = typeof v === 'bigint' ? Number(v) : JSON_COLUMNS.has(k) && typeof v === 'string' ? JSON.parse(v) : v;
  }
  return out;
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
