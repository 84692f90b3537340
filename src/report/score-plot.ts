import type { ScorerName } from '../scorers/config.ts';
import type { RuleBound, ScoreDistributions, ScoreHistogram } from './scores.ts';
import { boundText } from './caption.ts';
import { ensureFonts } from './text.ts';
import { COLORS, fmt, RULE_RED, short, svgPng, svgText as text } from './svg.ts';

const WIDTH = 960;
const COLUMNS = 2;
const GAP = 20;
const PANEL_WIDTH = (WIDTH - (COLUMNS + 1) * GAP) / COLUMNS;
const PANEL_HEIGHT = 180;
const PLOT_LEFT = 44;
const PLOT_RIGHT = 10;
const PLOT_TOP = 30;
const PLOT_HEIGHT = 112;

/**
 * One scorer's scores as one PNG: a panel per score with the histogram of each category as an outline
 * (the share of the category's measured pairs per bin, so categories of different sizes compare), and
 * each rule's bound on the score as a dashed red line labelled with the rule (and its categories when
 * not all of them hold it). A bound outside the observed range is an arrow label at that edge.
 */
export async function renderScorePlot(d: ScoreDistributions, scorer: ScorerName): Promise<Buffer> {
  await ensureFonts();
  const scores = d.scores.filter((s) => s.scorer === scorer);
  const parts = [
    text(GAP, 24, `${scorer}: score distributions by category`, 15, 'bold'),
    text(GAP, 42, 'share of each category\'s measured pairs per bin; dashed red: the rules\' bounds (rule, and its categories when not all)', 11, 'normal', 'start', '#555555'),
  ];
  const legendTop = 52;
  const legend = legendRows(d);
  for (const [row, items] of legend.entries()) {
    for (const item of items) {
      const y = legendTop + row * 18 + 9;
      parts.push(`<line x1="${item.x}" y1="${y}" x2="${item.x + 18}" y2="${y}" stroke="${color(item.index)}" stroke-width="2.5"${dash(item.index)}/>`);
      parts.push(text(item.x + 24, y + 4, item.label, 11));
    }
  }
  const top = legendTop + legend.length * 18 + 8;
  scores.forEach((s, i) => parts.push(panel(s, d.categories, GAP + (i % COLUMNS) * (PANEL_WIDTH + GAP), top + Math.floor(i / COLUMNS) * PANEL_HEIGHT)));
  return svgPng(WIDTH, top + Math.ceil(scores.length / COLUMNS) * PANEL_HEIGHT, parts);
}

function color(index: number): string {
  return COLORS[index % COLORS.length];
}

function dash(index: number): string {
  return index >= COLORS.length ? ' stroke-dasharray="5 2"' : '';
}

/** The category legend, wrapped into rows across the page (text width estimated at 7 px a character). */
function legendRows(d: ScoreDistributions): { x: number; index: number; label: string }[][] {
  const rows: { x: number; index: number; label: string }[][] = [[]];
  let x = GAP;
  d.categories.forEach((c, index) => {
    const label = `${c} (${d.candidates[c]})`;
    const width = 24 + label.length * 7 + 18;
    if (x + width > WIDTH - GAP && rows[rows.length - 1].length) {
      rows.push([]);
      x = GAP;
    }
    rows[rows.length - 1].push({ x, index, label });
    x += width;
  });
  return rows;
}

