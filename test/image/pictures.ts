/**
 * Test pictures for test/image: a seeded pattern with no symmetry (so a rotation or flip always shows),
 * a JPEG stored sideways with EXIF orientation 6 (as a phone writes a portrait), and the same pixels
 * turned upright by hand, independently of sharp's own EXIF handling.
 */
import sharp, { type Sharp } from 'sharp';
import type { RgbImage } from '../../src/types.ts';
import { mulberry32 } from '../helpers/prng.ts';

/** Smooth colour ramps plus seeded noise and a bright block near the top-left corner. */
export function pattern(width: number, height: number, seed = 1): RgbImage {
  const random = mulberry32(seed);
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const block = x < width / 4 && y < height / 5 ? 120 : 0;
      data[i] = Math.min(255, Math.round((255 * x) / width / 2 + block + random() * 40));
      data[i + 1] = Math.min(255, Math.round((255 * y) / height / 2 + block + random() * 40));
      data[i + 2] = Math.round(60 + random() * 60);
    }
  }
  return { width, height, data };
}

/** The pixels as displayed under EXIF orientation 6: turned 90° clockwise. */
export function rotateClockwise(img: RgbImage): RgbImage {
  const { width, height } = img;
  const data = new Uint8Array(img.data.length);
  // Upright is height wide and width tall; its row r, column c is the stored row (height - 1 - c), column r.
  for (let r = 0; r < width; r++) {
    for (let c = 0; c < height; c++) {
      const from = ((height - 1 - c) * width + r) * 3;
      const to = (r * height + c) * 3;
      data.set(img.data.subarray(from, from + 3), to);
    }
  }
  return { width: height, height: width, data };
}

export function rawSharp(img: RgbImage): Sharp {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
}

/** A JPEG of `stored` (high quality, no chroma subsampling) carrying EXIF orientation 6. */
export async function sidewaysJpeg(stored: RgbImage): Promise<Buffer> {
  return rawSharp(stored).jpeg({ quality: 95, chromaSubsampling: '4:4:4' }).withMetadata({ orientation: 6 }).toBuffer();
}

/** What the JPEG's stored pixels decode to, orientation ignored (sharp applies it only when asked). */
export async function storedPixels(jpeg: Buffer): Promise<RgbImage> {
  const { data, info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data) };
}
