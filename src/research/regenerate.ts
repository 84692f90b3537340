import { UserError } from '../errors.ts';
import { encodeCandidates } from '../candidates/table.ts';
import { CANDIDATES_FILE } from '../dataset/layout.ts';
import { sha256Hex } from '../util/digest.ts';
import { finalizeRun } from '../run/finalize.ts';
import { modelDigests, type RunPlan } from '../dataset/run-file.ts';
import { CODE_VERSION } from '../util/version.ts';
import { workRun, type WorkOptions, type WorkSummary } from '../run/work.ts';
import type { LineageSpec } from '../shards/record.ts';
import { RunDb, firstLine } from '../dataset/db.ts';
import { predicateSql } from '../dataset/predicate.ts';
import { configChanges, deriveConfig, derivedPairId, writeDerivedRun } from './derive.ts';
import { checkSplits, type SplitFractions } from '../dataset/splits.ts';

export interface RegenerateOptions {
  /** A condition over the parent's manifest columns (see predicateSql); required (use "true" for every pair). */
  where: string;
  /** Config overrides, key.path=value (teacher.steps=50, identity.enabled=false, ...). */
  sets?: string[];
  /** Candidates per shard of the new run (default: the parent's). */
  shardSize?: number;
  /** Split fractions of the new run (default: the parent's). */
  splits?: SplitFractions;
  /** Write the new run's plan only; `pairgen work` / `finalize` (e.g. as an array job) do the rest. */
  planOnly?: boolean;
  /** Progress and stop signal for the in-process work. */
  work?: Pick<WorkOptions, 'onShard' | 'signal'>;
}

export interface RegenerateResult {
  uri: string;
  pairs: number;
  shards: number;
  /** What differs from the parent's settings; {} = an exact replay (same pair_ids, same bytes). */
  changes: Record<string, { from: unknown; to: unknown }>;
  created: boolean;
  work: WorkSummary | null;
  accepted: number | null;
  rejected: number | null;
}

/** Keys a regeneration cannot change: they decide which pairs exist and their seeds. */
const FIXED = [/^seed$/, /^pairs$/, /^prompts(\.|$)/];

/**
 * `pairgen regenerate`: the parent's candidates chosen by `where`, again from their own seeds, as a
 * new run with an explicit candidate table (run.json `candidates`). With no overrides every pair keeps
 * its pair_id and its images are byte-identical to the parent's (same seed, teacher, settings,
 * threads); with overrides each pair gets a new pair_id derived from its parent's and the changes,
 * and records both (parent_pair_id, changes). Resumable: running it again finishes what is missing.
 */
export async function regenerateRun(parentUri: string, outUri: string, options: RegenerateOptions): Promise<RegenerateResult> {
  const sets = options.sets ?? [];
  for (const s of sets) {
    const key = s.slice(0, Math.max(0, s.indexOf('='))).trim();
    if (FIXED.some((re) => re.test(key))) throw new UserError(`--set ${s}: regenerate keeps each pair's seed and prompt; ${key} cannot change (plan a new run for that)`);
  }
  const run = await RunDb.open(parentUri, { views: ['manifest', 'prompts'] });
  const parentStore = run.store;
  let parent: RunPlan;
  let specs: LineageSpec[];
  let changes: Record<string, { from: unknown; to: unknown }>;
  let config;
  try {
    parent = run.plan;
    config = deriveConfig(parent, run.store.uri, sets);
    changes = configChanges(parent.config, config);
    specs = await selectSpecs(run, options.where, changes);
  } finally {
    await run.close();
  }
  const shardSize = options.shardSize ?? parent.shard_size;
  if (!Number.isInteger(shardSize) || shardSize < 1) throw new UserError(`--shard-size must be a positive integer, got ${shardSize}`);
  config.pairs = specs.length;
  config.shard_size = shardSize;
  const table = encodeCandidates(specs);
  const plan: RunPlan = {
    ...parent,
    run_id: '',
    code_version: CODE_VERSION,
    config,
    pairs: specs.length,
    shard_size: shardSize,
    shards: Math.ceil(specs.length / shardSize),
    models: await modelDigests(config),
    candidates: { file: CANDIDATES_FILE, sha256: sha256Hex(table), rows: specs.length, parent_run: parentStore.uri, parent_run_id: parent.run_id },
    derived_from: undefined,
    splits: checkSplits(options.splits ?? parent.splits, '--splits'),
  };
  const { store, created } = await writeDerivedRun(plan, parentStore, outUri, { files: [{ key: CANDIDATES_FILE, bytes: table }] });
  const result: RegenerateResult = { uri: store.uri, pairs: plan.pairs, shards: plan.shards, changes, created, work: null, accepted: null, rejected: null };
  if (options.planOnly) return result;
  result.work = await workRun(outUri, { ...options.work });
  if (result.work.failed.length || result.work.held.length) {
    throw new UserError(`${store.uri}: ${result.work.failed.length + result.work.held.length} shards failed; run \`pairgen work ${outUri} --retry-failed\` and \`pairgen finalize ${outUri}\``);
  }
  const done = await finalizeRun(outUri);
  result.accepted = done.accepted;
  result.rejected = done.rejected;
  return result;
}

/** The chosen candidates in the parent's order, as specs of the new run (index = position). */
async function selectSpecs(run: RunDb, where: string, changes: Record<string, unknown>): Promise<LineageSpec[]> {
  if (!run.views.has('manifest')) throw new UserError(`${run.store.uri}: the run has no manifest.parquet yet; finish it with \`pairgen finalize\` first`);
  const columns = await run.columns('manifest');
  const condition = predicateSql(where, { option: '--where', view: 'manifest', columns });
  const sql = `SELECT m.*, t.prompt_threshold FROM (SELECT * FROM manifest WHERE ${condition}) m
    LEFT JOIN (SELECT prompt_id, any_value(identity_threshold) AS prompt_threshold FROM prompts GROUP BY prompt_id) t USING (prompt_id)
    ORDER BY m."index"`;
  let rows: Record<string, unknown>[];
  try {
    rows = (await run.db.runAndReadAll(sql)).getRowObjectsJS();
  } catch (e) {
    throw new UserError(`--where ${JSON.stringify(where)}: ${firstLine(e)} (manifest columns: ${columns.join(', ')})`);
  }
  if (rows.length === 0) throw new UserError(`--where ${JSON.stringify(where)} matches no candidate of ${run.store.uri}`);
  const exact = Object.keys(changes).length === 0;
  return rows.map((r, index) => {
    const parentId = String(r.pair_id);
    return {
      pairId: exact ? parentId : derivedPairId(parentId, changes),
      index,
      seed: Number(r.seed),
      promptId: String(r.prompt_id),
      sampleIndex: Number(r.sample_index),
      category: String(r.category),
      sourcePrompt: String(r.source_prompt),
      instruction: String(r.instruction),
      targetPrompt: String(r.target_prompt),
      identityThreshold: r.prompt_threshold === null || r.prompt_threshold === undefined ? null : Number(r.prompt_threshold),
      attributes: JSON.parse(String(r.attributes)),
      lineage: { parentPairId: parentId, changes },
    };
  });
}
