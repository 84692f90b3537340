import sharp from 'sharp';
import { UserError } from '../errors.ts';
// The identity histograms are the preview's own drawing (src/report); the report adds the research plots.
import { renderHistogram } from './histogram.ts';
import { PREVIEW_DIR, scorePlots } from './preview.ts';
import { scoresSectionHtml, type ScoreSection } from './html.ts';
import { scoreDistributions, type ScoreDistributions } from './scores.ts';
import { STATS_FILE } from '../dataset/layout.ts';
import type { DatasetStats } from '../shards/index.ts';
import { openStore } from '../store/index.ts';
import type { Store } from '../store/types.ts';
import { RunDb } from '../dataset/db.ts';
import { judgeAt, judgeRecorded, recordedEvidence, type RecordedRow } from '../candidates/verdict.ts';
import { scoresRead, type CategoryRules, type Rule } from '../scorers/rules.ts';
import { scoreColumn } from '../scorers/config.ts';
import { planRules } from '../dataset/run-file.ts';
import type { IdentityConfig } from '../identity/config.ts';

export const REPORT_DIR = 'report/';
/** The score histograms of a run with scorers, for scripts (ScoreDistributions). */
export const SCORES_FILE = 'scores.json';

export interface ReportOptions {
  /** Where to write (a folder or s3:// prefix); default: report/ inside the run. */
  out?: string;
}

/** Pairs kept at each threshold, per category: the recorded scores judged again. */
export interface ThresholdSweep {
  thresholds: number[];
  /** category (and "all") → pairs kept at each threshold. */
  kept: Record<string, number[]>;
  candidates: Record<string, number>;
  /** The thresholds the run judged each category against. */
  current: Record<string, number[]>;
}

/**
 * `pairgen report`: index.html with acceptance by category, identity score distributions by category
 * and the threshold sweep (pairs kept vs threshold, from the recorded scores: what `pairgen refilter`
 * would keep), as PNG plots plus sweep.json; with scorers, the score distributions by category with
 * the rules' bounds (a plot per scorer, scores.json). A pure function of the run's files.
 */
export async function reportRun(runUri: string, options: ReportOptions = {}): Promise<{ uri: string; files: string[] }> {
  const run = await RunDb.open(runUri, { views: ['manifest'] });
  let sweep: ThresholdSweep;
  let stats: DatasetStats;
  let distributions: ScoreDistributions | null;
  let rules: CategoryRules;
  try {
    if (!run.views.has('manifest')) throw new UserError(`${run.store.uri}: the run has no manifest.parquet yet; finish it with \`pairgen finalize\` first`);
    const bytes = await run.store.getIfExists(STATS_FILE);
    if (!bytes) throw new UserError(`${run.store.uri}: the run has no ${STATS_FILE} yet; finish it with \`pairgen finalize\` first`);
    stats = JSON.parse(Buffer.from(bytes).toString('utf8'));
    rules = planRules(run.plan, `${run.store.uri}/run.json`);
    sweep = await thresholdSweep(run, rules);
    distributions = await scoreDistributions(run.db, run.plan.config.scorers?.enabled ?? [], await run.columns('manifest'), rules);
  } finally {
    await run.close();
  }
  const out: Store = options.out ? openStore(options.out) : run.store.child(REPORT_DIR);
  const hasPreview = !options.out && (await run.store.head(`${PREVIEW_DIR}index.html`)) !== null;
  const files = new Map<string, Uint8Array | string>([
    ['acceptance.png', await acceptancePlot(stats)],
    ['identity-histogram.png', await renderHistogram(stats, new Map(Object.entries(sweep.current)))],
    ['threshold-sweep.png', await sweepPlot(sweep)],
    ['sweep.json', JSON.stringify(sweep) + '\n'],
  ]);
  let scores: ScoreSection | undefined;
  if (distributions) {
    const plots = await scorePlots(distributions, rules, SCORES_FILE);
    for (const [file, png] of plots.files) files.set(file, png);
    files.set(SCORES_FILE, JSON.stringify(distributions) + '\n');
    scores = plots.section;
  }
  files.set('index.html', page(run.plan.name, run.plan.run_id, run.store.uri, stats, sweep, hasPreview, scores));
  for (const [name, body] of files) await out.put(name, body, { contentType: name.endsWith('.png') ? 'image/png' : name.endsWith('.html') ? 'text/html; charset=utf-8' : 'application/json' });
  return { uri: out.uri, files: [...files.keys()] };
}

/**
 * Thresholds -1.00 … 1.00 in steps of 0.01; a pair is kept at t when the verdict (judgeRecorded, as
 * refilter applies it: identity at t, then the category's rules over the recorded scores) accepts it.
 * DuckDB groups equal scores; the groups stream through, so a manifest of millions of rows is never
 * held in memory.
 */
