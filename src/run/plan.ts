import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPipelineConfig, locationFree, type PipelineConfig } from '../config/index.ts';
import { UserError } from '../errors.ts';
import { loadPromptSet, writePromptTable } from '../prompts/index.ts';
import { openStore, type S3Tuning } from '../store/index.ts';
import type { Store } from '../store/types.ts';
import { digestFiles, sha256Hex, type FileDigest } from '../util/digest.ts';
import { PROMPTS_FILE, RUN_FILE } from '../dataset/layout.ts';
import { CODE_VERSION } from '../util/version.ts';
import { checkSplits } from '../dataset/splits.ts';

export const RUN_FORMAT = 'pairgen-run/1';

/** run.json: everything a worker needs, frozen at plan time. No timestamps: same plan → same bytes. */
export interface RunPlan {
  format: typeof RUN_FORMAT;
  /** sha256 (16 hex digits) of this plan's content without run_id: same plan → same id. */
  run_id: string;
  name: string;
  code_version: string;
  config: PipelineConfig;
  seed: number;
  pairs: number;
  shard_size: number;
  shards: number;
  prompts: { file: string; sha256: string; train_rows: number; eval_rows: number; per_category: Record<string, number> };
  models: {
    teacher: { digest: string; files: FileDigest[] };
    identity: { digest: string; files: FileDigest[] };
  };
  /**
   * A derived run (regenerate) draws its candidates from an explicit table instead of the prompt table:
   * candidates.parquet (src/run/candidates.ts), `rows` candidates, chosen from `parent_run`.
   */
  candidates?: { file: string; sha256: string; rows: number; parent_run: string; parent_run_id: string };
  /** A run made from another one's recorded results (refilter): where from and what was overridden. */
  derived_from?: { kind: 'refilter'; parent_run: string; parent_run_id: string; sets: string[] };
  /** Split fractions (train / validation / test by a hash of pair_id); default DEFAULT_SPLITS in src/research/splits.ts. */
  splits?: Record<string, number>;
}

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
}

/** Build a run plan from a pipeline config without writing anything. */
export async function buildPlan(configFile: string, options: PlanOptions, promptTablePath: string): Promise<{ plan: RunPlan; promptBytes: Uint8Array }> {
  const sets = [...(options.sets ?? [])];
  if (options.pairs !== undefined) sets.push(`pairs=${options.pairs}`);
  if (options.shardSize !== undefined) sets.push(`shard_size=${options.shardSize}`);
  const { config } = loadPipelineConfig(configFile, sets);

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

/** Digests of the teacher's and identity scorer's model files (what workers check before sampling). */
export async function modelDigests(config: PipelineConfig): Promise<RunPlan['models']> {
  const { teacherModelFiles } = await import('../teacher/index.ts');
  const identityFiles = config.identity.enabled ? (await import('../identity/index.ts')).identityModelFiles(config.identity) : [];
  return { teacher: await digestFiles(teacherModelFiles(config.teacher)), identity: await digestFiles(identityFiles) };
}

/**
 * run_id: sha256 (16 hex digits) of the plan's content without run_id and without where its files live
 * (config paths cut to their last component, model files by content digest only), so the same config
 * and models planned from another checkout or machine get the same run_id — and the same shard bytes.
 */
export function planId(plan: RunPlan): string {
  const models = Object.fromEntries(Object.entries(plan.models).map(([stage, m]) => [stage, m.digest]));
  return sha256Hex(JSON.stringify({ ...plan, run_id: undefined, config: locationFree(plan.config), models })).slice(0, 16);
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
      const before = Buffer.from(existing).toString('utf8');
      if (before === text) return { plan, store, created: false };
      throw new UserError(`${store.uri} already holds a different run (${describeDifference(JSON.parse(before), plan)}); plan into a new --out, or delete the old run first`);
    }
    const hadPrompts = (await store.head(PROMPTS_FILE)) !== null;
    try {
      await store.put(PROMPTS_FILE, promptBytes);
      await store.put(RUN_FILE, text, { contentType: 'application/json' });
    } catch (e) {
      if (!hadPrompts) await store.delete(PROMPTS_FILE).catch(() => {});
      throw e;
    }
    return { plan, store, created: true };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export function serializePlan(plan: RunPlan): string {
  return JSON.stringify(plan, null, 2) + '\n';
}

/**
 * An existing run: its plan, and its store opened with the run's own storage settings
 * (run.json itself is read with the environment's settings, since the run's are inside it).
 */
export async function openRun(runUri: string, tuning?: S3Tuning): Promise<{ plan: RunPlan; store: Store }> {
  const plan = await readPlan(openStore(runUri));
  return { plan, store: openStore(runUri, plan.config.storage, tuning) };
}

/** Read and check run.json of an existing run. */
export async function readPlan(store: Store): Promise<RunPlan> {
  const bytes = await store.getIfExists(RUN_FILE);
  if (!bytes) throw new UserError(`${store.uri}: no run here (no ${RUN_FILE}); create one with \`pairgen plan\` or \`pairgen run\``);
  let plan: RunPlan;
  try {
    plan = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw new UserError(`${store.uri}/${RUN_FILE}: not valid JSON (${(e as Error).message})`);
  }
  if (plan.format !== RUN_FORMAT) throw new UserError(`${store.uri}/${RUN_FILE}: format "${plan.format}" is not ${RUN_FORMAT}`);
  return plan;
}

/** The first key path where two plans differ, for the refusal message. */
function describeDifference(a: unknown, b: unknown, path = ''): string {
  if (JSON.stringify(a) === JSON.stringify(b)) return 'no difference';
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of [...keys].sort()) {
      const x = (a as Record<string, unknown>)[k];
      const y = (b as Record<string, unknown>)[k];
      if (JSON.stringify(x) !== JSON.stringify(y)) return describeDifference(x, y, path ? `${path}.${k}` : k);
    }
  }
  const short = (v: unknown) => {
    const s = JSON.stringify(v) ?? 'nothing';
    return s.length > 60 ? s.slice(0, 57) + '...' : s;
  };
  return `${path || 'run.json'} is ${short(a)} there, ${short(b)} here`;
}
