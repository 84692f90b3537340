/**
 * Scanning a run's markers/ folder: which shards are committed (marker present and matching its files),
 * which markers are invalid, and which shards' last attempt failed.
 */
import pLimit from 'p-limit';
import { markerFiles, parseMarker, verifyMarkerSizes, type ShardMarker } from '../shards/index.ts';
import type { Store } from '../store/types.ts';
import { markerProblems } from './commit.ts';
import { readFailure, type FailureRecord } from './failures.ts';
import { DATA_PREFIX, failureShard, MANIFEST_PARTS_PREFIX, markerShard, MARKERS_PREFIX, REJECTS_PREFIX } from './layout.ts';
import type { RunPlan } from './run-file.ts';

/** A pending shard whose last attempt failed (it has a failure record). */
export interface FailedShard {
  shard: number;
  attempts: number;
  error: string;
  time: string;
}

/**
 * Committed markers of a run, keyed by shard, with the ones whose files do not match listed apart, and
 * the shards that have a failure record (committed or not).
 */
export async function scanShards(store: Store, plan: RunPlan, verify = false): Promise<{ markers: Map<number, ShardMarker>; invalid: number[]; failureRecords: number[] }> {
  const sizes = new Map<string, number>();
  const markerKeys: [number, string][] = [];
  const failureRecords: number[] = [];
  for (const prefix of [DATA_PREFIX, REJECTS_PREFIX, MANIFEST_PARTS_PREFIX]) for await (const entry of store.list(prefix)) sizes.set(entry.key, entry.size);
  for await (const entry of store.list(MARKERS_PREFIX)) {
    const shard = markerShard(entry.key);
    if (shard !== null && shard < plan.shards) markerKeys.push([shard, entry.key]);
    const failed = failureShard(entry.key);
    if (failed !== null && failed < plan.shards) failureRecords.push(failed);
  }
  const markers = new Map<number, ShardMarker>();
  const invalid: number[] = [];
  const limit = pLimit(16);
  await Promise.all(
    markerKeys.map(([shard, key]) =>
      limit(async () => {
        let marker: ShardMarker;
        try {
          marker = parseMarker(await store.get(key), `${store.uri}/${key}`);
        } catch {
          invalid.push(shard);
          return;
        }
        const ok = verify
          ? (await markerProblems(store, marker, true)).length === 0
          : verifyMarkerSizes(marker, new Map(markerFiles(marker).map((f) => [f.name, sizes.get(f.name) ?? null]))).ok;
        if (ok && marker.run_id === plan.run_id) markers.set(shard, marker);
        else invalid.push(shard);
      }),
    ),
  );
  invalid.sort((a, b) => a - b);
  return { markers, invalid, failureRecords };
}

/** The failure records of shards that are not committed, in shard order. */
export async function failedShards(store: Store, shards: number[], markers: Map<number, ShardMarker>): Promise<FailedShard[]> {
  const limit = pLimit(16);
  const records = await Promise.all(shards.filter((s) => !markers.has(s)).map((s) => limit(() => readFailure(store, s))));
  return records
    .filter((r): r is FailureRecord => r !== null)
    .map((r) => ({ shard: r.shard, attempts: r.attempts, error: r.error, time: r.time }))
    .sort((a, b) => a.shard - b.shard);
}

/** The committed shards' counts summed from their markers: candidates, accepted, rejected, by reason and by category. */
export function markerTotals(markers: Iterable<ShardMarker>) {
  let done = 0;
  let accepted = 0;
  let rejected = 0;
  const byReason: Record<string, number> = {};
  const byCategory: Record<string, { accepted: number; rejected: number }> = {};
  for (const m of markers) {
    done += m.counts.candidates;
    accepted += m.counts.accepted;
    rejected += m.counts.rejected;
    for (const [reason, n] of Object.entries(m.counts.by_reason ?? {})) byReason[reason] = (byReason[reason] ?? 0) + n;
    for (const [cat, c] of Object.entries(m.counts.by_category ?? {})) {
      const t = (byCategory[cat] ??= { accepted: 0, rejected: 0 });
      t.accepted += c.accepted;
      t.rejected += c.rejected;
    }
  }
  return { done, accepted, rejected, byReason, byCategory };
}
