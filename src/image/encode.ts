import sharp from 'sharp';
import { UserError } from '../errors.ts';
import type { RgbImage } from '../types.ts';
import { DEFAULT_QUALITY, PNG_COMPRESSION_LEVEL } from './constants.ts';

/** The image formats a shard stores (the `image_format` column). */
export type ImageFormat = 'jpeg' | 'png' | 'webp';

/** How to encode (the `output` config section works too); unset keys take the defaults of constants.ts. */
export interface ImageEncoding {
  format: ImageFormat;
  /** 1..100 for jpeg and lossy webp (default DEFAULT_QUALITY); not used by png or lossless webp. */
  quality?: number;
  /** webp only: lossless WebP (quality is then not used). */
  lossless?: boolean;
}

/** The settings that decide an image's bytes, only those that apply to its format (what a dataset card shows). */
export type ImageSettings =
  | { format: 'jpeg'; quality: number; chroma_subsampling: '4:4:4' }
  | { format: 'webp'; quality: number }
  | { format: 'webp'; lossless: true }
  | { format: 'png'; png_compression_level: number; adaptive_filtering: true };

/** The image keys of the `output` config section (run.json of older runs may lack `lossless`). */
export interface OutputImageKeys {
  image_format: ImageFormat;
  quality?: number;
  lossless?: boolean;
}

/**
 * The settings an `output` config section (or an ImageEncoding) gives its format. `lossless` with a
 * format other than webp is refused: the config schema already refuses it at load time.
 */
export function imageSettingsFor(output: OutputImageKeys | ImageEncoding): ImageSettings {
  const format = 'image_format' in output ? output.image_format : output.format;
  const quality = output.quality ?? DEFAULT_QUALITY;
  if (output.lossless && format !== 'webp') throw new UserError(`output.lossless: true applies only to output.image_format webp, got ${format}`);
  if (format === 'png') return { format, png_compression_level: PNG_COMPRESSION_LEVEL, adaptive_filtering: true };
  if (format === 'webp') return output.lossless ? { format, lossless: true } : { format, quality };
  return { format, quality, chroma_subsampling: '4:4:4' };
}

/**
 * Encode an RGB image for a shard with sharp (libvips). Deterministic: no timestamps or EXIF are written,
 * and the settings are fixed, so the same pixels give the same bytes with the same sharp/libvips build.
 */
export async function encodeImage(img: RgbImage, enc: ImageEncoding | OutputImageKeys): Promise<Uint8Array> {
  if (img.data.length !== img.width * img.height * 3) {
    throw new Error(`encodeImage: ${img.width}x${img.height} RGB needs ${img.width * img.height * 3} bytes, got ${img.data.length}`);
  }
  const settings = imageSettingsFor(enc);
  const s = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
  const out = settings.format === 'jpeg' ? s.jpeg({ quality: settings.quality, chromaSubsampling: '4:4:4' })
    : settings.format === 'webp' ? s.webp('lossless' in settings ? { lossless: true } : { quality: settings.quality })
    : s.png({ compressionLevel: settings.png_compression_level, adaptiveFiltering: true, palette: false });
  return new Uint8Array(await out.toBuffer());
}
