import sharp, { type OverlayOptions } from 'sharp';
import type { CategoryRules } from '../scorers/rules.ts';
import { verdictCaption } from './caption.ts';
import type { SheetRow } from './manifest.ts';
import { ensureFonts, markup, textImage } from './text.ts';

/** One row of a contact sheet: the manifest facts and the encoded images, null when not stored. */
export interface SheetEntry extends SheetRow {
  source: Uint8Array | null;
  edited: Uint8Array | null;
  /** The images were drawn again from the pair's seed for this sheet (they are not in the run). */
  regenerated?: boolean;
}

export const TILE = 160;
const PAD = 10;
const TEXT_WIDTH = 440;
const HEADER = 78;
const ROW = TILE + 2 * PAD;
const WIDTH = PAD + TILE + PAD + TILE + PAD + TEXT_WIDTH + PAD;
const MAX_INSTRUCTION = 200;
const RED = '#c00000';
const GREEN = '#1a7f37';

/**
 * A contact sheet as PNG bytes: a header, then one row per pair: source | edited | instruction,
 * category, identity score against its threshold, and the verdict with what decided it (verdictCaption
 * over the category's `rules`: the failed rule and its scores' values). Rejected rows get a red frame;
 * an image that is not stored (rejects files keep none) is a grey "not stored" tile.
 * Same entries and fonts → same bytes.
 */
export async function renderContactSheet(entries: SheetEntry[], header: { title: string; subtitle: string }, rules: CategoryRules = new Map()): Promise<Buffer> {
  await ensureFonts();
  const height = HEADER + entries.length * ROW;
  const layers: OverlayOptions[] = [];
  const text = async (m: string, left: number, top: number, width: number, maxHeight: number, size?: number) => {
    const t = await textImage(m, { width, size });
    const input = t.height > maxHeight ? await sharp(t.png).extract({ left: 0, top: 0, width: t.width, height: maxHeight }).png().toBuffer() : t.png;
    layers.push({ input, left, top });
  };

  await text(`<b>${markup(header.title)}</b>`, PAD, 8, WIDTH - 2 * PAD, 22, 12);
  await text(`<span foreground="#555555">${markup(header.subtitle)}</span>`, PAD, 32, WIDTH - 2 * PAD, 20, 9);
  for (const [caption, left] of [['source', PAD], ['edited', 2 * PAD + TILE], ['instruction · category · identity score · verdict', 3 * PAD + 2 * TILE]] as const) {
    await text(`<b>${caption}</b>`, left, 56, WIDTH - left - PAD, 18, 9);
  }
  const shapes: string[] = [];
  for (const [i, e] of entries.entries()) {
    const top = HEADER + i * ROW;
    for (const [col, bytes] of [[0, e.source], [1, e.edited]] as const) {
      layers.push({ input: bytes ? await fitTile(bytes) : await notStoredTile(), left: PAD + col * (TILE + PAD), top: top + PAD });
    }
    await text(rowMarkup(e, rules), PAD + 2 * (TILE + PAD), top + PAD, TEXT_WIDTH, TILE);
    shapes.push(`<line x1="0" y1="${top + 0.5}" x2="${WIDTH}" y2="${top + 0.5}" stroke="#dddddd" stroke-width="1"/>`);
    if (!e.accepted) shapes.push(`<rect x="3" y="${top + 3}" width="${WIDTH - 6}" height="${ROW - 6}" fill="none" stroke="${RED}" stroke-width="4"/>`);
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}">${shapes.join('')}</svg>`;
  return sharp({ create: { width: WIDTH, height, channels: 3, background: '#ffffff' } })
    .composite([{ input: Buffer.from(svg), left: 0, top: 0 }, ...layers])
    .png({ compressionLevel: 9 })
    .toBuffer();
}

function rowMarkup(e: SheetEntry, rules: CategoryRules): string {
  const instruction = e.instruction.length > MAX_INSTRUCTION ? e.instruction.slice(0, MAX_INSTRUCTION - 1) + '…' : e.instruction;
  const score = e.identity_similarity === null ? 'identity: no score' : `identity ${e.identity_similarity.toFixed(3)} (threshold ${round(e.identity_threshold)})`;
  const caption = verdictCaption(e, rules.get(e.category) ?? []);
  const verdict = e.accepted ? `<span foreground="${GREEN}">${markup(caption.verdict)}</span>` : `<span foreground="${RED}"><b>${markup(caption.verdict)}</b></span>`;
  return [
    `<b>${markup(instruction)}</b>`,
    `${markup(e.category)} · ${score}`,
    verdict,
    ...caption.details.map((d) => `<span foreground="#444444" size="small">${markup(d)}</span>`),
    ...(e.regenerated ? ['<span foreground="#666666" size="small"><i>images regenerated from the seed for this sheet (not stored in the run)</i></span>'] : []),
    `<span foreground="#666666" size="small">#${e.index} · pair ${markup(e.pair_id)} · seed ${e.seed} · shard ${e.shard}</span>`,
  ].join('\n');
}

function round(x: number): string {
  return String(Math.round(x * 1000) / 1000);
}

/** An encoded image scaled to fit a TILE x TILE square on a light background. */
async function fitTile(bytes: Uint8Array): Promise<Buffer> {
  return sharp(bytes)
    .removeAlpha()
    .resize(TILE, TILE, { fit: 'contain', background: '#f4f4f4' })
    .png()
    .toBuffer();
}

let notStored: Promise<Buffer> | null = null;
function notStoredTile(): Promise<Buffer> {
  notStored ??= (async () => {
    const t = await textImage('<span foreground="#444444"><b>not stored</b>\n<span size="small">rejected pairs keep no images; regenerate from the seed</span></span>', {
      width: TILE - 16,
      size: 9,
      align: 'centre',
    });
    return sharp({ create: { width: TILE, height: TILE, channels: 3, background: '#d0d0d0' } })
      .composite([{ input: t.png, left: Math.floor((TILE - t.width) / 2), top: Math.floor((TILE - t.height) / 2) }])
      .png()
      .toBuffer();
  })();
  return notStored;
}
