/**
 * Where each file of a run lives on its store (docs/architecture.md, "Run layout"). Layout 2 puts the
 * accepted pairs where generic readers look for a dataset's data and nothing else there:
 *   data/<split>-NNNNN-of-MMMMM.parquet   accepted pairs of shard NNNNN in <split> (Hugging Face's file naming)
 *   rejects/shard-NNNNN.parquet           rejected candidates, scores only
 *   markers/shard-NNNNN.json              the commit marker (markers/ also holds failure records and timings)
 *   manifest-parts/shard-NNNNN.parquet    the shard's manifest rows, encoded (finalize merges them)
 */
import { SPLIT_NAMES, type SplitName } from './splits.ts';

export const LAYOUT_VERSION = 2;
export const RUN_FILE = 'run.json';
export const PROMPTS_FILE = 'prompts.parquet';
export const MANIFEST_FILE = 'manifest.parquet';
export const STATS_FILE = 'stats.json';
export const CARD_FILE = 'README.md';
/** sha256 of every data and rejects file, in `sha256sum -c` format (finalize). */
export const CHECKSUMS_FILE = 'checksums.sha256';
/** A derived run's explicit candidate table (`pairgen regenerate`), see src/candidates/table.ts. */
export const CANDIDATES_FILE = 'candidates.parquet';
export const DATA_PREFIX = 'data/';
export const REJECTS_PREFIX = 'rejects/';
export const MARKERS_PREFIX = 'markers/';
export const MANIFEST_PARTS_PREFIX = 'manifest-parts/';

export function shardName(shard: number): string {
  return `shard-${String(shard).padStart(5, '0')}`;
}
/** The accepted pairs of `shard` that fall in `split`; `shards` is the run's shard count. */
export function shardDataKey(shard: number, split: SplitName, shards: number): string {
  const width = Math.max(5, String(shards).length);
  return `${DATA_PREFIX}${split}-${String(shard).padStart(width, '0')}-of-${String(shards).padStart(width, '0')}.parquet`;
}
export function shardRejectsKey(shard: number): string {
  return `${REJECTS_PREFIX}${shardName(shard)}.parquet`;
}
/** The shard's manifest part: its manifest rows already encoded, for finalize (shards/manifest-merge.ts). */
export function shardManifestPartKey(shard: number): string {
  return `${MANIFEST_PARTS_PREFIX}${shardName(shard)}.parquet`;
}
export function shardMarkerKey(shard: number): string {
  return `${MARKERS_PREFIX}${shardName(shard)}.json`;
}
/** Seconds per stage of the shard's last commit: kept out of the marker so that racing workers write identical markers. */
export function shardTimingsKey(shard: number): string {
  return `${MARKERS_PREFIX}${shardName(shard)}.timings.json`;
}
export function failureKey(shard: number): string {
  return `${MARKERS_PREFIX}${shardName(shard)}.failed.json`;
}
/** The keys of one shard's files: a data file per split, the rejects file and the commit marker. */
export function shardKeys(shard: number, shards: number): { data: Record<SplitName, string>; rejects: string; marker: string } {
  const data = Object.fromEntries(SPLIT_NAMES.map((s) => [s, shardDataKey(shard, s, shards)])) as Record<SplitName, string>;
  return { data, rejects: shardRejectsKey(shard), marker: shardMarkerKey(shard) };
}
/** The shard number of a marker key, or null when the key is not a marker. */
export function markerShard(key: string): number | null {
  const m = /^markers\/shard-(\d+)\.json$/.exec(key);
  return m ? Number(m[1]) : null;
}
/** The shard number of a failure record key, or null when the key is not one. */
export function failureShard(key: string): number | null {
  const m = /^markers\/shard-(\d+)\.failed\.json$/.exec(key);
  return m ? Number(m[1]) : null;
}
/** Whether a key is an accepted-pairs data file (as listed in a marker). */
export function isDataKey(key: string): boolean {
  return key.startsWith(DATA_PREFIX);
}
/** The glob of one split's data files, relative to the run root (the dataset card's `configs`). */
export function splitGlob(split: SplitName): string {
  return `${DATA_PREFIX}${split}-*`;
}

/** The candidate index range [start, end) of a shard. */
export function shardRange(shard: number, shardSize: number, pairs: number): { start: number; end: number } {
  const start = shard * shardSize;
  return { start, end: Math.min(pairs, start + shardSize) };
}
