/**
 * The JSON API of `pairgen serve` (docs/serve.md), one method per endpoint, over one run. Read-only:
 * nothing here writes to the run. Every path segment and parameter is checked before it is used; user
 * conditions go through predicateSql (the query verb's rules) and values are bound, never pasted.
 */
import { thresholdFor } from '../candidates/verdict.ts';
import { RunDb, sqlString } from '../dataset/db.ts';
import { STATS_FILE, RUN_FILE } from '../dataset/layout.ts';
import { openRun, planRules, type RunPlan } from '../dataset/run-file.ts';
import { scoreDistributions, SCORE_BINS } from '../report/scores.ts';
import type { CategoryRules } from '../scorers/rules.ts';
import type { Store } from '../store/types.ts';
import { badRequest, notFound, type Reply } from './http.ts';
import { Lru, PairImages, type ImageRow, type Which } from './images.ts';
import { StatusTracker } from './live-status.ts';
import { RunManifest } from './manifest.ts';
import { checkPairId, listPairs, pairPage, pairRow, refuseUnknownParams } from './pairs.ts';
import { WhatIfCounter } from './whatif.ts';

export class RunApi {
  readonly status: StatusTracker;
  private readonly manifest: RunManifest;
  private readonly images: PairImages;
  private readonly whatIf: WhatIfCounter;
  /** What image requests need of the rows a page listed, so a grid's images skip a manifest lookup each. */
  private readonly imageRows = new Lru<string, ImageRow>(4096);

  private constructor(
    readonly runUri: string,
    readonly plan: RunPlan,
    readonly store: Store,
    private readonly rules: CategoryRules,
    private readonly promptThresholds: Map<string, number | null>,
  ) {
    this.status = new StatusTracker(plan, store);
    this.manifest = new RunManifest(store, runUri);
    this.images = new PairImages(plan, store);
    this.whatIf = new WhatIfCounter(plan, runUri, rules, this.manifest, promptThresholds);
  }

  /** Open a run (a UserError when there is none, or its run.json is damaged). */
  static async open(runUri: string): Promise<RunApi> {
    const { plan, store } = await openRun(runUri);
    const rules = planRules(plan, `${store.uri}/${RUN_FILE}`);
    // The prompt table's per-category thresholds (the what-if and the rules page need them); it never changes.
    const prompts = await RunDb.open(runUri, { views: ['prompts'], threads: 1 });
    const promptThresholds = new Map<string, number | null>();
    try {
      for (const r of (await prompts.db.runAndReadAll('SELECT category, min(identity_threshold)::DOUBLE AS t FROM prompts GROUP BY 1')).getRowObjectsJS()) {
        promptThresholds.set(String(r.category), r.t === null ? null : Number(r.t));
      }
    } finally {
      await prompts.close();
    }
    return new RunApi(runUri, plan, store, rules, promptThresholds);
  }

  /** The reply to GET `segments` (the URL path after /api/, decoded and checked) with `params`. */
  async handle(segments: string[], params: URLSearchParams, headers: { ifNoneMatch?: string }): Promise<Reply> {
    const [first, id, which, ...rest] = segments;
    if (rest.length === 0) {
      if (segments.length === 1) {
        if (first === 'status') return { json: await this.status.get() };
        if (first === 'stats') return this.stats();
        if (first === 'scores') return { json: await this.scores() };
        if (first === 'rules') return { json: this.rulesJson() };
        if (first === 'pairs') return { json: await this.pairs(params) };
        if (first === 'whatif') return { json: await this.whatIfJson(params) };
      }
      if (first === 'pairs' && segments.length === 2) {
        refuseUnknownParams(params, []);
        return { json: await pairPage(this.manifest, checkPairId(id)) };
      }
      if (first === 'pairs' && segments.length === 3 && (which === 'source' || which === 'edited')) return this.image(checkPairId(id), which, params, headers.ifNoneMatch);
    }
    throw notFound(`no API endpoint /api/${segments.join('/').slice(0, 100)} (see docs/serve.md: status, stats, scores, rules, pairs, pairs/<pair_id>, pairs/<pair_id>/source|edited, whatif)`);
  }

