import { UserError } from '../errors.ts';
import { runTeacher } from '../candidates/draw.ts';
import { specOfRow } from '../candidates/table.ts';
import { judgeRecorded } from '../candidates/verdict.ts';
import { runRules, type CategoryRules } from '../scorers/rules.ts';
import { CANDIDATES_FILE, isDataKey } from '../dataset/layout.ts';
import { isCommitted, writeShard } from '../dataset/commit.ts';
import { finalizeRun } from '../run/finalize.ts';
import { openRun, type RunPlan } from '../dataset/run-file.ts';
import { scanShards } from '../dataset/scan.ts';
import { checkSplits, splitOf, type SplitFractions } from '../dataset/splits.ts';
import { CODE_VERSION } from '../util/version.ts';
import { encodeImage, readShardMetadataRows, type ManifestRow, type PairRecord, type ShardMarker } from '../shards/index.ts';
import type { Store } from '../store/types.ts';
import type { Teacher } from '../types.ts';
import { RunDb } from '../dataset/db.ts';
import { ShardFile, type StoredImages } from '../dataset/rows.ts';
import { deriveConfig, writeDerivedRun } from './derive.ts';

export interface RefilterOptions {
  /** identity.threshold=…, identity.category_thresholds.<category>=… and rules.… overrides. */
  sets: string[];
  /** Also reject the pairs the parent's manifest marks as near-duplicates (duplicate_of), as `near_duplicate`. */
  dropDuplicates?: boolean;
  /** Called after each shard of the new run is written or found already written. */
  onShard?: (e: { shard: number; status: 'written' | 'skipped'; copied: number; regenerated: number }) => void;
}

export interface RefilterResult {
  uri: string;
  /** Accepted before and after: images copied from the parent's shards, nothing recomputed. */
  copied: number;
  /** Newly accepted: rejects keep no images, so these were regenerated from their seeds. */
  regenerated: number;
  /** Accepted before, rejected now (their images are dropped). */
  dropped: number;
  accepted: number;
  rejected: number;
  created: boolean;
}

/** The keys refilter may change (and `pairgen serve`'s what-if page): identity thresholds and rules. */
export const REFILTER_KEYS = [/^identity\.threshold$/, /^identity\.category_thresholds(\.[^.]+)?$/, /^rules(\.default|\.categories)?(\.[^.]+){0,2}$/];

/**
 * `pairgen refilter`: a new run whose selection comes from the parent's recorded scores judged against
 * new identity thresholds. Pairs accepted in both keep their stored images (copied); pairs that become
 * accepted were rejects, which keep no images, so only they are regenerated from their seeds with the
 * parent's teacher settings; no pair is scored again. The new run has the parent's shard layout and is
 * what a fresh run with the new thresholds would write (the same pairs, verdicts and image bytes).
 */
export async function refilterRun(parentUri: string, outUri: string, options: RefilterOptions): Promise<RefilterResult> {
  if (options.sets.length === 0 && !options.dropDuplicates) throw new UserError('refilter needs at least one --set (e.g. --set identity.threshold=0.5) or --drop-duplicates');
  const { plan: parent, store: parentStore } = await openRun(parentUri);
  const { config, rules } = refilterRules(parent, parentStore.uri, options.sets, (s) => `--set ${s}`);
  const { markers } = await scanShards(parentStore, parent);
  if (markers.size < parent.shards) throw new UserError(`${parentStore.uri}: ${parent.shards - markers.size} of ${parent.shards} shards are not committed; finish the run first`);
  const promptThresholds = await categoryThresholds(parentUri);
  const duplicates = options.dropDuplicates ? await markedDuplicates(parentUri, parent) : new Set<string>();

  const plan: RunPlan = { ...parent, run_id: '', code_version: CODE_VERSION, config, derived_from: { kind: 'refilter', parent_run: parentStore.uri, parent_run_id: parent.run_id, sets: options.sets, ...(options.dropDuplicates ? { drop_duplicates: true } : {}) } };
  const extra = parent.candidates ? [{ key: CANDIDATES_FILE, bytes: await parentStore.get(CANDIDATES_FILE) }] : [];
  const { store, created } = await writeDerivedRun(plan, parentStore, outUri, { files: extra });

  const splits = checkSplits(plan.splits, `${parentStore.uri}: splits`);
  const result: RefilterResult = { uri: store.uri, copied: 0, regenerated: 0, dropped: 0, accepted: 0, rejected: 0, created };
  let teacher: Teacher | null = null;
  try {
    for (let shard = 0; shard < plan.shards; shard++) {
      if (await isCommitted(store, shard)) {
        options.onShard?.({ shard, status: 'skipped', copied: 0, regenerated: 0 });
        continue;
      }
      const counts = await refilterShard({ plan, parentStore, parentMarker: markers.get(shard)!, store, shard, splits, promptThresholds, rules, duplicates, teacher: async () => (teacher ??= await runTeacher(plan)) });
      result.copied += counts.copied;
      result.regenerated += counts.regenerated;
      result.dropped += counts.dropped;
      options.onShard?.({ shard, status: 'written', copied: counts.copied, regenerated: counts.regenerated });
    }
  } finally {
    await (teacher as Teacher | null)?.close();
  }
  const done = await finalizeRun(outUri);
  result.accepted = done.accepted;
  result.rejected = done.rejected;
  return result;
}

