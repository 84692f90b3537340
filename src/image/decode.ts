import sharp from 'sharp';
import { UserError } from '../errors.ts';
import type { RgbImage } from '../types.ts';

/**
 * Decode an image file or buffer to 8-bit sRGB (alpha dropped, CMYK / grey / 16-bit converted).
 * Anything sharp cannot decode becomes a UserError naming the file.
 */
export async function decodeImage(input: string | Uint8Array, name = typeof input === 'string' ? input : 'image'): Promise<RgbImage> {
  try {
    // failOn 'error' rejects truncated files instead of returning a half-grey image.
    const { data, info } = await sharp(input, { failOn: 'error', limitInputPixels: 1 << 28 })
      .rotate() // honour EXIF orientation: face boxes refer to the image as displayed
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`expected 3 channels after conversion, got ${info.channels}`);
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    const reason = (e as NodeJS.ErrnoException).code === 'ENOENT' || /no such file|missing/i.test(msg) ? 'no such file' : msg;
    throw new UserError(`cannot read image ${name}: ${reason} (expected a JPEG, PNG, WebP, TIFF or GIF file)`, { cause: e });
  }
}
