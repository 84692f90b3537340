import sharp from 'sharp';
import { UserError } from '../errors.ts';
import { runTeacher } from '../candidates/draw.ts';
import { specOfRow } from '../candidates/table.ts';
import { openRun, planRules, type RunPlan } from '../dataset/run-file.ts';
import type { CategoryRules } from '../scorers/rules.ts';
import { RUN_FILE, STATS_FILE } from '../dataset/layout.ts';
import type { DatasetStats } from '../shards/index.ts';
import type { Store } from '../store/types.ts';
import type { RgbImage } from '../types.ts';
import { renderHistogram } from './histogram.ts';
import { renderReportHtml, type ScoreSection } from './html.ts';
import { renderScorePlot } from './score-plot.ts';
import { captionScores, type ScoreDistributions } from './scores.ts';
import { loadImages } from './images.ts';
import { ManifestQuery, type SheetRow } from './manifest.ts';
import { renderContactSheet, type SheetEntry } from './sheet.ts';
import { MAX_SHEET_ROWS } from './limits.ts';

export { MAX_SHEET_ROWS };

export const PREVIEW_DIR = 'preview/';
/** Rows per category sheet in preview/: this many accepted, then rejected (one kind short → more of the other). */
export const SHEET_ACCEPTED = 9;
export const SHEET_REJECTED = 3;

export interface PreviewOptions {
  /** A condition over the manifest columns (parsed by predicateSql, never pasted into SQL). */
  where?: string;
  /** Most rows on the sheet (default 24, at most MAX_SHEET_ROWS). */
  limit?: number;
  /** Draw rejected pairs again from their seeds with the run's teacher (its model files must be here). */
  regenerate?: boolean;
}

async function openPreviewRun(runUri: string): Promise<{ store: Store; name: string; runId: string; plan: RunPlan; rules: CategoryRules }> {
  const { plan, store } = await openRun(runUri);
  return { store, name: plan.name, runId: plan.run_id, plan, rules: planRules(plan, `${store.uri}/${RUN_FILE}`) };
}

/** `pairgen preview`: a contact sheet (PNG bytes) of the candidates matching `where`, in run order. */
export async function previewRun(runUri: string, options: PreviewOptions = {}): Promise<{ png: Buffer; rows: number }> {
  const limit = options.limit ?? 24;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_SHEET_ROWS) throw new UserError(`--limit: expected a whole number from 1 to ${MAX_SHEET_ROWS}, got ${limit}`);
  const { store, name, runId, plan, rules } = await openPreviewRun(runUri);
  const query = await ManifestQuery.open(store, runUri);
  let rows: SheetRow[];
  try {
    rows = await query.select(options.where, limit, captionScores(rules, await query.columns()));
  } finally {
    await query.close();
  }
  if (rows.length === 0) throw new UserError(`--where ${JSON.stringify(options.where)} matches no candidate of ${store.uri}`);
  const subtitle = `run ${runId} · ${options.where ? `where ${options.where}` : 'all candidates'} · first ${rows.length} in run order`;
  const png = await renderContactSheet(await withImages(store, plan, rows, options.regenerate ?? false), { title: `${name}: ${rows.length} pair${rows.length === 1 ? '' : 's'}`, subtitle }, rules);
  return { png, rows: rows.length };
}

/**
 * Write `preview/` of a finalized run: a contact sheet per category (preview/sheet-<category>.png),
 * the identity-similarity histograms (preview/identity-histogram.png), with scorers the score
 * distributions (preview/scores-<scorer>.png), and preview/index.html linking them. Pictures first,
 * the page last. A pure function of the run's files: running it again rewrites the same bytes.
 * Returns the keys written.
 */