/**
 * A parent run's config and rules with refilter's overrides applied: only REFILTER_KEYS, no identity key
 * on a run that recorded no similarity, and rules that compile against the run's scorers and categories.
 * Every problem is a UserError; `where(set)` names the override in it (`--set …`, or the what-if's `set=…`).
 */
export function refilterRules(parent: RunPlan, parentUri: string, sets: string[], where: (set: string) => string): { config: RunPlan['config']; rules: CategoryRules } {
  for (const s of sets) {
    const key = s.slice(0, Math.max(0, s.indexOf('='))).trim();
    if (!REFILTER_KEYS.some((re) => re.test(key))) throw new UserError(`${where(s)}: expected key=value with a key refilter changes only (identity.threshold, identity.category_thresholds.<category>, rules.default.<name>, rules.categories.<category>.<name>); use \`pairgen regenerate\` for other settings`);
    if (key.startsWith('identity.') && !parent.config.identity.enabled) {
      throw new UserError(`${where(s)}: ${parentUri} was made with identity.enabled false, so it recorded no identity scores to judge again; regenerate it with --set identity.enabled=true instead`);
    }
  }
  const config = deriveConfig(parent, parentUri, sets);
  const problems: string[] = [];
  const rules = runRules({ config, promptRules: parent.prompt_rules ?? {}, categories: Object.keys(parent.prompts.per_category) }, problems);
  if (problems.length) throw new UserError(`${where(sets.join(' '))}: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`);
  return { config, rules };
}

/** The reject reason of a pair dropped by --drop-duplicates. */
export const NEAR_DUPLICATE = 'near_duplicate';

/**
 * The pairs the parent's manifest marks as near-duplicates (duplicate_of, written by finalize when the
 * duplicates scorer runs). Their references were accepted in the parent: a refilter that also tightens
 * rules may reject a reference and still drop its duplicate; the new run's finalize marks afresh.
 */
async function markedDuplicates(parentUri: string, parent: RunPlan): Promise<Set<string>> {
  if (!parent.config.scorers?.enabled.includes('duplicates')) throw new UserError(`--drop-duplicates: ${parentUri} was made without the duplicates scorer, so no source hashes were recorded; regenerate it with --set 'scorers.enabled=[…, duplicates]'`);
  const run = await RunDb.open(parentUri, { views: ['manifest'] });
  try {
    if (!run.views.has('manifest')) throw new UserError(`--drop-duplicates: ${parentUri} has no manifest.parquet yet (finalize marks the duplicates); run \`pairgen finalize ${parentUri}\` first`);
    const rows = (await run.db.runAndReadAll('SELECT pair_id FROM manifest WHERE duplicate_of IS NOT NULL')).getRowObjectsJS();
    return new Set(rows.map((r) => String(r.pair_id)));
  } finally {
    await run.close();
  }
}

/** The prompt set's per-category thresholds, from the parent's prompt table (null: none set). */
async function categoryThresholds(parentUri: string): Promise<Map<string, number | null>> {
  const run = await RunDb.open(parentUri, { views: ['prompts'] });
  try {
    const rows = (await run.db.runAndReadAll('SELECT category, min(identity_threshold) AS lo, max(identity_threshold) AS hi FROM prompts GROUP BY category')).getRowObjectsJS();
    const out = new Map<string, number | null>();
    for (const r of rows) {
      if (r.lo !== r.hi) throw new Error(`prompt table: category ${r.category} has several identity thresholds`);
      out.set(String(r.category), r.lo === null ? null : Number(r.lo));
    }
    return out;
  } finally {
    await run.close();
  }
}

