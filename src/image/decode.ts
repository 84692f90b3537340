import { extname } from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { UserError } from '../errors.ts';
import type { RgbImage } from '../types.ts';

/** The image formats pairgen reads, by sharp's name for them: one list for the decoder, its errors and the folder readers. */
const FORMATS: Record<string, { label: string; extensions: readonly string[] }> = {
  jpeg: { label: 'JPEG', extensions: ['.jpg', '.jpeg'] },
  png: { label: 'PNG', extensions: ['.png'] },
  webp: { label: 'WebP', extensions: ['.webp'] },
  tiff: { label: 'TIFF', extensions: ['.tif', '.tiff'] },
  gif: { label: 'GIF', extensions: ['.gif'] },
};
const labels = Object.values(FORMATS).map((f) => f.label);
const EXPECTED = `expected a ${labels.slice(0, -1).join(', ')} or ${labels.at(-1)} file`;

export const IMAGE_EXTENSIONS: readonly string[] = Object.values(FORMATS).flatMap((f) => f.extensions);

/** Whether a file name has one of IMAGE_EXTENSIONS (any case). */
export function isImageFileName(name: string): boolean {
  return IMAGE_EXTENSIONS.includes(extname(name).toLowerCase());
}

/**
 * Decode an image file or buffer to 8-bit sRGB at its own size, as displayed (EXIF orientation applied;
 * alpha dropped; CMYK, grey and 16-bit converted). Anything else becomes a UserError naming the file.
 */
export function decodeImage(input: string | Uint8Array, name = nameOf(input)): Promise<RgbImage> {
  return decode(input, name, null);
}

/**
 * Decode as decodeImage, then scale to cover width x height and crop the centre (the teacher's img2img
 * sources and `sample --image`).
 */
export function decodeImageCover(input: string | Uint8Array, width: number, height: number, name = nameOf(input)): Promise<RgbImage> {
  return decode(input, name, { width, height });
}

function nameOf(input: string | Uint8Array): string {
  return typeof input === 'string' ? input : 'image';
}

async function decode(input: string | Uint8Array, name: string, cover: { width: number; height: number } | null): Promise<RgbImage> {
  try {
    // failOn 'error' rejects truncated files instead of returning a half-grey image.
    const image = sharp(input, { failOn: 'error', limitInputPixels: 1 << 28 });
    const { format, orientation = 1 } = await image.metadata();
    if (!Object.hasOwn(FORMATS, format)) throw new Error(`${format.toUpperCase()} is not a supported format`);
    // rotate() with no angle applies the EXIF orientation: a phone portrait comes out upright, and face
    // boxes refer to the image as displayed.
    const upright = image.rotate().removeAlpha().toColourspace('srgb');
    if (!cover) return await rgb(upright);
    const resize = (s: Sharp) => s.resize(cover.width, cover.height, { fit: 'cover', position: 'centre' });
    if (orientation === 1) return await rgb(resize(upright));
    // sharp would scale the stored pixels before turning them; turn first, so the picture is scaled
    // exactly as the same picture stored upright.
    const whole = await rgb(upright);
    return await rgb(resize(sharp(whole.data, { raw: { width: whole.width, height: whole.height, channels: 3 } })));
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    const reason = (e as NodeJS.ErrnoException).code === 'ENOENT' || /no such file|missing/i.test(msg) ? 'no such file' : msg;
    throw new UserError(`cannot read image ${name}: ${reason} (${EXPECTED})`, { cause: e });
  }
}

async function rgb(image: Sharp): Promise<RgbImage> {
  const { data, info } = await image.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`expected 3 channels after conversion, got ${info.channels}`);
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}
