import sharp from 'sharp';
import type { RgbImage } from '../types.ts';

/**
 * The photographic edits of the reference teacher's banks, each a deterministic sharp pipeline on a
 * square face crop. Their names are the `edit` attribute of the demo prompt set (prompts/demo.yaml).
 */
export const EDIT_NAMES = ['grayscale', 'sepia', 'warm', 'cool', 'sketch', 'popart', 'soft-focus', 'high-contrast', 'vignette'] as const;
export type EditName = (typeof EDIT_NAMES)[number];

type Sharp = ReturnType<typeof sharp>;

const raw = (img: RgbImage): Sharp => sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });

async function toRgb(s: Sharp): Promise<RgbImage> {
  const { data, info } = await s.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const px = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (info.channels === 3) return { width: info.width, height: info.height, data: px };
  if (info.channels !== 1) throw new Error(`edit produced ${info.channels} channels`);
  // Grey results come back with one channel: repeat it.
  const rgb = new Uint8Array(px.length * 3);
  for (let i = 0; i < px.length; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = px[i];
  return { width: info.width, height: info.height, data: rgb };
}

/** A dark radial gradient multiplied over the image (white centre, dark corners). */
function vignetteMask(width: number, height: number): Buffer {
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
      '<defs><radialGradient id="g" cx="50%" cy="50%" r="72%">' +
      '<stop offset="45%" stop-color="#ffffff"/><stop offset="100%" stop-color="#1a1a1a"/>' +
      '</radialGradient></defs>' +
      `<rect width="${width}" height="${height}" fill="url(#g)"/></svg>`,
  );
}

/** Posterize to `levels` levels per channel (sharp has no posterize operation). */
function posterize(img: RgbImage, levels: number): RgbImage {
  const step = 256 / levels;
  return { ...img, data: img.data.map((v) => Math.round((Math.floor(v / step) * 255) / (levels - 1))) };
}

/** Per-pixel mix of two images of the same size: a·(1 − t) + b·t. */
function mix(a: RgbImage, b: RgbImage, t: number): RgbImage {
  return { ...a, data: a.data.map((v, i) => Math.round(v * (1 - t) + b.data[i] * t)) };
}

/** Apply one named edit to an 8-bit RGB image; the result has the same size. */
export async function applyEdit(name: EditName, img: RgbImage): Promise<RgbImage> {
  switch (name) {
    case 'grayscale':
      return toRgb(raw(img).grayscale());
    case 'sepia':
      return toRgb(raw(img).recomb([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]]));
    case 'warm':
      return toRgb(raw(img).linear([1.12, 1.0, 0.8], [12, 4, -6]));
    case 'cool':
      return toRgb(raw(img).linear([0.82, 0.98, 1.15], [-8, 2, 14]));
    case 'sketch': {
      // Pencil sketch: the grey image colour-dodged with its blurred negative, so edges turn into
      // dark strokes on white while the shading of the face survives.
      const grey = await toRgb(raw(img).grayscale());
      const blurredNegative = await toRgb(raw(grey).negate().blur(3));
      const data = grey.data.map((g, i) => Math.min(255, Math.round((g * 255) / Math.max(1, 255 - blurredNegative.data[i]))));
      return toRgb(raw({ ...grey, data }).gamma(2.2, 1.6));
    }
    case 'popart':
      return posterize(await toRgb(raw(img).modulate({ saturation: 1.9 })), 6);
    case 'soft-focus':
      // A soft glow: half the image, half a blurred copy.
      return mix(img, await toRgb(raw(img).blur(2.5)), 0.5);
    case 'high-contrast':
      return toRgb(raw(img).linear(1.6, -0.6 * 128));
    case 'vignette':
      return toRgb(raw(img).composite([{ input: vignetteMask(img.width, img.height), blend: 'multiply' }]));
  }
}