interface ShardJob {
  plan: RunPlan;
  parentStore: Store;
  /** The parent shard's marker: which files hold its pairs. */
  parentMarker: ShardMarker;
  store: Store;
  shard: number;
  splits: SplitFractions;
  promptThresholds: Map<string, number | null>;
  rules: CategoryRules;
  /** Pairs to reject as near_duplicate (--drop-duplicates): the parent manifest's marks. */
  duplicates: Set<string>;
  teacher: () => Promise<Teacher>;
}

async function refilterShard(job: ShardJob): Promise<{ copied: number; regenerated: number; dropped: number }> {
  const { plan, shard } = job;
  const identity = plan.config.identity;
  const rows: ManifestRow[] = [];
  const images = new Map<string, StoredImages>();
  for (const f of job.parentMarker.files) {
    const bytes = await job.parentStore.get(f.name);
    const fileRows = await readShardMetadataRows(bytes, f.name);
    rows.push(...fileRows);
    if (isDataKey(f.name)) for (const [id, cells] of (await (await ShardFile.open(bytes, f.name)).images(fileRows)) ?? []) images.set(id, cells);
  }
  rows.sort((a, b) => a.index - b.index);

  const records: PairRecord[] = [];
  const missing: PairRecord[] = [];
  let copied = 0;
  let dropped = 0;
  for (const row of rows) {
    const judged = judgeRecorded(row, identity, job.rules.get(row.category) ?? [], job.promptThresholds.get(row.category) ?? null);
    const verdict = judged.accepted && job.duplicates.has(row.pair_id) ? { ...judged, accepted: false, rejectReason: NEAR_DUPLICATE } : judged;
    const record: PairRecord = {
      ...withoutManifestColumns(row),
      run_id: plan.run_id,
      split: splitOf(row.pair_id, job.splits),
      identity_threshold: verdict.threshold,
      identity_settings: withThresholds(row.identity_settings, identity),
      accepted: verdict.accepted,
      reject_reason: verdict.rejectReason,
      source_image: null,
      edited_image: null,
    };
    if (verdict.accepted) {
      const kept = images.get(row.pair_id);
      if (kept) {
        Object.assign(record, kept);
        copied++;
      } else missing.push(record);
    } else if (row.accepted) dropped++;
    records.push(record);
  }
  if (missing.length) await regenerateImages(job, missing);

  await writeShard(job.store, plan, shard, records, {});
  return { copied, regenerated: missing.length, dropped };
}

/** Newly accepted pairs: sample them again from their seeds (same teacher, settings, threads) and encode. */
async function regenerateImages(job: ShardJob, records: PairRecord[]): Promise<void> {
  const teacher = await job.teacher();
  const specs = records.map((r) => specOfRow(r, job.promptThresholds.get(r.category) ?? null));
  const batch = job.plan.config.runtime.batch_size;
  const encoding = { format: job.plan.config.output.image_format, quality: job.plan.config.output.quality, lossless: job.plan.config.output.lossless };
  for (let i = 0; i < specs.length; i += batch) {
    const pairs = await teacher.generate(specs.slice(i, i + batch));
    for (let k = 0; k < pairs.length; k++) {
      const r = records[i + k];
      const [source, edited] = await Promise.all([encodeImage(pairs[k].source, encoding), encodeImage(pairs[k].edited, encoding)]);
      const ext = r.image_format === 'jpeg' ? 'jpg' : r.image_format;
      r.source_image = { bytes: source, path: `${r.pair_id}_source.${ext}` };
      r.edited_image = { bytes: edited, path: `${r.pair_id}_edited.${ext}` };
    }
  }
}

function withoutManifestColumns(row: ManifestRow): Omit<PairRecord, 'source_image' | 'edited_image'> {
  const { file: _file, file_row: _row, ...rest } = row;
  return rest;
}

/** The scorer records its thresholds in identity_settings; keep them true for the new run. */
function withThresholds(settings: Record<string, unknown>, identity: RunPlan['config']['identity']): Record<string, unknown> {
  const out = { ...settings };
  if ('threshold' in out) out.threshold = identity.threshold;
  if ('category_thresholds' in out) out.category_thresholds = identity.category_thresholds;
  return out;
}
