import { extname } from 'node:path';
import { UserError } from '../errors.ts';
import { decodeImageCover, ImageSources } from '../image/index.ts';
import type { RgbImage } from '../types.ts';
import type { SourcesConfig } from './config.ts';
import { readNpy } from './npy.ts';

/*
 * The teacher's side of images: its pipelines work on float HWC RGB in [0, 1] (the diffusers numpy
 * convention), so the 8-bit ↔ float conversions and the .npy input live here; decoding and reading
 * sources are src/image's.
 */

/** `--image` input: a .npy float32 HWC [0, 1] array of exactly height x width x 3, or an encoded image file (cover, centre crop). */
export async function readImageInput(path: string, width: number, height: number): Promise<Float32Array> {
  if (extname(path).toLowerCase() !== '.npy') return fromRgb(await decodeImageCover(path, width, height));
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

/** Real source portraits for img2img mode (teacher.sources): a folder of images or a Parquet table's image column. */
export class SourcePortraits {
  private constructor(private readonly sources: ImageSources) {}

  static async open(cfg: SourcesConfig): Promise<SourcePortraits> {
    const keys = { path: 'teacher.sources.path', column: 'teacher.sources.column' };
    return new SourcePortraits(await ImageSources.open(cfg.path, { columns: [cfg.column], keys }));
  }

  get count(): number {
    return this.sources.count;
  }

  /** Portrait i mod count, decoded upright to float HWC [0, 1] at width x height (cover, centre crop). */
  async get(i: number, width: number, height: number): Promise<Float32Array> {
    const { input, label } = await this.sources.get(i % this.count);
    return fromRgb(await decodeImageCover(input, width, height, label));
  }
}
