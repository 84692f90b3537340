import sharp from 'sharp';
import type { DatasetStats } from '../shards/index.ts';
import { ensureFonts, FONT_FAMILY } from './text.ts';
import { fmt, svgText as text } from './svg.ts';

type Histogram = DatasetStats['identity_similarity'];

const WIDTH = 720;
const PANEL = 150;
const LEFT = 56;
const RIGHT = 24;
const PLOT_TOP = 30;
const PLOT_HEIGHT = 86;

/**
 * The identity-similarity histograms of stats.json (fixed bins over [-1, 1]) as one PNG: a panel for all
 * candidates, then one per category, each with its threshold(s) as a dashed red line. Drawn as SVG and
 * rendered by sharp.
 */
export async function renderHistogram(stats: DatasetStats, thresholds: Map<string, number[]>): Promise<Buffer> {
  await ensureFonts();
  const edges = stats.histogram_bin_edges;
  const panels: { title: string; h: Histogram; lines: number[] }[] = [
    { title: 'all categories', h: stats.identity_similarity, lines: [] },
    ...Object.entries(stats.by_category).map(([c, g]) => ({ title: c, h: g.identity_similarity, lines: thresholds.get(c) ?? [] })),
  ];
  const height = 40 + panels.length * PANEL;
  const parts: string[] = [
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    text(LEFT, 24, 'Identity similarity (cosine) of source and edited face, by category', 15, 'bold'),
  ];
  panels.forEach((p, i) => parts.push(panel(p.title, p.h, p.lines, edges, 40 + i * PANEL)));
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="${FONT_FAMILY}">${parts.join('')}</svg>`;
  return sharp(Buffer.from(svg)).png({ compressionLevel: 9 }).toBuffer();
}

function panel(title: string, h: Histogram, lines: number[], edges: number[], top: number): string {
  const lo = edges[0];
  const hi = edges[edges.length - 1];
  const plotWidth = WIDTH - LEFT - RIGHT;
  const x = (v: number) => LEFT + ((v - lo) / (hi - lo)) * plotWidth;
  const base = top + PLOT_TOP + PLOT_HEIGHT;
  const max = Math.max(1, ...h.counts);
  const scored = h.counts.reduce((a, b) => a + b, 0);
  const summary = scored ? `${scored} scored, mean ${h.mean!.toFixed(3)}, min ${h.min!.toFixed(3)}, max ${h.max!.toFixed(3)}` : 'no scored candidates';
  const out = [
    text(LEFT, top + 20, title, 13, 'bold'),
    text(WIDTH - RIGHT, top + 20, `${summary}${h.no_score ? `; ${h.no_score} without a score` : ''}`, 11, 'normal', 'end'),
    `<line x1="${LEFT}" y1="${base}" x2="${WIDTH - RIGHT}" y2="${base}" stroke="#333333"/>`,
    `<line x1="${LEFT}" y1="${base}" x2="${LEFT}" y2="${top + PLOT_TOP}" stroke="#333333"/>`,
    text(LEFT - 6, top + PLOT_TOP + 10, String(max), 10, 'normal', 'end'),
    text(LEFT - 6, base, '0', 10, 'normal', 'end'),
  ];
  h.counts.forEach((n, i) => {
    if (n === 0) return;
    const barHeight = (n / max) * PLOT_HEIGHT;
    const x0 = x(edges[i]);
    out.push(`<rect x="${fmt(x0 + 1)}" y="${fmt(base - barHeight)}" width="${fmt(x(edges[i + 1]) - x0 - 2)}" height="${fmt(barHeight)}" fill="#4a78b5"/>`);
  });
  for (const v of [-1, -0.5, 0, 0.5, 1]) {
    out.push(`<line x1="${fmt(x(v))}" y1="${base}" x2="${fmt(x(v))}" y2="${base + 4}" stroke="#333333"/>`);
    out.push(text(x(v), base + 16, String(v), 10, 'normal', 'middle'));
  }
  for (const t of lines) {
    out.push(`<line x1="${fmt(x(t))}" y1="${top + PLOT_TOP - 4}" x2="${fmt(x(t))}" y2="${base}" stroke="#c00000" stroke-width="1.5" stroke-dasharray="4 3"/>`);
    out.push(text(x(t) + 4, top + PLOT_TOP + 6, `threshold ${t}`, 10, 'normal', 'start', '#c00000'));
  }
  return out.join('');
}
