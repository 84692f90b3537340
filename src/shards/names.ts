/** Keys of one shard's files, relative to the run root (5-digit numbers; more digits past 99999). */
export function shardFileNames(shard: number): { data: string; rejects: string; marker: string } {
  if (!Number.isInteger(shard) || shard < 0) throw new Error(`shard number must be a non-negative integer, got ${shard}`);
  const n = String(shard).padStart(5, '0');
  return { data: `shards/shard-${n}.parquet`, rejects: `shards/shard-${n}.rejects.parquet`, marker: `shards/shard-${n}.json` };
}
