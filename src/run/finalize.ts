import { PassThrough } from 'node:stream';
import { UserError } from '../errors.ts';
import { EditTruthTally, GroundTruthTally, type EditTruthResult, type PrecisionRecall } from '../reference/index.ts';
import { scoresRead } from '../scorers/rules.ts';
import { filterVerdicts, type RecordedRow } from '../candidates/verdict.ts';
import { scoreColumn } from '../scorers/config.ts';
import { EDIT_MADE } from '../shards/manifest-group.ts';
import { writePreview } from '../report/index.ts';
import { imageSettingsFor } from '../image/index.ts';
import { renderDatasetCard, runSchemas, StatsAccumulator, writeManifestFromShards, type DatasetStats } from '../shards/index.ts';
import { CARD_FILE, CHECKSUMS_FILE, DATA_PREFIX, isDataKey, MANIFEST_FILE, shardName, splitGlob, STATS_FILE } from '../dataset/layout.ts';
import { markerProblems, readMarker, readShardTimings } from '../dataset/commit.ts';
import { openRun, planRules, type RunPlan } from '../dataset/run-file.ts';
import { nearDuplicateMarks } from './duplicates.ts';
import { scanShards } from '../dataset/scan.ts';
import { checkSplits, SPLIT_NAMES } from '../dataset/splits.ts';

export interface FinalizeResult {
  uri: string;
  shards: number;
  accepted: number;
  rejected: number;
  manifestRows: number;
  stats: RunStats;
  /** Files written under preview/ (contact sheets, histogram, index.html). */
  preview: string[];
}

/** stats.json: the shard module's dataset stats plus the identity filter against ground truth, when the teacher records one. */
export type RunStats = DatasetStats & {
  run_id: string;
  name: string;
  splits: { fractions: Record<string, number>; counts: Record<string, { candidates: number; accepted: number }> };
  /** The identity verdict (face found, similarity at least the category's threshold) against `identity_kept`. */
  identity_vs_ground_truth: PrecisionRecall | null;
  /**
   * The rules (docs/rules.md) against `edit_kept` (the edit asked for was made), the whole verdict against
   * both truths, and how many unedited / wrongly edited pairs were kept; null when the teacher records no edit truth.
   */
  edit_vs_ground_truth: EditTruthResult | null;
  /** Runs with the duplicates scorer: rows marked as near-duplicates (manifest `duplicate_of`), accepted ones by category. */
  near_duplicates: NearDuplicateCounts | null;
};

export interface NearDuplicateCounts {
  /** Every marked row, accepted or not. */
  marked: number;
  /** Accepted pairs whose source nearly copies an earlier accepted pair's: `refilter --drop-duplicates` drops them. */
  accepted: number;
  by_category: Record<string, number>;
}

export interface FinalizeOptions {
  rangeReadBytes?: number;
  preview?: boolean;
  /**
   * Check data files against their markers by size only (one listing), not by sha256 (every byte read
   * once). For very large runs whose files were verified on the way in.
   */
  trustSizes?: boolean;
  /** Threads reading and encoding the manifest's row groups, and joining near-duplicate hashes (default: one per core); the bytes do not depend on it. */
  threads?: number;
}

/**
 * `pairgen finalize`: once every shard is committed and every data file matches its marker (sha256,
 * or sizes with trustSizes), write manifest.parquet (one row per candidate, accepted and rejected, no
 * image bytes), stats.json and the README.md dataset card. Nothing is written when a check fails.
 * Idempotent: the outputs are a pure function of the committed shards.
 */