async function thresholdSweep(run: RunDb, rules: CategoryRules): Promise<ThresholdSweep> {
  const thresholds = Array.from({ length: 201 }, (_, i) => Math.round(i - 100) / 100);
  const totals = (await run.db.runAndReadAll('SELECT category, count(*)::INTEGER AS n FROM manifest GROUP BY ALL ORDER BY category')).getRowObjectsJS();
  const current = (await run.db.runAndReadAll('SELECT DISTINCT category, identity_threshold::DOUBLE AS t FROM manifest ORDER BY ALL')).getRowObjectsJS();
  const candidates: Record<string, number> = { all: 0 };
  // passing[c][m]: pairs of category c that exactly the m lowest thresholds accept (m = 0 … 201).
  const passing: Record<string, number[]> = { all: new Array(thresholds.length + 1).fill(0) };
  for (const r of totals) {
    candidates[String(r.category)] = Number(r.n);
    candidates.all += Number(r.n);
    passing[String(r.category)] = new Array(thresholds.length + 1).fill(0);
  }
  const read = scoresRead(rules.values()).filter((n) => n !== 'identity.similarity').map(scoreColumn);
  const extra = read.map((c) => `, "${c}"::DOUBLE`).join('');
  const groups = await run.db.stream(`SELECT category, identity_similarity::DOUBLE AS s, reject_reason, count(*)::INTEGER AS n${extra} FROM manifest GROUP BY ALL`);
  for await (const rows of groups.yieldRowsJs()) {
    for (const [category, s, reason, n, ...scores] of rows) {
      const row: RecordedRow = { category: String(category), identity_similarity: s === null ? null : Number(s), reject_reason: reason === null ? null : String(reason) };
      read.forEach((c, i) => (row[c] = scores[i] === null ? null : Number(scores[i])));
      const m = thresholdsPassed(row, run.plan.config.identity, rules.get(row.category) ?? [], thresholds);
      passing[String(category)][m] += Number(n);
      passing.all[m] += Number(n);
    }
  }
  const kept: Record<string, number[]> = {};
  for (const [c, counts] of Object.entries(passing)) {
    // Kept at thresholds[k]: the pairs that pass more than k thresholds.
    kept[c] = new Array(thresholds.length);
    let sum = 0;
    for (let k = thresholds.length - 1; k >= 0; k--) {
      sum += counts[k + 1];
      kept[c][k] = sum;
    }
  }
  const cur: Record<string, number[]> = {};
  for (const r of current) (cur[String(r.category)] ??= []).push(Number(r.t));
  return { thresholds, kept, candidates, current: cur };
}