function panel(s: ScoreHistogram, categories: string[], left: number, top: number): string {
  const measured = categories.reduce((sum, c) => sum + s.counts[c].reduce((a, b) => a + b, 0), 0);
  const missing = categories.reduce((sum, c) => sum + s.nulls[c], 0);
  const out = [
    text(left, top + 16, s.name, 12, 'bold'),
    text(left + PANEL_WIDTH, top + 16, `${measured} measured${missing ? `, ${missing} not measured` : ''}`, 10, 'normal', 'end', '#555555'),
  ];
  const x0 = left + PLOT_LEFT;
  const x1 = left + PANEL_WIDTH - PLOT_RIGHT;
  const plotTop = top + PLOT_TOP;
  const base = plotTop + PLOT_HEIGHT;
  out.push(`<line x1="${fmt(x0)}" y1="${base}" x2="${fmt(x1)}" y2="${base}" stroke="#333333"/><line x1="${fmt(x0)}" y1="${base}" x2="${fmt(x0)}" y2="${plotTop}" stroke="#333333"/>`);
  if (s.edges.length === 0) {
    out.push(text((x0 + x1) / 2, plotTop + PLOT_HEIGHT / 2, 'not measured on any pair', 11, 'normal', 'middle', '#555555'));
    return out.join('');
  }
  const lo = s.edges[0];
  const hi = s.edges[s.edges.length - 1];
  const x = (v: number) => x0 + ((v - lo) / (hi - lo)) * (x1 - x0);
  const shares = categories.map((c) => {
    const n = s.counts[c].reduce((a, b) => a + b, 0);
    return s.counts[c].map((k) => (n ? k / n : 0));
  });
  const peak = Math.max(...shares.flat(), 0.01);
  const y = (share: number) => base - (share / peak) * PLOT_HEIGHT;
  out.push(text(x0 - 4, plotTop + 8, `${Math.round(peak * 100)}%`, 10, 'normal', 'end'));
  out.push(text(x0 - 4, base, '0', 10, 'normal', 'end'));
  for (const v of [lo, (lo + hi) / 2, hi]) {
    out.push(`<line x1="${fmt(x(v))}" y1="${base}" x2="${fmt(x(v))}" y2="${base + 4}" stroke="#333333"/>`);
    out.push(text(x(v), base + 16, short(v), 10, 'normal', v === lo ? 'start' : v === hi ? 'end' : 'middle'));
  }
  categories.forEach((c, index) => {
    if (!s.counts[c].some((k) => k > 0)) return;
    const points = [`${fmt(x(lo))},${base}`];
    shares[index].forEach((share, bin) => points.push(`${fmt(x(s.edges[bin]))},${fmt(y(share))}`, `${fmt(x(s.edges[bin + 1]))},${fmt(y(share))}`));
    points.push(`${fmt(x(hi))},${base}`);
    out.push(`<polyline points="${points.join(' ')}" fill="none" stroke="${color(index)}" stroke-width="1.6" stroke-opacity="0.9"${dash(index)}/>`);
  });
  boundLines(s.rules, categories.length).forEach((b, k) => {
    const labelY = plotTop + 9 + k * 12;
    if (b.value < lo) out.push(text(x0 + 3, labelY, `← ${b.label}`, 10, 'normal', 'start', RULE_RED, true));
    else if (b.value > hi) out.push(text(x1 - 3, labelY, `${b.label} →`, 10, 'normal', 'end', RULE_RED, true));
    else {
      const at = x(b.value);
      out.push(`<line x1="${fmt(at)}" y1="${plotTop - 4}" x2="${fmt(at)}" y2="${base}" stroke="${RULE_RED}" stroke-width="1.5" stroke-dasharray="4 3"/>`);
      out.push(at < (x0 + x1) / 2 ? text(at + 3, labelY, b.label, 10, 'normal', 'start', RULE_RED, true) : text(at - 3, labelY, b.label, 10, 'normal', 'end', RULE_RED, true));
    }
  });
  return out.join('');
}

/** Each bound as a vertical line: `in [a, b]` is two (≥ a, ≤ b). */
function boundLines(bounds: RuleBound[], categoryCount: number): { value: number; label: string }[] {
  return bounds.flatMap((b) => {
    const where = b.categories.length < categoryCount ? ` (${b.categories.join(', ')})` : '';
    const lines: [number, string][] = b.op === 'in' ? [[b.value, `≥ ${b.value}`], [b.high!, `≤ ${b.high}`]] : [[b.value, boundText(b)]];
    return lines.map(([value, bound]) => ({ value, label: `${b.rule} ${bound}${where}` }));
  });
}
