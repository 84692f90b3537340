import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPipelineConfig, type PipelineConfig } from '../config/index.ts';
import { UserError } from '../errors.ts';
import { PROMPTS_FILE, RUN_FILE } from '../dataset/layout.ts';
import { planId, serializePlan, type RunPlan } from '../dataset/run-file.ts';
import { canonicalJson } from '../util/json.ts';
import { openStore } from '../store/index.ts';
import type { Store } from '../store/types.ts';

/**
 * What derived runs (regenerate, refilter) share: the parent's frozen config with --set overrides,
 * validated like any pipeline config; the list of what changed; ids of changed pairs; and writing
 * the new run's files so that nothing is visible before run.json, which goes last.
 */

/** Keys that never change a pair's content: they are not "changes" and do not alter a pair_id. */
const LAYOUT_KEYS = [/^name$/, /^pairs$/, /^shard_size$/, /^storage\./, /^runtime\.(concurrency|batch_size|scoring_threads)$/, /^output\.row_group_bytes$/];

/** The parent's config with `sets` applied, validated by the pipeline schema; errors name the parent's run.json. */
export function deriveConfig(parent: RunPlan, parentUri: string, sets: string[]): PipelineConfig {
  const dir = mkdtempSync(join(tmpdir(), 'pairgen-derive-'));
  const file = join(dir, 'parent.json');
  try {
    writeFileSync(file, JSON.stringify(parent.config));
    return loadPipelineConfig(file, sets).config;
  } catch (e) {
    if (e instanceof UserError) throw new UserError(e.message.split(file).join(`${parentUri}/${RUN_FILE} config`));
    throw e;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** {"a.b": {from, to}} for every leaf that differs, layout-only keys left out. Keys sorted. */
export function configChanges(before: PipelineConfig, after: PipelineConfig): Record<string, { from: unknown; to: unknown }> {
  const a = flatten(before);
  const b = flatten(after);
  const out: Record<string, { from: unknown; to: unknown }> = {};
  for (const key of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    if (LAYOUT_KEYS.some((re) => re.test(key))) continue;
    const x = a.get(key);
    const y = b.get(key);
    if (JSON.stringify(x) !== JSON.stringify(y)) out[key] = { from: x ?? null, to: y ?? null };
  }
  return out;
}

function flatten(value: unknown, prefix = '', out = new Map<string, unknown>()): Map<string, unknown> {
  if (value && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length > 0) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else out.set(prefix, value);
  return out;
}

/**
 * The pair_id of a pair regenerated with changed settings:
 *   first 16 hex digits of sha256("pairgen-derived-v1\0{parent pair_id}\0{canonical JSON of changes}").
 * Same parent + same changes → same id, so regenerating twice gives the same pairs.
 */
export function derivedPairId(parentPairId: string, changes: Record<string, unknown>): string {
  return createHash('sha256').update(`pairgen-derived-v1\0${parentPairId}\0${canonicalJson(changes)}`).digest('hex').slice(0, 16);
}

export interface DerivedFiles {
  /** Extra files to put before run.json (e.g. candidates.parquet). */
  files: { key: string; bytes: Uint8Array }[];
}

/**
 * Write a derived run at `outUri`: the parent's prompts.parquet, the extra files, then run.json.
 * The same plan already there → nothing written (the caller resumes); a different run → refused.
 */
export async function writeDerivedRun(plan: RunPlan, parentStore: Store, outUri: string, extra: DerivedFiles): Promise<{ store: Store; created: boolean }> {
  plan.run_id = planId(plan);
  const store = openStore(outUri, plan.config.storage);
  if (store.uri === parentStore.uri) throw new UserError(`--out ${outUri} is the parent run itself; give a new location`);
  const text = serializePlan(plan);
  const existing = await store.getIfExists(RUN_FILE);
  if (existing) {
    if (Buffer.from(existing).toString('utf8') === text) return { store, created: false };
    throw new UserError(`${store.uri} already holds a different run; write the derived run to a new --out, or delete the old one first`);
  }
  await store.put(PROMPTS_FILE, await parentStore.get(PROMPTS_FILE));
  for (const f of extra.files) await store.put(f.key, f.bytes);
  await store.put(RUN_FILE, text, { contentType: 'application/json' });
  return { store, created: true };
}
