import sharp from 'sharp';
import type { RgbImage } from '../types.ts';

/** The image formats a shard stores (the `image_format` column). */
export type ImageFormat = 'jpeg' | 'png' | 'webp';

export interface ImageEncoding {
  format: ImageFormat;
  /** 1..100 for jpeg / webp (default 95); ignored for png (lossless, compression level 6). */
  quality?: number;
}

/**
 * Encode an RGB image for a shard with sharp (libvips). Deterministic: no timestamps or EXIF are written,
 * and the settings are fixed, so the same pixels give the same bytes with the same sharp/libvips build.
 */
export async function encodeImage(img: RgbImage, enc: ImageEncoding): Promise<Uint8Array> {
  if (img.data.length !== img.width * img.height * 3) {
    throw new Error(`encodeImage: ${img.width}x${img.height} RGB needs ${img.width * img.height * 3} bytes, got ${img.data.length}`);
  }
  const quality = enc.quality ?? 95;
  const s = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
  const out = enc.format === 'jpeg' ? s.jpeg({ quality, chromaSubsampling: '4:4:4' })
    : enc.format === 'webp' ? s.webp({ quality })
    : s.png({ compressionLevel: 6 });
  return new Uint8Array(await out.toBuffer());
}