export async function finalizeRun(runUri: string, options: FinalizeOptions = {}): Promise<FinalizeResult> {
  const { plan, store } = await openRun(runUri);
  const { markers, invalid } = await scanShards(store, plan, !options.trustSizes);
  if (markers.size < plan.shards) {
    const pending = Array.from({ length: plan.shards }, (_, i) => i).filter((s) => !markers.has(s) && !invalid.includes(s));
    const parts = [];
    if (invalid.length) {
      const marker = await readMarker(store, invalid[0]);
      const problems = marker ? await markerProblems(store, marker, !options.trustSizes) : [];
      parts.push(`${invalid.length === 1 ? '1 shard has a marker that does not match its files' : `${invalid.length} shards have markers that do not match their files`} (${shardName(invalid[0])}: ${problems[0] ?? 'marker unreadable or of another run'}${invalid.length > 1 ? '; ...' : ''})`);
    }
    if (pending.length) parts.push(`${pending.length} of ${plan.shards} shards are not committed (${pending.slice(0, 8).map(shardName).join(', ')}${pending.length > 8 ? ', ...' : ''})`);
    throw new UserError(`${store.uri}: ${parts.join('; ')}; run \`pairgen work ${runUri}\` to (re)make them, then finalize again`);
  }
  const stats = new StatsAccumulator();
  const fractions = checkSplits(plan.splits, `${store.uri}/run.json: splits`);
  const splitCounts = Object.fromEntries(SPLIT_NAMES.map((n) => [n, { candidates: 0, accepted: 0 }]));
  const truth = new GroundTruthTally('identity');
  const editTruth = new EditTruthTally();
  // Identity and the rules are judged apart (the reject reason names only the first that failed), so the
  // stats get the columns the rules read.
  const rules = planRules(plan, `${store.uri}/run.json`);
  const statsScores = scoresRead(rules.values()).filter((n) => n !== 'identity.similarity').map(scoreColumn);
  const pass = new PassThrough();
  const upload = store.putStream(MANIFEST_FILE, pass);
  const shards = Array.from({ length: plan.shards }, (_, s) => ({ shard: s, files: markers.get(s)!.files, part: markers.get(s)!.manifest_part }));
  const duplicateOf = plan.config.scorers?.enabled.includes('duplicates') ? await nearDuplicateMarks(store, shards, { rangeReadBytes: options.rangeReadBytes, threads: options.threads }) : undefined;
  const duplicates: NearDuplicateCounts | null = duplicateOf ? { marked: 0, accepted: 0, by_category: {} } : null;
  let row0 = 0; // the manifest row of the group's first row
  const [rows] = await Promise.all([
    writeManifestFromShards(pass, {
      shards,
      scorers: plan.config.scorers?.enabled ?? [],
      statsScores,
      duplicateOf,
      store,
      storeUri: runUri,
      storage: plan.config.storage,
      rangeReadBytes: options.rangeReadBytes,
      threads: options.threads,
      onGroup: (g) => {
        const row = { category: '', accepted: false, reject_reason: null as string | null, identity_similarity: null as number | null };
        for (let i = 0; i < g.category.length; i++) {
          row.category = g.category[i];
          row.accepted = g.accepted[i] === 1;
          row.reject_reason = g.reject_reason[i];
          row.identity_similarity = g.identity_similarity[i];
          if (g.identity_kept[i] >= 0) {
            const recorded: RecordedRow = { ...row };
            for (const c of statsScores) recorded[c] = g.scores[c][i];
            const passed = filterVerdicts(recorded, plan.config.identity, rules.get(row.category) ?? [], g.identity_threshold[i]);
            const extra: Record<string, unknown> = { identity_kept: g.identity_kept[i] === 1 };
            truth.add(passed.identity, extra);
            if (g.edit_made[i] >= 0) {
              extra.edit_kept = g.edit_kept[i] === 1;
              extra.edit_made = EDIT_MADE[g.edit_made[i]];
              editTruth.add(row.accepted, extra, passed.rules);
            }
          }
          if (duplicates && duplicateOf![row0 + i] !== null) {
            duplicates.marked++;
            if (row.accepted) {
              duplicates.accepted++;
              duplicates.by_category[row.category] = (duplicates.by_category[row.category] ?? 0) + 1;
            }
          }
          splitCounts[g.split[i]].candidates++;
          if (row.accepted) splitCounts[g.split[i]].accepted++;
          stats.add(row);
        }
        row0 += g.category.length;
      },
    }),
    upload,
  ]);
  for (const t of await readShardTimings(store, Array.from({ length: plan.shards }, (_, s) => s))) stats.addShard(t);
  const splits = { fractions, counts: splitCounts };
  const files = [...markers.values()].flatMap((m) => m.files).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  await store.put(CHECKSUMS_FILE, files.map((f) => `${f.sha256}  ${f.name}\n`).join(''), { contentType: 'text/plain' });
  const result: RunStats = {
    run_id: plan.run_id,
    name: plan.name,
    ...stats.result(),
    splits,
    identity_vs_ground_truth: truth.result(),
    edit_vs_ground_truth: editTruth.result(),
    near_duplicates: duplicates,
  };
  await store.put(STATS_FILE, JSON.stringify(result, null, 2) + '\n', { contentType: 'application/json' });
  const card = renderDatasetCard({
    schema: runSchemas(plan.config.scorers?.enabled).pair,
    nearDuplicates: duplicates,
    name: plan.name,
    runUri: store.uri,
    stats: result,
    codeVersion: plan.code_version,
    configSummary: configSummary(plan),
    acceptance: acceptanceSettings(plan),
    license: plan.config.output.license,
    language: plan.config.output.language,
    splits: SPLIT_NAMES.map((name) => {
      const data = files.filter((f) => isDataKey(f.name) && f.name.startsWith(`${DATA_PREFIX}${name}-`));
      return { name, fraction: fractions[name], ...splitCounts[name], glob: splitGlob(name), files: data.length, bytes: data.reduce((a, f) => a + f.size, 0) };
    }),
    checksumsFile: CHECKSUMS_FILE,
  });
  await store.put(CARD_FILE, card, { contentType: 'text/markdown' });
  const preview = options.preview === false ? [] : await writePreview(runUri);
  return { uri: store.uri, shards: plan.shards, accepted: result.accepted, rejected: result.rejected, manifestRows: rows, stats: result, preview };
}

/** The settings a pair was kept or rejected by, for the card. */
function acceptanceSettings(plan: RunPlan): Record<string, unknown> {
  const identity = plan.config.identity;
  const out: Record<string, unknown> = identity.enabled
    ? { identity: { threshold: identity.threshold, category_thresholds: identity.category_thresholds, model_digest: plan.models.identity.digest } }
    : { identity: plan.config.scorers ? 'disabled' : 'disabled: every generated pair is kept' };
  if (plan.config.scorers) {
    const rules = planRules(plan, 'run.json');
    out.scorers = { enabled: plan.config.scorers.enabled, model_digest: plan.models.scorers?.digest ?? '' };
    // Each category's rules in the order they are tried; the first that fails is the reject reason.
    out.rules = Object.fromEntries([...rules].map(([category, list]) => [category, Object.fromEntries(list.map((r) => [r.name, r.text]))]));
  }
  return out;
}

function configSummary(plan: RunPlan): Record<string, unknown> {
  const c = plan.config;
  return {
    pairs: plan.pairs,
    shards: plan.shards,
    seed: plan.seed,
    prompt_set: c.prompts.set.split('/').pop(),
    teacher: c.teacher,
    teacher_digest: plan.models.teacher.digest,
    identity: c.identity,
    identity_digest: plan.models.identity.digest,
    // Only the image settings that apply to the format (no quality for PNG), and the row group target.
    images: imageSettingsFor(c.output),
    row_group_bytes: c.output.row_group_bytes,
  };
}
