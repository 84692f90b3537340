import type { ManifestRow } from './record.ts';

/** Identity-similarity histogram: fixed bins of 0.05 over the cosine range [-1, 1] (40 bins, 1.0 goes in the last). */
export const HISTOGRAM_MIN = -1;
export const HISTOGRAM_BIN_WIDTH = 0.05;
export const HISTOGRAM_BINS = 40;

export type StatsRow = Pick<ManifestRow, 'category' | 'accepted' | 'reject_reason' | 'identity_similarity'>;

export interface Histogram {
  counts: number[];
  /** Candidates without a score (no usable face in one of the images). */
  no_score: number;
  mean: number | null;
  min: number | null;
  max: number | null;
}

export interface GroupStats {
  candidates: number;
  accepted: number;
  rejected: number;
  acceptance_rate: number;
  reject_reasons: Record<string, number>;
  identity_similarity: Histogram;
}

export interface DatasetStats extends GroupStats {
  shards: number;
  by_category: Record<string, GroupStats>;
  histogram_bin_edges: number[];
  /** Sum over the committed shards of seconds spent per stage (markers/shard-NNNNN.timings.json). */
  timings_seconds: Record<string, number>;
  /** The highest peak resident memory (MB) a worker reported for a committed shard, when recorded. */
  worker_peak_rss_mb?: number;
}

class Group {
  candidates = 0;
  accepted = 0;
  reasons = new Map<string, number>();
  counts: number[] = new Array(HISTOGRAM_BINS).fill(0);
  noScore = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;

  add(row: StatsRow): void {
    this.candidates++;
    if (row.accepted) this.accepted++;
    else {
      const reason = row.reject_reason ?? 'unspecified';
      this.reasons.set(reason, (this.reasons.get(reason) ?? 0) + 1);
    }
    const s = row.identity_similarity;
    if (s === null || !Number.isFinite(s)) {
      this.noScore++;
      return;
    }
    const bin = Math.min(HISTOGRAM_BINS - 1, Math.max(0, Math.floor((s - HISTOGRAM_MIN) / HISTOGRAM_BIN_WIDTH + 1e-9)));
    this.counts[bin]++;
    this.sum += s;
    this.min = Math.min(this.min, s);
    this.max = Math.max(this.max, s);
  }

  result(): GroupStats {
    const scored = this.candidates - this.noScore;
    return {
      candidates: this.candidates,
      accepted: this.accepted,
      rejected: this.candidates - this.accepted,
      acceptance_rate: this.candidates ? this.accepted / this.candidates : 0,
      reject_reasons: sortedObject(this.reasons),
      identity_similarity: {
        counts: [...this.counts],
        no_score: this.noScore,
        mean: scored ? this.sum / scored : null,
        min: scored ? this.min : null,
        max: scored ? this.max : null,
      },
    };
  }
}

function sortedObject<T>(m: Map<string, T>): Record<string, T> {
  return Object.fromEntries([...m.keys()].sort().map((k) => [k, m.get(k) as T]));
}

/** Streaming stats for stats.json: add every manifest row and every committed shard, then result(). */
export class StatsAccumulator {
  private all = new Group();
  private categories = new Map<string, Group>();
  private timings = new Map<string, number>();
  private peakRssMb: number | null = null;
  private shards = 0;

  add(row: StatsRow): void {
    this.all.add(row);
    let g = this.categories.get(row.category);
    if (!g) this.categories.set(row.category, (g = new Group()));
    g.add(row);
  }

  /** One committed shard, with the seconds per stage of its last commit when they were recorded. */
  addShard(timings: Record<string, number> | null = null): void {
    this.shards++;
    for (const [k, v] of Object.entries(timings ?? {})) {
      // Seconds per stage add up; the timings file also carries the worker's peak memory, which does not.
      if (k === 'peak_rss_mb') this.peakRssMb = Math.max(this.peakRssMb ?? 0, v);
      else this.timings.set(k, (this.timings.get(k) ?? 0) + v);
    }
  }

  result(): DatasetStats {
    return {
      ...this.all.result(),
      shards: this.shards,
      by_category: Object.fromEntries([...this.categories.keys()].sort().map((k) => [k, this.categories.get(k)!.result()])),
      histogram_bin_edges: Array.from({ length: HISTOGRAM_BINS + 1 }, (_, i) => Math.round((HISTOGRAM_MIN + i * HISTOGRAM_BIN_WIDTH) * 100) / 100),
      timings_seconds: sortedObject(this.timings),
      ...(this.peakRssMb === null ? {} : { worker_peak_rss_mb: this.peakRssMb }),
    };
  }
}

/** Stats over rows (and optionally the shards' timings) in one call. */
export async function computeStats(
  rows: AsyncIterable<StatsRow> | Iterable<StatsRow>,
  shardTimings: Iterable<Record<string, number> | null> = [],
): Promise<DatasetStats> {
  const acc = new StatsAccumulator();
  for await (const row of rows) acc.add(row);
  for (const t of shardTimings) acc.addShard(t);
  return acc.result();
}
