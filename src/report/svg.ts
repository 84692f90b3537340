import sharp from 'sharp';
import { FONT_FAMILY, markup } from './text.ts';

/** Category colours of the plots, in category order (a ninth category repeats them dashed). */
export const COLORS = ['#4a78b5', '#d1603d', '#3c9a5f', '#8e5cb5', '#c7a03a', '#3aa6b9', '#b54a7b', '#6b6b6b'];
export const RULE_RED = '#c00000';

/** An SVG text element; `halo` draws a white outline under the glyphs so text over lines stays legible. */
export function svgText(x: number, y: number, s: string, size: number, weight = 'normal', anchor = 'start', fill = '#222222', halo = false): string {
  const outline = halo ? ' stroke="#ffffff" stroke-width="3" paint-order="stroke"' : '';
  return `<text x="${fmt(x)}" y="${fmt(y)}" font-size="${size}" font-weight="${weight}" text-anchor="${anchor}" fill="${fill}"${outline}>${markup(s)}</text>`;
}

/** A coordinate with at most two decimals (short SVG, same bytes for the same numbers). */
export function fmt(v: number): string {
  return String(Math.round(v * 100) / 100);
}

/** SVG parts on a white page rendered to PNG by sharp. */
export async function svgPng(width: number, height: number, parts: string[]): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="${FONT_FAMILY}"><rect width="${width}" height="${height}" fill="#ffffff"/>${parts.join('')}</svg>`;
  return sharp(Buffer.from(svg)).png({ compressionLevel: 9 }).toBuffer();
}

/** A number in three significant digits without an exponent for ordinary magnitudes: 0.0113, 12.1, 7096. */
export function short(v: number, digits = 3): string {
  if (v === 0) return '0';
  if (Math.abs(v) >= 10 ** digits) return String(Math.round(v));
  return String(Number(v.toPrecision(digits)));
}
