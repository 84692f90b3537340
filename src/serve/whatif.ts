/**
 * GET /api/whatif?set=…: what `pairgen refilter --set …` would keep, counted from the recorded columns
 * with the same verdict function (judgeRecorded), the same config derivation (refilterRules) and the same
 * per-category thresholds of the prompt table; nothing is drawn or scored again. On a demo run (the
 * reference teacher records the ground truth in `extra`) also the filters' precision and recall before
 * and after, counted the way finalize counts them for stats.json.
 */
import { filterVerdicts, judgeRecorded, thresholdFor } from '../candidates/verdict.ts';
import type { RunPlan } from '../dataset/run-file.ts';
import { EditTruthTally, GroundTruthTally, type PrecisionRecall } from '../reference/truth.ts';
import { refilterRules } from '../research/refilter.ts';
import { scoresRead, type CategoryRules } from '../scorers/rules.ts';
import { scoreColumn } from '../scorers/config.ts';
import { isUserError } from '../errors.ts';
import { badRequest } from './http.ts';
import { Lru } from './images.ts';
import type { RunManifest } from './manifest.ts';

/** The keys refilter accepts (src/research/refilter.ts checks the same list before it writes anything). */

export interface Kept {
  candidates: number;
  kept_now: number;
  kept: number;
  dropped: number;
  added: number;
}

export interface TruthSummary {
  identity: PrecisionRecall | null;
  edit: PrecisionRecall | null;
  pair: PrecisionRecall | null;
}

export interface WhatIf {
  sets: string[];
  categories: Record<string, Kept>;
  all: Kept;
  /** With the sets applied; null when the run's teacher recorded no ground truth. */
  ground_truth: TruthSummary | null;
  /** As the run stands (what stats.json reports). */
  ground_truth_now: TruthSummary | null;
  command: string;
}

export class WhatIfCounter {
  private readonly cache = new Lru<string, Promise<WhatIf>>(32);

  constructor(
    private readonly plan: RunPlan,
    private readonly runUri: string,
    private readonly currentRules: CategoryRules,
    private readonly manifest: RunManifest,
    private readonly promptThresholds: Map<string, number | null>,
  ) {}

  count(sets: string[]): Promise<WhatIf> {
    const key = JSON.stringify(sets);
    let result = this.cache.get(key);
    if (!result) {
      result = this.compute(sets);
      result.catch(() => this.cache.delete(key));
      this.cache.set(key, result);
    }
    return result;
  }

  private async compute(sets: string[]): Promise<WhatIf> {
    const { plan } = this;
    let judged: ReturnType<typeof refilterRules>;
    try {
      judged = refilterRules(plan, this.runUri, sets, (s) => `set=${s.slice(0, 80)}`);
    } catch (e) {
      if (isUserError(e)) throw badRequest(e.message);
      throw e;
    }
    const { config, rules } = judged;

    const promptThresholds = this.promptThresholds;
    const columns = await this.manifest.columns();
    const scores = scoresRead([...rules.values(), ...this.currentRules.values()]).filter((n) => n !== 'identity.similarity').map(scoreColumn).filter((c) => columns.includes(c));
    const truth = columns.includes('extra')
      ? `, json_extract_string(extra, '$.identity_kept') AS t_identity, json_extract_string(extra, '$.edit_kept') AS t_edit, json_extract_string(extra, '$.edit_made') AS t_made`
      : '';
    const sql = `SELECT category, accepted, reject_reason, identity_similarity::DOUBLE AS identity_similarity, identity_threshold::DOUBLE AS identity_threshold${scores.map((c) => `, "${c}"::DOUBLE AS "${c}"`).join('')}${truth} FROM manifest`;

    const categories: Record<string, Kept> = {};
    const after = { identity: new GroundTruthTally('identity'), edit: new EditTruthTally() };
    const before = { identity: new GroundTruthTally('identity'), edit: new EditTruthTally() };
    await this.manifest.forEachChunk(sql, (rows) => {
      for (const row of rows) {
        const category = String(row.category);
        const recorded = { ...row, category, identity_similarity: row.identity_similarity as number | null, reject_reason: row.reject_reason as string | null };
        const verdict = judgeRecorded(recorded, config.identity, rules.get(category) ?? [], promptThresholds.get(category) ?? null);
        const now = row.accepted === true;
        const k = (categories[category] ??= { candidates: 0, kept_now: 0, kept: 0, dropped: 0, added: 0 });
        k.candidates++;
        if (now) k.kept_now++;
        if (verdict.accepted) k.kept++;
        if (now && !verdict.accepted) k.dropped++;
        if (!now && verdict.accepted) k.added++;
        if (row.t_identity !== 'true' && row.t_identity !== 'false') continue;
        const extra: Record<string, unknown> = { identity_kept: row.t_identity === 'true' };
        const threshold = thresholdFor(config.identity, { category, identityThreshold: promptThresholds.get(category) ?? null });
        const passed = filterVerdicts(recorded, config.identity, rules.get(category) ?? [], threshold);
        const passedNow = filterVerdicts(recorded, plan.config.identity, this.currentRules.get(category) ?? [], Number(row.identity_threshold));
        after.identity.add(passed.identity, extra);
        before.identity.add(passedNow.identity, extra);
        if (row.t_made === null || row.t_made === undefined) continue;
        extra.edit_kept = row.t_edit === 'true';
        extra.edit_made = row.t_made;
        after.edit.add(verdict.accepted, extra, passed.rules);
        before.edit.add(now, extra, passedNow.rules);
      }
    });
    const all: Kept = { candidates: 0, kept_now: 0, kept: 0, dropped: 0, added: 0 };
    for (const k of Object.values(categories)) for (const f of Object.keys(all) as (keyof Kept)[]) all[f] += k[f];
    return {
      sets,
      categories: Object.fromEntries(Object.keys(categories).sort().map((c) => [c, categories[c]])),
      all,
      ground_truth: summary(after),
      ground_truth_now: summary(before),
      command: refilterCommand(this.runUri, sets),
    };
  }
}

function summary(t: { identity: GroundTruthTally; edit: EditTruthTally }): TruthSummary | null {
  const identity = t.identity.result();
  const edit = t.edit.result();
  if (!identity && !edit) return null;
  return { identity, edit: edit?.edit ?? null, pair: edit?.pair ?? null };
}

/** The command that applies the sets, ready to paste into a POSIX shell. */
export function refilterCommand(runUri: string, sets: string[]): string {
  const run = runUri.replace(/\/+$/, '');
  return ['pairgen refilter', shellWord(run), ...sets.map((s) => `--set ${shellWord(s)}`), '--out', shellWord(`${run}-refiltered`)].join(' ');
}

function shellWord(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
