import sharp from 'sharp';
import { UserError } from '../errors.ts';

/**
 * Text in pictures: sharp renders Pango markup through fontconfig. The family is fixed so that the same
 * fonts give the same bytes; a machine without it falls back to another font (different bytes, still
 * legible), and a machine with no font at all would draw "tofu" boxes, which ensureFonts() refuses.
 */
export const FONT_FAMILY = 'DejaVu Sans';
const DPI = 96;

let checked: Promise<void> | null = null;

/**
 * Fail with a clear message when fontconfig finds no real font. Without glyphs every character is
 * drawn as the same box, so a row of "i" is as wide as a row of "M"; with any real font it is far narrower.
 */
export function ensureFonts(): Promise<void> {
  checked ??= (async () => {
    const narrow = await inkWidth('iiiiiiii');
    const wide = await inkWidth('MMMMMMMM');
    if (!(wide > narrow * 1.6)) {
      throw new UserError(
        'no usable font for the text in pictures (fontconfig found none, text would be drawn as empty boxes); ' +
          'install one, e.g. on Debian/Ubuntu `apt-get install fonts-dejavu-core fontconfig` (`make setup` does it)',
      );
    }
  })();
  return checked;
}

async function inkWidth(text: string): Promise<number> {
  const { info } = await sharp({ text: { text, font: `${FONT_FAMILY} 16`, dpi: DPI } }).png().toBuffer({ resolveWithObject: true });
  return info.width;
}

/** Escape text for Pango markup (the same rules as XML). */
export function markup(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

// libvips crops rendered text to its ink, so a block starting "acorn" would sit lower than one starting
// "Acorn". An invisible tall-and-deep glyph pair at the end of the first line gives every block the same top.
// (Each line of the markup must be balanced: the strut goes before the first newline.)
const STRUT = '<span alpha="1">Åg</span>';

/** Pango markup rendered as an RGBA PNG, word-wrapped at `width` pixels. */
export async function textImage(markupText: string, options: { width: number; size?: number; align?: 'left' | 'centre' }): Promise<{ png: Buffer; width: number; height: number }> {
  const nl = markupText.indexOf('\n');
  const text = options.align === 'centre' ? markupText : nl < 0 ? markupText + STRUT : markupText.slice(0, nl) + STRUT + markupText.slice(nl);
  const { data, info } = await sharp({
    text: { text, font: `${FONT_FAMILY} ${options.size ?? 11}`, width: options.width, wrap: 'word-char', align: options.align ?? 'left', rgba: true, dpi: DPI },
  })
    .png()
    .toBuffer({ resolveWithObject: true });
  return { png: data, width: info.width, height: info.height };
}
