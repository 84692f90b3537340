/** Where each file of a run lives on its store (docs/architecture.md, "Run layout"). */
export const RUN_FILE = 'run.json';
export const PROMPTS_FILE = 'prompts.parquet';
export const MANIFEST_FILE = 'manifest.parquet';
export const STATS_FILE = 'stats.json';
export const CARD_FILE = 'README.md';
/** A derived run's explicit candidate table (`pairgen regenerate`), see src/candidates/table.ts. */
export const CANDIDATES_FILE = 'candidates.parquet';
export const SHARDS_PREFIX = 'shards/';

export function shardName(shard: number): string {
  return `shard-${String(shard).padStart(5, '0')}`;
}
export function shardDataKey(shard: number): string {
  return `${SHARDS_PREFIX}${shardName(shard)}.parquet`;
}
export function shardRejectsKey(shard: number): string {
  return `${SHARDS_PREFIX}${shardName(shard)}.rejects.parquet`;
}
export function shardMarkerKey(shard: number): string {
  return `${SHARDS_PREFIX}${shardName(shard)}.json`;
}
/** The keys of one shard's files: accepted pairs, rejects and the commit marker. */
export function shardKeys(shard: number): { data: string; rejects: string; marker: string } {
  return { data: shardDataKey(shard), rejects: shardRejectsKey(shard), marker: shardMarkerKey(shard) };
}
/** The shard number of a marker key, or null when the key is not a marker. */
export function markerShard(key: string): number | null {
  const m = /^shards\/shard-(\d+)\.json$/.exec(key);
  return m ? Number(m[1]) : null;
}

/** The candidate index range [start, end) of a shard. */
export function shardRange(shard: number, shardSize: number, pairs: number): { start: number; end: number } {
  const start = shard * shardSize;
  return { start, end: Math.min(pairs, start + shardSize) };
}
