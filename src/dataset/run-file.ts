/**
 * run.json: the frozen plan of a run (RunPlan), its id and canonical text, the model digests it records,
 * reading it back from a run's store, and the check that a second plan over a run is the same plan.
 */
import { locationFree, type PipelineConfig } from '../config/index.ts';
import { UserError } from '../errors.ts';
import { canonicalJson } from '../util/json.ts';
import { openStore, type S3Tuning } from '../store/index.ts';
import type { Store } from '../store/types.ts';
import { digestFiles, sha256Hex, type FileDigest } from '../util/digest.ts';
import { localModels, type LocalModels } from '../models/index.ts';
import { PROMPTS_FILE, RUN_FILE } from './layout.ts';
import { runRules, type CategoryRules, type RuleTable } from '../scorers/rules.ts';

/** 2: layout 2 (data/<split>-*.parquet, rejects/, markers/; src/dataset/layout.ts). */
export const RUN_FORMAT = 'pairgen-run/2';

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
    /** The pair scorers' converted models, when the config has a scorers section. */
    scorers?: { digest: string; files: FileDigest[] };
  };
  /**
   * A derived run (regenerate) draws its candidates from an explicit table instead of the prompt table:
   * candidates.parquet (src/candidates/table.ts), `rows` candidates, chosen from `parent_run`.
   */
  candidates?: { file: string; sha256: string; rows: number; parent_run: string; parent_run_id: string };
  /** A run made from another one's recorded results (refilter): where from and what was overridden. */
  derived_from?: { kind: 'refilter'; parent_run: string; parent_run_id: string; sets: string[]; drop_duplicates?: boolean };
  /** Split fractions (train / validation / test by a hash of pair_id); default DEFAULT_SPLITS in src/dataset/splits.ts. */
  splits?: Record<string, number>;
  /** The prompt set's verdict rules by category (src/scorers/rules.ts); absent when it has none. */
  prompt_rules?: Record<string, RuleTable>;
}

/**
 * Digests of the teacher's and identity scorer's model files (what workers check before sampling), each
 * file under the path run.json records: its store URI for a model on a store (src/models). `local` is
 * the config already made local (plan, work), else models on a store are fetched here.
 */
export async function modelDigests(config: PipelineConfig, local?: LocalModels<PipelineConfig>): Promise<RunPlan['models']> {
  const here = local ?? (await localModels(config));
  const { teacherModelFiles } = await import('../teacher/index.ts');
  const identity = here.config.identity;
  const identityFiles = identity.enabled ? (await import('../identity/index.ts')).identityModelFiles(identity) : [];
  const recorded = async (paths: string[]) => {
    const { digest, files } = await digestFiles(paths);
    return { digest, files: files.map((f) => ({ ...f, path: here.recordedPath(f.path) })) };
  };
  const models: RunPlan['models'] = { teacher: await recorded(teacherModelFiles(here.config.teacher)), identity: await recorded(identityFiles) };
  // Only a config with scorers records them, so that older configs keep their run_id.
  if (here.config.scorers) models.scorers = await recorded(await (await import('../scorers/index.ts')).scorerModelFiles(here.config.scorers));
  return models;
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
 * run.json's text: the plan, then its seal — `key_digests` (8 hex digits of sha256 of each value, by
 * key path) and `plan_digest` (sha256 of the canonical JSON of everything else). readPlan checks the
 * seal on every read, so a hand-edited run.json is refused naming the key that changed. (Anyone can
 * recompute a sha256: the seal catches edits and damage, it is not a signature.)
 */
export function serializePlan(plan: RunPlan): string {
  const content = unsealed(JSON.parse(JSON.stringify(plan)));
  const sealed = { ...content, key_digests: keyDigests(content) };
  return JSON.stringify({ ...sealed, plan_digest: sha256Hex(canonicalJson(sealed)) }, null, 2) + '\n';
}

/** The plan without its seal (a plan object read back from JSON may carry one). */
function unsealed(value: Record<string, unknown>): Record<string, unknown> {
  const { plan_digest: _digest, key_digests: _keys, ...content } = value;
  return content;
}

/** 8 hex digits of sha256 of each value that is not a non-empty mapping, by dotted key path. */
function keyDigests(value: unknown, path = '', out: Record<string, string> = {}): Record<string, string> {
  const entries = value !== null && typeof value === 'object' && !Array.isArray(value) ? Object.entries(value) : [];
  if (entries.length === 0) out[path] = sha256Hex(canonicalJson(value)).slice(0, 8);
  for (const [k, v] of entries) keyDigests(v, path ? `${path}.${k}` : k, out);
  return out;
}

