import { buildMarker, encodeRejects, encodeShard, markerJson, parseMarker, verifyMarker, verifyMarkerSizes, type PairRecord, type ShardCounts, type ShardMarker } from '../shards/index.ts';
import type { Store } from '../store/types.ts';
import { shardDataKey, shardMarkerKey, shardRejectsKey } from './layout.ts';
import type { RunPlan } from './run-file.ts';

/**
 * Write a shard and commit it: the accepted pairs' file and the rejects file first, the marker last.
 * `beforeMarker` runs between the two (the worker checks for a stop signal there, and times the writes).
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
  const files = [
    { name: shardDataKey(shard), bytes: encodeShard(accepted, { rowGroupRows: plan.config.output.row_group_rows }), rows: accepted.length },
    { name: shardRejectsKey(shard), bytes: encodeRejects(rejected), rows: rejected.length },
  ];
  await Promise.all(files.map((f) => store.put(f.name, f.bytes)));
  beforeMarker();
  const marker = buildMarker({
    shard,
    runId: plan.run_id,
    codeVersion: plan.code_version,
    files,
    counts: { candidates: records.length, accepted: accepted.length, rejected: rejected.length, ...breakdown(records) },
    timings: { ...timings },
  });
  await store.put(shardMarkerKey(shard), markerJson(marker), { contentType: 'application/json' });
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
    for (const f of marker.files) files.set(f.name, await store.getIfExists(f.name));
    return verifyMarker(marker, files).problems;
  }
  const sizes = new Map<string, number | null>();
  for (const f of marker.files) sizes.set(f.name, (await store.head(f.name))?.size ?? null);
  return verifyMarkerSizes(marker, sizes).problems;
}
