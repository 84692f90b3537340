/**
 * GET /api/status: how far a run is, polled by the progress page every few seconds. The counts come from
 * the same shard scan as `pairgen status` (scanShards, failedShards, the shard timings); what this adds is
 * what only a long-lived process can know: the wall-clock rate between polls, hence an ETA, and each
 * committed shard's timings kept from poll to poll (a committed shard's files do not change).
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { readShardTimings } from '../dataset/commit.ts';
import { MANIFEST_FILE, shardMarkerKey } from '../dataset/layout.ts';
import type { RunPlan } from '../dataset/run-file.ts';
import { failedShards, markerTotals, scanShards } from '../dataset/scan.ts';
import type { Store } from '../store/types.ts';

export interface WorkerShard {
  shard: number;
  /** Where the shard's models ran: only the worker's log line says (not its files), so null. */
  device: string | null;
  peak_rss_mb: number | null;
  /** Seconds of worker time the shard took (its stages' sum). */
  seconds: number | null;
  /** When its marker was written (local runs: the marker file's time; s3 listings give none here). */
  committed_at?: string;
}

export interface LiveStatus {
  run_id: string;
  name: string;
  uri: string;
  shards: { total: number; committed: number; failed: number; pending: number; invalid: number };
  candidates: { planned: number; done: number; accepted: number; rejected: number };
  by_category: Record<string, { accepted: number; rejected: number }>;
  rejected_by_reason: Record<string, number>;
  /** Candidates per wall-clock second over the last minutes this server watched; null until it saw two polls apart. */
  pairs_per_s: number | null;
  eta_s: number | null;
  /** As `pairgen status`: candidates per second of worker time, and the worker time still needed. */
  pairs_per_worker_second: number | null;
  eta_worker_seconds: number | null;
  state: 'running' | 'finished' | 'finalized';
  failed: { shard: number; error: string; attempts: number; time: string }[];
  /** The most recently committed shards (at most WORKER_ROWS), newest first. */
  workers: WorkerShard[];
  checked_at: string;
}

/** Shards listed in `workers`: a page shows recent activity, not 10,000 rows every 2 s. */
export const WORKER_ROWS = 100;
/** How far back the wall-clock rate looks. */
const RATE_WINDOW_MS = 120_000;
/** Polls closer together than this share one scan. */
const FRESH_MS = 1000;

export class StatusTracker {
  private readonly perShard = new Map<number, { timings: Record<string, number> | null; committedAt?: string; sha: string }>();
  private readonly seen: { t: number; done: number }[] = [];
  private last: { at: number; status: LiveStatus } | null = null;
  private running: Promise<LiveStatus> | null = null;

  constructor(
    private readonly plan: RunPlan,
    private readonly store: Store,
  ) {}

  /** The status, scanned again unless a scan finished under FRESH_MS ago; concurrent polls share one scan. */
  get(): Promise<LiveStatus> {
    if (this.last && Date.now() - this.last.at < FRESH_MS) return Promise.resolve(this.last.status);
    this.running ??= this.scan().finally(() => (this.running = null));
    return this.running;
  }

  private async scan(): Promise<LiveStatus> {
    const { plan, store } = this;
    const { markers, invalid, failureRecords } = await scanShards(store, plan);
    const failed = await failedShards(store, failureRecords, markers);
    const committed = [...markers.keys()].sort((a, b) => a - b);
    for (const s of this.perShard.keys()) if (!markers.has(s)) this.perShard.delete(s);
    // A shard remade since the last poll has another marker: its timings are read again.
    const fresh = committed.filter((s) => this.perShard.get(s)?.sha !== markerSha(markers.get(s)!));
    const timings = await readShardTimings(store, fresh);
    const local = !/^s3:\/\//i.test(store.uri);
    for (const [k, s] of fresh.entries()) {
      const committedAt = local ? await stat(resolve(store.uri, shardMarkerKey(s))).then((st) => st.mtime.toISOString(), () => undefined) : undefined;
      this.perShard.set(s, { timings: timings[k], committedAt, sha: markerSha(markers.get(s)!) });
    }

    const { done, accepted, rejected, byCategory, byReason } = markerTotals(markers.values());
    let workerSeconds = 0;
    const workers: WorkerShard[] = committed.map((shard) => {
      const { timings: t, committedAt } = this.perShard.get(shard)!;
      const seconds = t ? Object.entries(t).reduce((n, [k, v]) => (k.endsWith('_s') ? n + v : n), 0) : null;
      workerSeconds += seconds ?? 0;
      return { shard, device: null, peak_rss_mb: typeof t?.peak_rss_mb === 'number' ? t.peak_rss_mb : null, seconds, ...(committedAt ? { committed_at: committedAt } : {}) };
    });
    workers.sort((a, b) => (b.committed_at ?? '').localeCompare(a.committed_at ?? '') || b.shard - a.shard);

    const now = Date.now();
    this.seen.push({ t: now, done });
    while (this.seen.length > 2 && now - this.seen[1].t > RATE_WINDOW_MS) this.seen.shift();
    const first = this.seen[0];
    const pending = plan.shards - markers.size;
    const left = plan.pairs - done;
    const rate = pending > 0 && now - first.t >= 1000 ? (done - first.done) / ((now - first.t) / 1000) : null;
    const workerRate = workerSeconds > 0 ? done / workerSeconds : null;
    const finalized = invalid.length === 0 && pending === 0 && (await store.head(MANIFEST_FILE)) !== null;
    const status: LiveStatus = {
      run_id: plan.run_id,
      name: plan.name,
      uri: store.uri,
      shards: { total: plan.shards, committed: markers.size, failed: failed.length, pending: pending - failed.length, invalid: invalid.length },
      candidates: { planned: plan.pairs, done, accepted, rejected },
      by_category: Object.fromEntries(Object.keys(byCategory).sort().map((k) => [k, byCategory[k]])),
      rejected_by_reason: Object.fromEntries(Object.entries(byReason).sort((a, b) => b[1] - a[1])),
      pairs_per_s: rate,
      eta_s: pending === 0 ? 0 : rate ? left / rate : null,
      pairs_per_worker_second: workerRate,
      eta_worker_seconds: workerRate ? left / workerRate : null,
      state: finalized ? 'finalized' : pending === 0 && invalid.length === 0 ? 'finished' : 'running',
      failed: failed.map((f) => ({ shard: f.shard, error: f.error, attempts: f.attempts, time: f.time })),
      workers: workers.slice(0, WORKER_ROWS),
      checked_at: new Date(now).toISOString(),
    };
    this.last = { at: Date.now(), status };
    return status;
  }
}

/** A marker's identity: its files' digests (a remade shard has other files or the same bytes). */
function markerSha(m: { files: { sha256: string }[] }): string {
  return m.files.map((f) => f.sha256).join(',');
}
