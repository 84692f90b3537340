/**
 * GET /api/pairs/<pair_id>/source|edited: a pair's stored image bytes, read from the data file the
 * manifest names with ranged reads (the file's footer and the row group holding the row, not the whole
 * shard); or, for a reject (which keeps no images) asked with ?regenerate=1, the pair drawn again from its
 * seed with the run's teacher and encoded as the run encodes (like `pairgen preview --regenerate`).
 */
import { createHash } from 'node:crypto';
import type { AsyncBuffer } from 'hyparquet';
import { runTeacher } from '../candidates/draw.ts';
import { specOfRow } from '../candidates/table.ts';
import { isDataKey } from '../dataset/layout.ts';
import type { RunPlan } from '../dataset/run-file.ts';
import { ShardFile } from '../dataset/rows.ts';
import { encodeImage } from '../image/encode.ts';
import type { Store } from '../store/types.ts';
import type { Teacher } from '../types.ts';
import { badRequest, notFound, type Reply } from './http.ts';

export type Which = 'source' | 'edited';

/** What an image request needs of a manifest row. */
export interface ImageRow {
  pair_id: string;
  accepted: boolean;
  file: string;
  file_row: number;
  image_format: string;
  reject_reason?: string | null;
}

const CONTENT_TYPES: Record<string, string> = { png: 'image/png', jpeg: 'image/jpeg', jpg: 'image/jpeg', webp: 'image/webp' };
/** A data file key as the manifest writes it; anything else (a tampered manifest) is never read. */
const DATA_FILE = /^data\/[A-Za-z0-9_-]+\.parquet$/;

/** A small least-recently-used map. */
export class Lru<K, V> {
  private readonly map = new Map<K, V>();
  constructor(private readonly size: number) {}
  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }
  delete(key: K): void {
    this.map.delete(key);
  }
  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.size) this.map.delete(this.map.keys().next().value as K);
  }
}

export class PairImages {
  /** Data files' footers, kept: a grid page asks for dozens of images of the same few files. */
  private readonly files = new Lru<string, Promise<ShardFile>>(32);
  /** Regenerated pairs (both images drawn at once) and draws in flight, by pair id. */
  private readonly drawn = new Lru<string, Promise<Record<Which, Uint8Array>>>(64);
  private teacher: Promise<Teacher> | null = null;
  private drawing: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly plan: RunPlan,
    private readonly store: Store,
  ) {}

  /** The image reply; `fullRow` gives the row's every column (a regeneration needs its prompt and seed). */
  async image(row: ImageRow, which: Which, regenerate: boolean, fullRow: () => Promise<Record<string, unknown>>, ifNoneMatch?: string): Promise<Reply> {
    const type = CONTENT_TYPES[row.image_format] ?? 'application/octet-stream';
    if (row.accepted) {
      if (!DATA_FILE.test(row.file) || !isDataKey(row.file)) throw badRequest(`pair ${row.pair_id}: the manifest names ${JSON.stringify(row.file)}, not a data file of the run`);
      const bytes = await this.stored(row, which);
      const etag = `"${createHash('sha256').update(bytes).digest('hex').slice(0, 32)}"`;
      const headers = { 'Content-Type': type, 'Cache-Control': 'public, max-age=31536000, immutable', ETag: etag };
      if (ifNoneMatch === etag) return { bytes: new Uint8Array(0), headers, status: 304 };
      return { bytes, headers };
    }
    if (!regenerate) throw notFound(`pair ${row.pair_id} was rejected (${row.reject_reason ?? 'rejected'}), so the run keeps no images of it; ask with ?regenerate=1 to draw it again from its seed`);
    const pair = await this.regenerated(row.pair_id, fullRow);
    return { bytes: pair[which], headers: { 'Content-Type': type, 'Cache-Control': 'no-store', 'X-Pairgen-Regenerated': '1' } };
  }

  private async stored(row: ImageRow, which: Which): Promise<Uint8Array> {
    let file = this.files.get(row.file);
    if (!file) {
      file = this.openFile(row.file);
      file.catch(() => this.files.delete(row.file));
      this.files.set(row.file, file);
    }
    const images = await (await file).images([row]);
    const cell = images?.get(row.pair_id)?.[which === 'source' ? 'source_image' : 'edited_image'];
    if (!cell) throw notFound(`pair ${row.pair_id}: ${row.file} holds no ${which} image for it`);
    return cell.bytes;
  }

  /** A data file read through ranged GETs: hyparquet asks for the footer, then only the row group it needs. */
  private async openFile(key: string): Promise<ShardFile> {
    const head = await this.store.head(key);
    if (!head) throw notFound(`${this.store.uri}/${key}: listed in the manifest but missing from the run`);
    const buffer: AsyncBuffer = {
      byteLength: head.size,
      slice: async (start, end) => {
        const bytes = await this.store.getRange(key, start, end ?? head.size);
        return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
      },
    };
    return ShardFile.open(buffer, `${this.store.uri}/${key}`);
  }

  private regenerated(pairId: string, fullRow: () => Promise<Record<string, unknown>>): Promise<Record<Which, Uint8Array>> {
    let pair = this.drawn.get(pairId);
    if (!pair) {
      // One draw at a time: the teacher is one model in this process.
      pair = this.drawing.then(async () => this.draw(await fullRow()));
      this.drawing = pair.catch(() => undefined);
      pair.catch(() => this.drawn.delete(pairId));
      this.drawn.set(pairId, pair);
    }
    return pair;
  }

  private async draw(row: Record<string, unknown>): Promise<Record<Which, Uint8Array>> {
    if (!this.teacher) {
      this.teacher = runTeacher(this.plan);
      this.teacher.catch(() => (this.teacher = null));
    }
    const teacher = await this.teacher;
    const spec = specOfRow(
      {
        pair_id: String(row.pair_id),
        index: Number(row.index),
        seed: Number(row.seed),
        prompt_id: String(row.prompt_id),
        sample_index: Number(row.sample_index),
        category: String(row.category),
        source_prompt: String(row.source_prompt),
        instruction: String(row.instruction),
        target_prompt: String(row.target_prompt),
        attributes: row.attributes as Record<string, string>,
      },
      typeof row.identity_threshold === 'number' ? row.identity_threshold : null,
    );
    const [pair] = await teacher.generate([spec]);
    const output = this.plan.config.output;
    const encoding = { format: output.image_format, quality: output.quality, lossless: output.lossless };
    const [source, edited] = await Promise.all([encodeImage(pair.source, encoding), encodeImage(pair.edited, encoding)]);
    return { source, edited };
  }

  async close(): Promise<void> {
    const teacher = this.teacher;
    this.teacher = null;
    if (teacher) await (await teacher.catch(() => null))?.close();
  }
}
