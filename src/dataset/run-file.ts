/**
 * run.json: the frozen plan of a run (RunPlan), its id and canonical text, the model digests it records,
 * reading it back from a run's store, and the check that a second plan over a run is the same plan.
 */
import { locationFree, type PipelineConfig } from '../config/index.ts';
import { UserError } from '../errors.ts';
import { openStore, type S3Tuning } from '../store/index.ts';
import type { Store } from '../store/types.ts';
import { digestFiles, sha256Hex, type FileDigest } from '../util/digest.ts';
import { RUN_FILE } from './layout.ts';

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
   * candidates.parquet (src/candidates/table.ts), `rows` candidates, chosen from `parent_run`.
   */
  candidates?: { file: string; sha256: string; rows: number; parent_run: string; parent_run_id: string };
  /** A run made from another one's recorded results (refilter): where from and what was overridden. */
  derived_from?: { kind: 'refilter'; parent_run: string; parent_run_id: string; sets: string[] };
  /** Split fractions (train / validation / test by a hash of pair_id); default DEFAULT_SPLITS in src/dataset/splits.ts. */
  splits?: Record<string, number>;
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

/**
 * Compare the run.json text already on a store with a new plan: null when they are the same plan,
 * else the first key path that differs and its two values.
 */
export function planConflict(existingText: string, plan: RunPlan): string | null {
  if (existingText === serializePlan(plan)) return null;
  return describeDifference(JSON.parse(existingText), plan);
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