/** The plan in run.json's text, its seal checked: an edited run.json is a UserError naming the keys that changed. */
function checkSeal(parsed: Record<string, unknown>, where: string): RunPlan {
  const content = unsealed(parsed);
  const again = 'a changed plan is a new run: plan the changed config into a new --out, or put the planned run.json back';
  if (typeof parsed.plan_digest !== 'string') {
    throw new UserError(`${where}: has no plan_digest, so it cannot be checked for edits (every ${RUN_FORMAT} run.json is written with one); plan the same config to the same --out again to restore it`);
  }
  if (sha256Hex(canonicalJson({ ...content, key_digests: parsed.key_digests })) === parsed.plan_digest) return content as unknown as RunPlan;
  const stored = parsed.key_digests !== null && typeof parsed.key_digests === 'object' ? (parsed.key_digests as Record<string, unknown>) : {};
  const now = keyDigests(content);
  const changed = [...new Set([...Object.keys(stored), ...Object.keys(now)])].filter((k) => stored[k] !== now[k]).sort();
  if (changed.length === 0) throw new UserError(`${where}: its plan_digest does not match its content (the digest itself was edited); ${again}`);
  const named = changed.length > 3 ? `${changed.slice(0, 3).join(', ')} and ${changed.length - 3} more` : changed.join(', ');
  throw new UserError(`${where}: edited after planning: ${named} differ${changed.length === 1 ? 's' : ''} from what \`pairgen plan\` wrote; ${again}`);
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
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw new UserError(`${store.uri}/${RUN_FILE}: not valid JSON (${(e as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new UserError(`${store.uri}/${RUN_FILE}: expected a JSON object`);
  const plan = parsed as unknown as RunPlan;
  if ((plan.format as string) === 'pairgen-run/1') {
    throw new UserError(
      `${store.uri}/${RUN_FILE}: this run was written by an earlier pairgen (format pairgen-run/1, pairs under shards/); this version reads ${RUN_FORMAT} ` +
        `(pairs under data/<split>-*.parquet). Convert it with \`pairgen upgrade ${store.uri} --out <new-location>\``,
    );
  }
  if (plan.format !== RUN_FORMAT) throw new UserError(`${store.uri}/${RUN_FILE}: format "${plan.format}" is not ${RUN_FORMAT}`);
  return checkSeal(parsed, `${store.uri}/${RUN_FILE}`);
}

/** A run's verdict rules by category; a run whose rules do not compile is a UserError naming run.json. */
export function planRules(plan: RunPlan, where: string): CategoryRules {
  const problems: string[] = [];
  const rules = runRules({ config: plan.config, promptRules: plan.prompt_rules ?? {}, categories: Object.keys(plan.prompts.per_category) }, problems);
  if (problems.length) throw new UserError(`${where}: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`);
  return rules;
}

/**
 * What `work` checks before it tries a shard, since every shard would hit it: the run's prompt table is
 * there, and its config passes the one validation of src/config/check.ts (the prompt set's categories
 * from run.json; the identity models are opened by work itself right after).
 */
export async function validateRun(plan: RunPlan, store: Store): Promise<void> {
  if ((await store.head(PROMPTS_FILE)) === null) {
    const parent = plan.candidates?.parent_run ?? plan.derived_from?.parent_run;
    const fix = parent ? `copy it from the parent run ${parent}` : `run \`pairgen plan\` again with this run's config and --out ${store.uri} to restore it`;
    throw new UserError(`${store.uri}/${PROMPTS_FILE} is missing (the run's prompt table); ${fix}`);
  }
  // Imported on use: the teacher and identity checks are only needed where models run.
  const { refuseProblems, validateConfig } = await import('../config/check.ts');
  const { problems } = await validateConfig(plan.config, { categories: Object.keys(plan.prompts.per_category), promptRules: plan.prompt_rules ?? {}, openIdentityModels: false });
  refuseProblems(problems, `${store.uri}/${RUN_FILE}`);
}

/**
 * Compare the run.json text already on a store with a new plan: null when they are the same plan,
 * else the first key path that differs and its two values.
 */
export function planConflict(existingText: string, plan: RunPlan): string | null {
  if (existingText === serializePlan(plan)) return null;
  let there: Record<string, unknown>;
  try {
    there = unsealed(JSON.parse(existingText));
  } catch {
    return `${RUN_FILE} there is not valid JSON`;
  }
  const here = JSON.parse(JSON.stringify(plan));
  return canonicalJson(there) === canonicalJson(here) ? null : describeDifference(there, here);
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