/** How many of the ascending thresholds accept the pair: a stricter threshold never accepts what a laxer one rejects. */
function thresholdsPassed(row: RecordedRow, identity: IdentityConfig, rules: readonly Rule[], thresholds: number[]): number {
  // The verdict at the laxest threshold settles everything but the threshold (face problems, the rules);
  // past it only identity's own rule depends on t, so the search needs no further rule evaluation.
  if (!judgeRecorded(row, identity, rules, null, thresholds[0]).accepted) return 0;
  if (!identity.enabled) return thresholds.length;
  const evidence = recordedEvidence(row);
  let lo = 1;
  let hi = thresholds.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (judgeAt(evidence, thresholds[mid]).accepted) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const W = 720;
const COLORS = ['#4a78b5', '#d1603d', '#3c9a5f', '#8e5cb5', '#c7a03a', '#3aa6b9', '#b54a7b', '#6b6b6b'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const text = (x: number, y: number, s: string, size = 11, anchor = 'start', fill = '#222') => `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" font-size="${size}" text-anchor="${anchor}" fill="${fill}">${esc(s)}</text>`;

async function png(width: number, height: number, body: string[]): Promise<Uint8Array> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="DejaVu Sans, sans-serif"><rect width="${width}" height="${height}" fill="#fff"/>${body.join('')}</svg>`;
  return new Uint8Array(await sharp(Buffer.from(svg)).png({ compressionLevel: 9 }).toBuffer());
}

/** Horizontal bars: share of candidates accepted in each category. */
function acceptancePlot(stats: DatasetStats): Promise<Uint8Array> {
  const rows = [['all', stats] as const, ...Object.entries(stats.by_category)];
  const left = 150;
  const barW = W - left - 150;
  const body = [text(12, 22, 'Acceptance by category', 15)];
  rows.forEach(([name, g], i) => {
    const y = 40 + i * 26;
    body.push(text(left - 8, y + 14, name, 12, 'end'));
    body.push(`<rect x="${left}" y="${y}" width="${barW}" height="18" fill="#eee"/>`);
    body.push(`<rect x="${left}" y="${y}" width="${(barW * g.acceptance_rate).toFixed(1)}" height="18" fill="${name === 'all' ? '#333' : '#4a78b5'}"/>`);
    body.push(text(left + barW + 8, y + 14, `${g.accepted}/${g.candidates} (${(100 * g.acceptance_rate).toFixed(1)}%)`, 11));
  });
  return png(W, 50 + rows.length * 26, body);
}

/** One line per category: share of its candidates kept as the threshold moves; dots at the run's thresholds. */
function sweepPlot(s: ThresholdSweep): Promise<Uint8Array> {
  const left = 56;
  const top = 40;
  const h = 260;
  const plotW = W - left - 170;
  const x = (t: number) => left + ((t + 1) / 2) * plotW;
  const y = (f: number) => top + h - f * h;
  const body = [text(12, 22, 'Threshold sweep: share of candidates kept vs identity threshold (recorded scores)', 14)];
  body.push(`<line x1="${left}" y1="${top + h}" x2="${left + plotW}" y2="${top + h}" stroke="#333"/><line x1="${left}" y1="${top}" x2="${left}" y2="${top + h}" stroke="#333"/>`);
  for (const t of [-1, -0.5, 0, 0.5, 1]) body.push(text(x(t), top + h + 16, String(t), 10, 'middle'));
  for (const f of [0, 0.5, 1]) body.push(text(left - 6, y(f) + 4, `${f * 100}%`, 10, 'end'));
  Object.keys(s.kept).forEach((c, i) => {
    const color = c === 'all' ? '#222' : COLORS[(i - 1) % COLORS.length];
    const n = Math.max(1, s.candidates[c]);
    const pts = s.thresholds.map((t, k) => `${x(t).toFixed(1)},${y(s.kept[c][k] / n).toFixed(1)}`).join(' ');
    body.push(`<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="${c === 'all' ? 2.5 : 1.5}"/>`);
    for (const t of s.current[c] ?? []) {
      const k = Math.round((t + 1) * 100);
      if (k >= 0 && k < s.thresholds.length) body.push(`<circle cx="${x(t).toFixed(1)}" cy="${y(s.kept[c][k] / n).toFixed(1)}" r="3.5" fill="${color}"/>`);
    }
    body.push(`<line x1="${left + plotW + 16}" y1="${top + 8 + i * 18}" x2="${left + plotW + 36}" y2="${top + 8 + i * 18}" stroke="${color}" stroke-width="2"/>`);
    body.push(text(left + plotW + 42, top + 12 + i * 18, `${c} (${s.candidates[c]})`, 11));
  });
  body.push(text(left, top + h + 34, 'dots: the thresholds the run used; pairs rejected for other reasons (no face...) are never kept', 10, 'start', '#666'));
  return png(W, top + h + 44, body);
}

function page(name: string, runId: string, uri: string, s: DatasetStats, sweep: ThresholdSweep, hasPreview: boolean, scores?: ScoreSection): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const cats = Object.entries(s.by_category);
  const marks = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
  const at = (c: string, t: number) => sweep.kept[c]?.[Math.round((t + 1) * 100)] ?? 0;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${esc(name)}: pairgen report</title>
<style>
body { font-family: "DejaVu Sans", system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #ddd; }
.muted { color: #666; }
</style>
</head>
<body>
<h1>${esc(name)}</h1>
<p class="muted">run ${esc(runId)} at ${esc(uri)} · ${s.shards} shards · ${s.candidates} candidates, ${s.accepted} accepted (${pct(s.acceptance_rate)})${hasPreview ? ' · <a href="../preview/index.html">contact sheets</a>' : ''}</p>
<h2>Acceptance by category</h2>
<table>
<tr><th>category</th><th>candidates</th><th>accepted</th><th>acceptance</th><th>mean identity</th><th>threshold</th></tr>
${cats.map(([c, g]) => `<tr><td>${esc(c)}</td><td>${g.candidates}</td><td>${g.accepted}</td><td>${pct(g.acceptance_rate)}</td><td>${g.identity_similarity.mean === null ? '—' : g.identity_similarity.mean.toFixed(3)}</td><td>${(sweep.current[c] ?? []).join(', ')}</td></tr>`).join('\n')}
</table>
<img src="acceptance.png" alt="acceptance by category">
<h2>Identity score distributions</h2>
<img src="identity-histogram.png" alt="identity similarity histograms by category">
<h2>Threshold sweep</h2>
<p>Pairs that would be kept at a threshold, from the recorded scores (<code>pairgen refilter</code> makes that run; only the newly accepted pairs are regenerated). Data: <a href="sweep.json">sweep.json</a>.</p>
<img src="threshold-sweep.png" alt="pairs kept vs threshold by category">
<table>
<tr><th>category</th>${marks.map((t) => `<th>≥ ${t}</th>`).join('')}</tr>
${['all', ...cats.map(([c]) => c)].map((c) => `<tr><td>${esc(c)}</td>${marks.map((t) => `<td>${at(c, t)}</td>`).join('')}</tr>`).join('\n')}
</table>${scores ? `\n${scoresSectionHtml(scores, s)}` : ''}
</body>
</html>
`;
}
