/** `pairgen status`: how far a run is, from its shard markers and failure records. */
import { readShardTimings } from '../dataset/commit.ts';
import { MANIFEST_FILE, shardName } from '../dataset/layout.ts';
import { openRun } from '../dataset/run-file.ts';
import { failedShards, markerTotals, scanShards, type FailedShard } from '../dataset/scan.ts';

export interface RunStatus {
  uri: string;
  name: string;
  run_id: string;
  shards: { total: number; committed: number; pending: number; invalid: number[]; failed: FailedShard[] };
  pairs: { planned: number; done: number; accepted: number; rejected: number; acceptance: number | null };
  by_category: Record<string, { accepted: number; rejected: number; acceptance: number | null }>;
  rejected_by_reason: Record<string, number>;
  /** Candidate pairs per second of worker time (sum of stage seconds over committed shards). */
  pairs_per_worker_second: number | null;
  /** Seconds of worker time still needed at that rate (divide by the number of workers). */
  eta_worker_seconds: number | null;
  /** The highest peak resident memory (MB) a worker process reported for one of its shards; null: none recorded. */
  peak_rss_mb: number | null;
  finalized: boolean;
}

export async function runStatus(runUri: string, options: { verify?: boolean } = {}): Promise<RunStatus> {
  const { plan, store } = await openRun(runUri);
  const { markers, invalid, failureRecords } = await scanShards(store, plan, options.verify);
  const failed = await failedShards(store, failureRecords, markers);
  let seconds = 0;
  const timings = await readShardTimings(store, [...markers.keys()].sort((a, b) => a - b));
  let peakRss: number | null = null;
  for (const t of timings) {
    for (const [k, v] of Object.entries(t ?? {})) if (k.endsWith('_s')) seconds += v;
    if (typeof t?.peak_rss_mb === 'number') peakRss = Math.max(peakRss ?? 0, t.peak_rss_mb);
  }
  const { done, accepted, rejected, byReason, byCategory: counts } = markerTotals(markers.values());
  const byCategory: RunStatus['by_category'] = {};
  for (const [c, t] of Object.entries(counts)) byCategory[c] = { ...t, acceptance: ratio(t.accepted, t.accepted + t.rejected) };
  const rate = seconds > 0 ? done / seconds : null;
  return {
    uri: store.uri,
    name: plan.name,
    run_id: plan.run_id,
    shards: { total: plan.shards, committed: markers.size, pending: plan.shards - markers.size, invalid, failed },
    pairs: { planned: plan.pairs, done, accepted, rejected, acceptance: ratio(accepted, done) },
    by_category: Object.fromEntries(Object.keys(byCategory).sort().map((k) => [k, byCategory[k]])),
    rejected_by_reason: Object.fromEntries(Object.entries(byReason).sort((a, b) => b[1] - a[1])),
    pairs_per_worker_second: rate,
    eta_worker_seconds: rate ? (plan.pairs - done) / rate : null,
    peak_rss_mb: peakRss,
    // A manifest over shards that no longer match their markers (or are missing) is not a finished dataset.
    finalized: invalid.length === 0 && markers.size === plan.shards && (await store.head(MANIFEST_FILE)) !== null,
  };
}

function ratio(a: number, b: number): number | null {
  return b > 0 ? a / b : null;
}

const pct = (x: number | null) => (x === null ? '—' : `${(100 * x).toFixed(1)}%`);

export function formatStatus(s: RunStatus): string {
  const lines = [
    `run ${s.name} (${s.run_id}) at ${s.uri}`,
    `shards: ${s.shards.committed}/${s.shards.total} committed, ${s.shards.pending} pending${s.shards.invalid.length ? `, ${s.shards.invalid.length} with a marker that does not match its files (${s.shards.invalid.slice(0, 10).join(', ')}${s.shards.invalid.length > 10 ? ', ...' : ''})` : ''}`,
    `pairs: ${s.pairs.done}/${s.pairs.planned} candidates done, ${s.pairs.accepted} accepted, ${s.pairs.rejected} rejected (acceptance ${pct(s.pairs.acceptance)})`,
  ];
  if (s.shards.failed.length) {
    lines.push(`failed: ${s.shards.failed.length} pending shards whose last attempt failed (\`pairgen work --retry-failed\` tries them again):`);
    for (const f of s.shards.failed.slice(0, 10)) lines.push(`  ${shardName(f.shard)}  ${f.attempts} attempt${f.attempts === 1 ? '' : 's'}, last ${f.time}: ${f.error.length > 160 ? f.error.slice(0, 157) + '...' : f.error}`);
    if (s.shards.failed.length > 10) lines.push(`  ... and ${s.shards.failed.length - 10} more (\`pairgen status --json\` lists them all)`);
  }
  const cats = Object.entries(s.by_category);
  if (cats.length) {
    lines.push('by category:');
    const width = Math.max(...cats.map(([c]) => c.length));
    for (const [cat, c] of cats) lines.push(`  ${cat.padEnd(width)}  ${String(c.accepted).padStart(7)} accepted  ${String(c.rejected).padStart(7)} rejected  ${pct(c.acceptance).padStart(6)}`);
  }
  const reasons = Object.entries(s.rejected_by_reason);
  if (reasons.length) lines.push(`rejected because: ${reasons.map(([r, n]) => `${r} ${n}`).join(', ')}`);
  if (s.pairs_per_worker_second !== null) {
    lines.push(`rate: ${s.pairs_per_worker_second.toFixed(2)} pairs per worker-second; ETA ${formatSeconds(s.eta_worker_seconds ?? 0)} of worker time (divide by your worker count)`);
  }
  if (s.peak_rss_mb !== null) lines.push(`memory: peak ${(s.peak_rss_mb / 1024).toFixed(2)} GB resident in one worker process (the highest over committed shards)`);
  lines.push(
    s.finalized ? 'finalized: manifest.parquet, stats.json and README.md are written'
      : s.shards.invalid.length ? 'not finalized: some shards do not match their markers; `pairgen work` remakes them, then `pairgen finalize`'
      : s.shards.pending === 0 ? 'all shards committed (sizes checked; `status --verify` checks sha256): run `pairgen finalize`' : 'not finalized',
  );
  return lines.join('\n') + '\n';
}

function formatSeconds(t: number): string {
  if (t < 120) return `${t.toFixed(0)} s`;
  if (t < 7200) return `${(t / 60).toFixed(1)} min`;
  return `${(t / 3600).toFixed(1)} h`;
}
