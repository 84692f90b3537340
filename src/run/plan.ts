/**
 * `pairgen plan`: a pipeline config → run.json and prompts.parquet on the run's store (the first stage
 * of a run; everything after reads the frozen plan, see src/dataset/run-file.ts).
 */
import { createReadStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPipelineConfig } from '../config/index.ts';
import { refuseProblems, validateConfig } from '../config/check.ts';
import { UserError } from '../errors.ts';
import { localPath, openStore } from '../store/index.ts';
import type { Store } from '../store/types.ts';
import { PROMPTS_FILE, RUN_FILE } from '../dataset/layout.ts';
import type { RunPlan } from '../dataset/run-file.ts';
import { checkSplits } from '../dataset/splits.ts';
import { CODE_VERSION } from '../util/version.ts';
import { isStoreUri, localModelKeys, localModels, uploadedModels, type ModelUpload } from '../models/index.ts';
import { log } from '../util/log.ts';

export interface PlanOptions {
  sets?: string[];
  pairs?: number;
  shardSize?: number;
  /**
   * Copy the config's local models into the run's store (models/<rank>/<name>) and record those
   * copies, so workers on any node fetch them (src/models). buildPlan takes the run's URI here.
   */
  uploadModels?: boolean | string;
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
export async function buildPlan(configFile: string, options: PlanOptions, promptTablePath: string): Promise<{ plan: RunPlan; promptBytes: Uint8Array; uploads: ModelUpload[] }> {
  const sets = [...(options.sets ?? [])];
  if (options.pairs !== undefined) sets.push(`pairs=${options.pairs}`);
  if (options.shardSize !== undefined) sets.push(`shard_size=${options.shardSize}`);
  const loaded = loadPipelineConfig(configFile, sets).config;
  const upload = typeof options.uploadModels === 'string' ? uploadedModels(loaded, options.uploadModels) : null;
  const config = upload?.config ?? loaded;
  // Models on a store are checked and digested from this node's cached copy; run.json records their URIs.
  const local = upload?.local ?? (await localModels(config));
  // The validation `pairgen check` reports: a run that check (or work) would refuse is never written.
  refuseProblems((await validateConfig(local.config)).problems, configFile);
  const editModel = config.teacher.edit_model ?? config.teacher.model;
  if (isStoreUri(editModel) && (await import('../reference/truth.ts')).referenceLabeller(local.config.teacher)) {
    log.warn(`teacher: ${editModel} holds reference.json (the reference teacher's ground truth); workers fetch only the model files run.json lists, so its pairs get no ground-truth labels. Plan with a local folder to keep them`);
  }

  // The prompt table's writer and run.json's encoder (Parquet, Arrow) load only now: a bad config fails without them.
  const [{ loadPromptSet, writePromptTable }, { modelDigests, planId, RUN_FORMAT }] = await Promise.all([import('../prompts/index.ts'), import('../dataset/run-file.ts')]);
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
    models: await modelDigests(config, local),
  };
  if (config.output.splits) plan.splits = checkSplits(config.output.splits, `${configFile}: output.splits`);
  const promptRules = (await import('../config/check.ts')).promptRulesOf(promptSet);
  if (Object.keys(promptRules).length) plan.prompt_rules = promptRules;
  plan.run_id = planId(plan);
  return { plan, promptBytes, uploads: upload?.uploads([...plan.models.teacher.files, ...plan.models.identity.files]) ?? [] };
}

/**
 * `pairgen plan`: write run.json and prompts.parquet at `outUri`. Planning the same config at the same
 * place again is a no-op; planning a different one over an existing run is refused.
 */
export async function planRun(configFile: string, outUri: string, options: PlanOptions = {}): Promise<PlanResult> {
  const tmp = mkdtempSync(join(tmpdir(), 'pairgen-plan-'));
  try {
    const uploadModels = options.uploadModels ? openStore(outUri).uri : undefined;
    const { plan, promptBytes, uploads } = await buildPlan(configFile, { ...options, uploadModels }, join(tmp, PROMPTS_FILE));
    const { planConflict, serializePlan } = await import('../dataset/run-file.ts');
    const store = openStore(outUri, plan.config.storage);
    const text = serializePlan(plan);
    const existing = await store.getIfExists(RUN_FILE);
    if (!uploadModels) warnLocalModels(plan, store.uri);
    if (existing) {
      const conflict = planConflict(Buffer.from(existing).toString('utf8'), plan);
      if (conflict !== null) throw new UserError(`${store.uri} already holds a different run (${conflict}); plan into a new --out, or delete the old run first`);
      // The same plan: put back what is missing (the same config expands to the same prompt table, byte for byte).
      const restored: string[] = await copyModels(store, uploads);
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
    await copyModels(store, uploads);
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

/**
 * --upload-models: copy the recorded model files into the run's store (a copy already there with the
 * same size is kept: workers check every file's sha256 against run.json anyway). Returns the keys written.
 */
async function copyModels(store: Store, uploads: ModelUpload[]): Promise<string[]> {
  const written: string[] = [];
  for (const u of uploads) {
    if ((await store.head(u.key))?.size === u.size) continue;
    await store.putStream(u.key, createReadStream(u.from));
    written.push(u.key);
  }
  return written;
}

/** A run on a store whose models are local paths can only be worked where those paths exist: say so. */
function warnLocalModels(plan: RunPlan, runUri: string): void {
  if (localPath(runUri) !== null) return;
  const keys = localModelKeys(plan.config);
  if (keys.length === 0) return;
  log.warn(`${keys.join(', ')}: local path${keys.length > 1 ? 's' : ''} recorded in ${RUN_FILE}; only nodes with the same files at the same path can work this run. Plan with --upload-models to copy them into the run's store, or give s3:// URIs (docs/storage.md, "Models on a store")`);
}
