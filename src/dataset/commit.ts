import pLimit from 'p-limit';
import { buildMarker, encodeManifestPart, encodeRejects, encodeShard, runSchemas, markerFiles, markerJson, parseMarker, verifyMarker, verifyMarkerSizes, type PairRecord, type ShardCounts, type ShardMarker } from '../shards/index.ts';
import type { Store } from '../store/types.ts';
import { canonicalJson } from '../util/json.ts';
import { shardDataKey, shardManifestPartKey, shardMarkerKey, shardRejectsKey, shardTimingsKey } from './layout.ts';
import type { RunPlan } from './run-file.ts';
import { SPLIT_NAMES } from './splits.ts';

/**
 * Write a shard and commit it: a data file per split that has accepted pairs, the rejects file and the
 * shard's manifest part (its manifest rows, encoded from those files) first, the marker last.
 * `beforeMarker` runs between the two (the worker checks for a stop signal there, and times the
 * writes). `timings` (seconds per stage) go to their own file, never the marker.
 */
export async function writeShard(
  store: Store,
  plan: RunPlan,
  shard: number,
  records: PairRecord[],
  timings: Record<string, number>,
  beforeMarker: () => void = () => {},
): Promise<ShardMarker> {
  const accepted = records.filter((r) => r.accepted);
  const rejected = records.filter((r) => !r.accepted);
  const stray = accepted.find((r) => !(SPLIT_NAMES as readonly string[]).includes(r.split));
  if (stray) throw new Error(`pair ${stray.pair_id}: split "${stray.split}" is not one of ${SPLIT_NAMES.join(', ')}`);
  const schemas = runSchemas(plan.config.scorers?.enabled);
  const files: { name: string; bytes: Uint8Array; rows: number }[] = [];
  for (const split of SPLIT_NAMES) {
    const rows = accepted.filter((r) => r.split === split);
    if (rows.length) files.push({ name: shardDataKey(shard, split, plan.shards), bytes: encodeShard(rows, { rowGroupBytes: plan.config.output.row_group_bytes, schemas }), rows: rows.length });
  }
  files.push({ name: shardRejectsKey(shard), bytes: encodeRejects(rejected, schemas), rows: rejected.length });
  const written = new Map(files.map((f) => [f.name, f.bytes]));
  const part = {
    name: shardManifestPartKey(shard),
    bytes: await encodeManifestPart({ shard, files: files.map((f) => ({ name: f.name, size: f.bytes.length, rows: f.rows })) }, (f) => written.get(f.name)!, plan.config.scorers?.enabled ?? []),
    rows: records.length,
  };
  await Promise.all([...files, part].map((f) => store.put(f.name, f.bytes)));
  beforeMarker();
  const marker = buildMarker({
    shard,
    runId: plan.run_id,
    codeVersion: plan.code_version,
    files,
    manifestPart: part,
    counts: { candidates: records.length, accepted: accepted.length, rejected: rejected.length, ...breakdown(records) },
  });
  if (Object.keys(timings).length) await store.put(shardTimingsKey(shard), canonicalJson(timings) + '\n', { contentType: 'application/json' });
  await commitMarker(store, shard, markerJson(marker));
  return marker;
}

function breakdown(records: PairRecord[]): Pick<ShardCounts, 'by_category' | 'by_reason'> {
  const byCategory: Record<string, { accepted: number; rejected: number }> = {};
  const byReason: Record<string, number> = {};
  for (const r of records) {
    const c = (byCategory[r.category] ??= { accepted: 0, rejected: 0 });
    if (r.accepted) c.accepted++;
    else {
      c.rejected++;
      const reason = r.reject_reason ?? 'unspecified';
      byReason[reason] = (byReason[reason] ?? 0) + 1;
    }
  }
  return { by_category: byCategory, by_reason: byReason };
}

/**
 * Put the marker only if none is there (a conditional write where the store has one), so a reader never
 * sees a marker being replaced. A marker already there with the same bytes is another worker's commit of
 * the same shard (markers hold nothing that varies between attempts); one with other bytes is stale (a
 * shard being remade: its files did not match it, or --force) and is replaced.
 */
async function commitMarker(store: Store, shard: number, text: string): Promise<void> {
  const key = shardMarkerKey(shard);
  if ((await store.putIfAbsent(key, text, { contentType: 'application/json' })) === 'written') return;
  const existing = await store.getIfExists(key);
  if (existing && Buffer.from(existing).toString('utf8') === text) return;
  await store.put(key, text, { contentType: 'application/json' });
}

/** The timings of each of `shards` (null where none were recorded), read 16 at a time. */
export async function readShardTimings(store: Store, shards: number[]): Promise<(Record<string, number> | null)[]> {
  const limit = pLimit(16);
  return Promise.all(shards.map((s) => limit(() => readTimings(store, s))));
}

/** The seconds per stage recorded for a shard's last commit, or null when there are none (or they are unreadable). */
export async function readTimings(store: Store, shard: number): Promise<Record<string, number> | null> {
  const bytes = await store.getIfExists(shardTimingsKey(shard));
  if (!bytes) return null;
  try {
    const t = JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown;
    return t && typeof t === 'object' && Object.values(t).every((v) => typeof v === 'number') ? (t as Record<string, number>) : null;
  } catch {
    return null;
  }
}

/** The marker of a shard, or null when it has none or it is unreadable (then the shard is not committed). */
export async function readMarker(store: Store, shard: number): Promise<ShardMarker | null> {
  const bytes = await store.getIfExists(shardMarkerKey(shard));
  if (!bytes) return null;
  try {
    return parseMarker(bytes, `${store.uri}/${shardMarkerKey(shard)}`);
  } catch {
    return null;
  }
}

/**
 * A shard is committed iff its marker exists and its data files match it. The quick check compares
 * sizes (one HEAD per file); `deep` also downloads and hashes every file against the marker's sha256.
 */
export async function isCommitted(store: Store, shard: number, deep = false): Promise<boolean> {
  const marker = await readMarker(store, shard);
  return marker !== null && (await markerProblems(store, marker, deep)).length === 0;
}

/** What is wrong between a marker and the files it lists ([] when they match). */
export async function markerProblems(store: Store, marker: ShardMarker, deep = false): Promise<string[]> {
  if (deep) {
    const files = new Map<string, Uint8Array | null>();
    for (const f of markerFiles(marker)) files.set(f.name, await store.getIfExists(f.name));
    return verifyMarker(marker, files).problems;
  }
  const sizes = new Map<string, number | null>();
  for (const f of markerFiles(marker)) sizes.set(f.name, (await store.head(f.name))?.size ?? null);
  return verifyMarkerSizes(marker, sizes).problems;
}
