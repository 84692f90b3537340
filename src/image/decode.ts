import { open } from 'node:fs/promises';
import { extname } from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { UserError } from '../errors.ts';
import type { RgbImage } from '../types.ts';

/**
 * The image formats pairgen reads, by sharp's name for them: one list for the decoder, its errors and
 * the folder readers. Only raster formats without external references; `magic` are the signatures
 * their files start with (byte values, -1 for any byte).
 */
const FORMATS: Record<string, { label: string; extensions: readonly string[]; magic: readonly (readonly number[])[] }> = {
  jpeg: { label: 'JPEG', extensions: ['.jpg', '.jpeg'], magic: [[0xff, 0xd8, 0xff]] },
  png: { label: 'PNG', extensions: ['.png'], magic: [[0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]] },
  webp: { label: 'WebP', extensions: ['.webp'], magic: [[0x52, 0x49, 0x46, 0x46, -1, -1, -1, -1, 0x57, 0x45, 0x42, 0x50]] },
  tiff: { label: 'TIFF', extensions: ['.tif', '.tiff'], magic: [[0x49, 0x49, 0x2a, 0x00], [0x4d, 0x4d, 0x00, 0x2a]] },
  gif: { label: 'GIF', extensions: ['.gif'], magic: [[0x47, 0x49, 0x46, 0x38, 0x37, 0x61], [0x47, 0x49, 0x46, 0x38, 0x39, 0x61]] },
};

/**
 * The most pixels an input image may have (sharp's limitInputPixels): 100 megapixels, more than any
 * camera photo, about 300 MB once decoded to RGB. A larger image (or a small file claiming a huge size)
 * is refused before its pixels are decoded.
 */
export const MAX_INPUT_PIXELS = 100_000_000;
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
    // The format is told by the file's first bytes before sharp sees it: sharp would pick its loader by
    // content too, and its SVG loader follows external references (<image href="file:///...">).
    const first = await head(input);
    const sniffed = sniff(first);
    if (!sniffed) throw new Error(/^\s*</.test(new TextDecoder().decode(first)) ? 'SVG is not a supported format' : 'unsupported image format');
    // failOn 'error' rejects truncated files instead of returning a half-grey image. GIF: first frame only (sharp's default).
    const image = sharp(input, { failOn: 'error', limitInputPixels: MAX_INPUT_PIXELS });
    const { format, orientation = 1 } = await image.metadata();
    if (format !== sniffed) throw new Error(`${format.toUpperCase()} is not a supported format`);
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

/** The first 16 bytes of a file or buffer. */
async function head(input: string | Uint8Array): Promise<Uint8Array> {
  if (typeof input !== 'string') return input.subarray(0, 16);
  const file = await open(input, 'r');
  try {
    const buf = new Uint8Array(16);
    const { bytesRead } = await file.read(buf, 0, 16, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
}

/** The FORMATS name whose signature the bytes start with, or null. */
function sniff(bytes: Uint8Array): string | null {
  for (const [name, f] of Object.entries(FORMATS)) {
    if (f.magic.some((m) => m.length <= bytes.length && m.every((b, i) => b === -1 || bytes[i] === b))) return name;
  }
  return null;
}

async function rgb(image: Sharp): Promise<RgbImage> {
  const { data, info } = await image.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`expected 3 channels after conversion, got ${info.channels}`);
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}
