/**
 * `pairgen plan`: a pipeline config → run.json and prompts.parquet on the run's store (the first stage
 * of a run; everything after reads the frozen plan, see src/dataset/run-file.ts).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPipelineConfig } from '../config/index.ts';
import { refuseProblems, validateConfig } from '../config/check.ts';
import { UserError } from '../errors.ts';
import { loadPromptSet, writePromptTable } from '../prompts/index.ts';
import { openStore } from '../store/index.ts';
import type { Store } from '../store/types.ts';
import { PROMPTS_FILE, RUN_FILE } from '../dataset/layout.ts';
import { modelDigests, planConflict, planId, RUN_FORMAT, serializePlan, type RunPlan } from '../dataset/run-file.ts';
import { checkSplits } from '../dataset/splits.ts';
import { CODE_VERSION } from '../util/version.ts';

export interface PlanOptions {
  sets?: string[];
  pairs?: number;
  shardSize?: number;
}

export interface PlanResult {
  plan: RunPlan;
  store: Store;
  /** false when an identical run.json was already there (planning is idempotent). */
  created: boolean;
  /** Files of an existing identical run that were missing or damaged and were written again. */
  restored: string[];
}

/** Build a run plan from a pipeline config without writing anything. */
export async function buildPlan(configFile: string, options: PlanOptions, promptTablePath: string): Promise<{ plan: RunPlan; promptBytes: Uint8Array }> {
  const sets = [...(options.sets ?? [])];
  if (options.pairs !== undefined) sets.push(`pairs=${options.pairs}`);
  if (options.shardSize !== undefined) sets.push(`shard_size=${options.shardSize}`);
  const { config } = loadPipelineConfig(configFile, sets);
  // The validation `pairgen check` reports: a run that check (or work) would refuse is never written.
  refuseProblems((await validateConfig(config)).problems, configFile);

  const promptSet = loadPromptSet(config.prompts.set);
  const count = config.prompts.count ?? config.pairs;
  const table = await writePromptTable(promptSet, { count, seed: config.seed }, promptTablePath);
  const promptBytes = readFileSync(promptTablePath);
  const trainRows = table.rows - table.evalRows;
  if (trainRows < 1) throw new UserError(`${config.prompts.set}: expanded to no training prompts`);

  const plan: RunPlan = {
    format: RUN_FORMAT,
    run_id: '',
    name: config.name,
    code_version: CODE_VERSION,
    config,
    seed: config.seed,
    pairs: config.pairs,
    shard_size: config.shard_size,
    shards: Math.ceil(config.pairs / config.shard_size),
    prompts: { file: PROMPTS_FILE, sha256: table.sha256, train_rows: trainRows, eval_rows: table.evalRows, per_category: table.perCategory },
    models: await modelDigests(config),
  };
  if (config.output.splits) plan.splits = checkSplits(config.output.splits, `${configFile}: output.splits`);
  plan.run_id = planId(plan);
  return { plan, promptBytes };
}

/**
 * `pairgen plan`: write run.json and prompts.parquet at `outUri`. Planning the same config at the same
 * place again is a no-op; planning a different one over an existing run is refused.
 */
export async function planRun(configFile: string, outUri: string, options: PlanOptions = {}): Promise<PlanResult> {
  const tmp = mkdtempSync(join(tmpdir(), 'pairgen-plan-'));
  try {
    const { plan, promptBytes } = await buildPlan(configFile, options, join(tmp, PROMPTS_FILE));
    const store = openStore(outUri, plan.config.storage);
    const text = serializePlan(plan);
    const existing = await store.getIfExists(RUN_FILE);
    if (existing) {
      const conflict = planConflict(Buffer.from(existing).toString('utf8'), plan);
      if (conflict !== null) throw new UserError(`${store.uri} already holds a different run (${conflict}); plan into a new --out, or delete the old run first`);
      // The same plan: put back what is missing (the same config expands to the same prompt table, byte for byte).
      const restored: string[] = [];
      if ((await store.head(PROMPTS_FILE))?.size !== promptBytes.length) {
        await store.put(PROMPTS_FILE, promptBytes);
        restored.push(PROMPTS_FILE);
      }
      if (Buffer.from(existing).toString('utf8') !== text) {
        await store.put(RUN_FILE, text, { contentType: 'application/json' });
        restored.push(RUN_FILE);
      }
      return { plan, store, created: false, restored };
    }
    const hadPrompts = (await store.head(PROMPTS_FILE)) !== null;
    try {
      await store.put(PROMPTS_FILE, promptBytes);
      await store.put(RUN_FILE, text, { contentType: 'application/json' });
    } catch (e) {
      if (!hadPrompts) await store.delete(PROMPTS_FILE).catch(() => {});
      throw e;
    }
    return { plan, store, created: true, restored: [] };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