export async function writePreview(runUri: string, options: { regenerate?: boolean } = {}): Promise<string[]> {
  const { store, name, runId, plan, rules } = await openPreviewRun(runUri);
  const statsBytes = await store.getIfExists(STATS_FILE);
  if (!statsBytes) throw new UserError(`${store.uri}: the run has no ${STATS_FILE} yet; finish it with \`pairgen finalize ${runUri}\``);
  const stats = JSON.parse(Buffer.from(statsBytes).toString('utf8')) as DatasetStats;
  const query = await ManifestQuery.open(store, runUri);
  let samples: Map<string, SheetRow[]>;
  let thresholds: Map<string, number[]>;
  let distributions: ScoreDistributions | null;
  try {
    samples = await query.samplePerCategory(SHEET_ACCEPTED, SHEET_REJECTED, captionScores(rules, await query.columns()));
    thresholds = await query.thresholds();
    distributions = await query.scoreDistributions(plan.config.scorers?.enabled ?? [], rules);
  } finally {
    await query.close();
  }
  const files = new Map<string, Buffer>();
  const sheets = new Map<string, string>();
  for (const [category, rows] of samples) {
    const file = uniqueName(`sheet-${category.replace(/[^A-Za-z0-9._-]+/g, '-')}`, new Set(sheets.values()));
    const counts = stats.by_category[category];
    const subtitle = `run ${runId} · ${counts ? `${counts.accepted} of ${counts.candidates} accepted · ` : ''}first ${rows.filter((r) => r.accepted).length} accepted and ${rows.filter((r) => !r.accepted).length} rejected in run order`;
    files.set(file, await renderContactSheet(await withImages(store, plan, rows, options.regenerate ?? false), { title: `${name} · ${category}`, subtitle }, rules));
    sheets.set(category, file);
  }
  files.set('identity-histogram.png', await renderHistogram(stats, thresholds));
  const scores = distributions ? await scorePlots(distributions, rules) : undefined;
  for (const [file, png] of scores?.files ?? []) files.set(file, png);
  const html = renderReportHtml({ name, runId, stats, sheets, histogram: 'identity-histogram.png', scores: scores?.section });
  const written: string[] = [];
  for (const [file, png] of files) {
    await store.put(PREVIEW_DIR + file, png, { contentType: 'image/png' });
    written.push(PREVIEW_DIR + file);
  }
  await store.put(PREVIEW_DIR + 'index.html', html, { contentType: 'text/html; charset=utf-8' });
  written.push(PREVIEW_DIR + 'index.html');
  return written;
}

/** One plot per scorer (file name scores-<scorer>.png → PNG) and the page section that shows them; `data`: the page's link to scores.json. */
export async function scorePlots(distributions: ScoreDistributions, rules: CategoryRules, data?: string): Promise<{ files: Map<string, Buffer>; section: ScoreSection }> {
  const files = new Map<string, Buffer>();
  const plots = new Map<string, string>();
  for (const scorer of distributions.scorers) {
    const file = `scores-${scorer}.png`;
    files.set(file, await renderScorePlot(distributions, scorer));
    plots.set(scorer, file);
  }
  return { files, section: { distributions, plots, rules, data } };
}

function uniqueName(stem: string, taken: Set<string>): string {
  let name = `${stem}.png`;
  for (let k = 2; taken.has(name); k++) name = `${stem}-${k}.png`;
  return name;
}

async function withImages(store: Store, plan: RunPlan, rows: SheetRow[], regenerate: boolean): Promise<SheetEntry[]> {
  const images = await loadImages(store, rows);
  if (regenerate) {
    const missing = rows.filter((r) => !r.accepted && !images.get(r.pair_id)?.source);
    for (const [pairId, img] of await regenerateImages(plan, missing)) images.set(pairId, img);
  }
  const entries: SheetEntry[] = [];
  for (const r of rows) {
    const img = images.get(r.pair_id) ?? { source: null, edited: null };
    for (const [which, bytes] of [['source', img.source], ['edited', img.edited]] as const) {
      if (!bytes) continue;
      try {
        await sharp(bytes).metadata();
      } catch (e) {
        throw new UserError(`${store.uri}/${r.file}: the ${which} image of pair ${r.pair_id} is not a readable image (${(e as Error).message})`);
      }
    }
    entries.push({ ...r, ...img, regenerated: regenerate && !r.accepted && img.source !== null });
  }
  return entries;
}

/**
 * Rejected pairs drawn again by the run's teacher from the recorded seeds and prompts (the teacher is a
 * pure function of the spec, so these are the images the run scored, up to the last bits when the
 * batch composition differs). Encoded as PNG for the sheet only; nothing is written to the run.
 */
async function regenerateImages(plan: RunPlan, rows: SheetRow[]): Promise<Map<string, { source: Uint8Array; edited: Uint8Array }>> {
  const out = new Map<string, { source: Uint8Array; edited: Uint8Array }>();
  if (rows.length === 0) return out;
  const teacher = await runTeacher(plan);
  try {
    const specs = rows.map((r) => specOfRow(r, r.identity_threshold));
    const batch = plan.config.runtime.batch_size;
    for (let i = 0; i < specs.length; i += batch) {
      const part = specs.slice(i, i + batch);
      const pairs = await teacher.generate(part);
      for (const [k, pair] of pairs.entries()) out.set(part[k].pairId, { source: await png(pair.source), edited: await png(pair.edited) });
    }
  } finally {
    await teacher.close();
  }
  return out;
}

function png(image: RgbImage): Promise<Buffer> {
  return sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength), { raw: { width: image.width, height: image.height, channels: 3 } }).png().toBuffer();
}
