import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import sharp from 'sharp';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, type AsyncBuffer } from 'hyparquet';
import { UserError } from '../errors.ts';
import type { RgbImage } from '../types.ts';
import type { SourcesConfig } from './config.ts';
import { readNpy } from './npy.ts';

/** Decode an encoded image (file path or bytes) to float HWC RGB in [0, 1] at width x height (centre-cropped cover). */
export async function decodeImage(input: string | Uint8Array, width: number, height: number, label: string): Promise<Float32Array> {
  let raw: Buffer;
  try {
    raw = await sharp(input).removeAlpha().toColourspace('srgb').resize(width, height, { fit: 'cover', position: 'centre' }).raw().toBuffer();
  } catch (e) {
    throw new UserError(`cannot decode image ${label}: ${(e as Error).message}`);
  }
  if (raw.length !== width * height * 3) throw new UserError(`cannot decode image ${label}: expected RGB, got ${raw.length / (width * height)} channels`);
  return Float32Array.from(raw, (v) => v / 255);
}

/** `--image` input: a .npy float32 HWC [0, 1] array of exactly height x width x 3, or an encoded image file. */
export async function readImageInput(path: string, width: number, height: number): Promise<Float32Array> {
  if (extname(path).toLowerCase() !== '.npy') return decodeImage(path, width, height, path);
  const a = readNpy(path);
  if (a.shape.length !== 3 || a.shape[0] !== height || a.shape[1] !== width || a.shape[2] !== 3) {
    throw new UserError(`${path}: expected a float32 array of shape (${height}, ${width}, 3), got (${a.shape.join(', ')})`);
  }
  return a.data;
}

/** Float HWC in [0, 1] → 8-bit RGB, rounding as diffusers' numpy_to_pil does. */
export function toRgb(hwc: Float32Array, width: number, height: number): RgbImage {
  const data = new Uint8Array(hwc.length);
  for (let i = 0; i < hwc.length; i++) data[i] = Math.round(Math.min(1, Math.max(0, hwc[i])) * 255);
  return { width, height, data };
}

export function fromRgb(img: RgbImage): Float32Array {
  return Float32Array.from(img.data, (v) => v / 255);
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.webp']);

/** Real source portraits for img2img mode: a folder of images or a Parquet table with an image column. */
export class SourcePortraits {
  private constructor(
    readonly count: number,
    private readonly read: (i: number) => Promise<{ bytes: Uint8Array | string; label: string }>,
  ) {}

  static async open(cfg: SourcesConfig): Promise<SourcePortraits> {
    let isDir: boolean;
    try {
      isDir = statSync(cfg.path).isDirectory();
    } catch {
      throw new UserError(`teacher.sources.path: ${cfg.path} does not exist (expected a folder of images or a .parquet file)`);
    }
    if (isDir) {
      const files = readdirSync(cfg.path).filter((f) => IMAGE_EXT.has(extname(f).toLowerCase())).sort();
      if (!files.length) throw new UserError(`teacher.sources.path: ${cfg.path} holds no .png/.jpg/.jpeg/.webp images`);
      return new SourcePortraits(files.length, async (i) => ({ bytes: join(cfg.path, files[i]), label: join(cfg.path, files[i]) }));
    }
    let file: AsyncBuffer;
    let rows: number;
    try {
      file = await asyncBufferFromFile(cfg.path);
      const meta = await parquetMetadataAsync(file);
      rows = Number(meta.num_rows);
      const names = meta.schema.map((s) => s.name);
      if (!names.includes(cfg.column)) throw new UserError(`teacher.sources.column: ${cfg.path} has no column "${cfg.column}" (columns: ${names.slice(1).join(', ')})`);
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError(`teacher.sources.path: cannot read ${cfg.path} as Parquet: ${(e as Error).message}`);
    }
    if (!rows) throw new UserError(`teacher.sources.path: ${cfg.path} has no rows`);
    return new SourcePortraits(rows, async (i) => {
      const [row] = await parquetReadObjects({ file, columns: [cfg.column], rowStart: i, rowEnd: i + 1, utf8: false });
      const v = row[cfg.column] as unknown;
      const bytes = v instanceof Uint8Array ? v : (v as { bytes?: unknown } | null)?.bytes;
      if (!(bytes instanceof Uint8Array)) throw new UserError(`teacher.sources: ${cfg.path} row ${i} column "${cfg.column}" holds no image bytes (expected binary or {bytes, path})`);
      return { bytes, label: `${cfg.path} row ${i}` };
    });
  }

  /** Portrait i mod count, decoded to float HWC [0, 1] at width x height. */
  async get(i: number, width: number, height: number): Promise<Float32Array> {
    const { bytes, label } = await this.read(i % this.count);
    return decodeImage(bytes, width, height, label);
  }
}