  private async stats(): Promise<Reply> {
    const bytes = await this.store.getIfExists(STATS_FILE);
    if (!bytes) throw notFound(`${this.store.uri}: the run is not finalized yet (no ${STATS_FILE}); run \`pairgen finalize ${this.runUri}\``);
    return { bytes, headers: { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-cache' } };
  }

  private async pairs(params: URLSearchParams) {
    const page = await listPairs(this.manifest, this.plan.config.scorers?.enabled ?? [], params);
    for (const r of page.rows) {
      if (typeof r.pair_id === 'string' && typeof r.file === 'string') {
        this.imageRows.set(r.pair_id, { pair_id: r.pair_id, accepted: r.accepted === true, file: r.file, file_row: Number(r.file_row), image_format: String(r.image_format), reject_reason: (r.reject_reason as string | null) ?? null });
      }
    }
    return page;
  }

  private async image(pairId: string, which: Which, params: URLSearchParams, ifNoneMatch?: string): Promise<Reply> {
    refuseUnknownParams(params, ['regenerate']);
    const regenerate = params.get('regenerate');
    if (regenerate !== null && regenerate !== '1' && regenerate !== '0') throw badRequest(`regenerate=${regenerate.slice(0, 20)}: expected 1`);
    let full: Record<string, unknown> | null = null;
    const fullRow = async () => (full ??= await pairRow(this.manifest, pairId));
    let row = this.imageRows.get(pairId);
    if (!row) {
      const r = await fullRow();
      row = { pair_id: pairId, accepted: r.accepted === true, file: String(r.file), file_row: Number(r.file_row), image_format: String(r.image_format), reject_reason: (r.reject_reason as string | null) ?? null };
      this.imageRows.set(pairId, row);
    }
    return this.images.image(row, which, regenerate === '1', fullRow, ifNoneMatch);
  }

  /** The score distributions of report/scores.json, plus the identity similarity's by category with its thresholds. */
  private async scores() {
    const columns = await this.manifest.columns();
    const enabled = this.plan.config.scorers?.enabled ?? [];
    const distributions = await this.manifest.use((db) => scoreDistributions(db, enabled, columns, this.rules));
    const identity = this.plan.config.identity.enabled && columns.includes('identity_similarity') ? await this.identityHistogram() : null;
    if (distributions) return { ...distributions, identity };
    const totals = await this.manifest.rows('SELECT category, count(*)::DOUBLE AS n FROM manifest GROUP BY 1 ORDER BY 1');
    return { bins: SCORE_BINS, categories: totals.map((r) => String(r.category)), candidates: Object.fromEntries(totals.map((r) => [String(r.category), Number(r.n)])), scorers: [], scores: [], texts: [], identity };
  }

  private async identityHistogram() {
    const value = 'CASE WHEN isfinite(identity_similarity::DOUBLE) THEN identity_similarity::DOUBLE END';
    const [range] = await this.manifest.rows(`SELECT min(${value}) AS lo, max(${value}) AS hi FROM manifest`);
    const thresholds: Record<string, number[]> = {};
    for (const r of await this.manifest.rows('SELECT DISTINCT category, identity_threshold::DOUBLE AS t FROM manifest ORDER BY 1, 2')) (thresholds[String(r.category)] ??= []).push(Number(r.t));
    const counts: Record<string, number[]> = {};
    const nulls: Record<string, number> = {};
    for (const c of Object.keys(thresholds)) {
      counts[c] = [];
      nulls[c] = 0;
    }
    if (range.lo === null) return { edges: [], counts, nulls, thresholds };
    let [lo, hi] = [Number(range.lo), Number(range.hi)];
    if (lo === hi) [lo, hi] = [lo - 0.5, hi + 0.5];
    const edges = Array.from({ length: SCORE_BINS + 1 }, (_, k) => (k === SCORE_BINS ? hi : lo + ((hi - lo) * k) / SCORE_BINS));
    for (const c of Object.keys(counts)) counts[c] = new Array(SCORE_BINS).fill(0);
    const [l, h] = [`${sqlString(String(lo))}::DOUBLE`, `${sqlString(String(hi))}::DOUBLE`];
    const sql = `SELECT category, CASE WHEN ${value} IS NULL THEN -1 ELSE least(greatest(floor((${value} - ${l}) / (${h} - ${l}) * ${SCORE_BINS}), 0), ${SCORE_BINS - 1})::INTEGER END AS bin, count(*)::DOUBLE AS n FROM manifest GROUP BY ALL`;
    for (const r of await this.manifest.rows(sql)) {
      const c = String(r.category);
      if (Number(r.bin) < 0) nulls[c] += Number(r.n);
      else counts[c][Number(r.bin)] += Number(r.n);
    }
    return { edges, counts, nulls, thresholds };
  }

  private rulesJson() {
    const identity = this.plan.config.identity;
    const categories = Object.keys(this.plan.prompts.per_category).sort();
    return {
      categories: Object.fromEntries(categories.map((c) => [c, (this.rules.get(c) ?? []).map((r) => ({ name: r.name, text: r.text, conditions: r.conditions }))])),
      identity: {
        enabled: identity.enabled,
        threshold: identity.threshold,
        category_thresholds: identity.category_thresholds,
        /** The threshold each category is judged against (config's map, then the prompt set's, then the global one). */
        effective_thresholds: Object.fromEntries(categories.map((c) => [c, thresholdFor(identity, { category: c, identityThreshold: this.promptThresholds.get(c) ?? null })])),
      },
    };
  }

  private whatIfJson(params: URLSearchParams) {
    refuseUnknownParams(params, ['set']);
    return this.whatIf.count(params.getAll('set'));
  }

  async close(): Promise<void> {
    await this.images.close();
    await this.manifest.close();
  }
}
