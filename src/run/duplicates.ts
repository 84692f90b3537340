/**
 * finalize's near-duplicate pass (runs with the duplicates scorer): every committed row's pair_id,
 * verdict and source dHash, in manifest order, and the mark findNearDuplicates gives each row (the
 * earliest accepted pair, in pair_id order, whose source is within DEFAULT_MAX_DISTANCE bits).
 */
import { parquetRead } from 'hyparquet';
import { UserError } from '../errors.ts';
import { fileSource, RANGE_READ_BYTES } from '../shards/manifest-group.ts';
import { readPairgenMetadata, type ManifestShard } from '../shards/index.ts';
import { DEFAULT_MAX_DISTANCE, findNearDuplicates } from '../scorers/near-duplicates.ts';
import type { Store } from '../store/types.ts';

const COLUMNS = ['pair_id', 'index', 'accepted', 'duplicates_source_dhash'] as const;

/** Each manifest row's `duplicate_of`, in manifest row order (shards in order, each shard's rows by index). */
export async function nearDuplicateMarks(store: Store, shards: ManifestShard[], rangeReadBytes = RANGE_READ_BYTES): Promise<(string | null)[]> {
  const pairIds: string[] = [];
  const dhashes: (string | null)[] = [];
  const accepted: boolean[] = [];
  for (const shard of shards) {
    const rows: { index: number; pairId: string; dhash: string | null; accepted: boolean }[] = [];
    for (const f of shard.files) {
      const { metadata, buffer } = await readPairgenMetadata(await fileSource(store, f, rangeReadBytes), f.name);
      const names = new Set(metadata.schema.map((s) => s.name));
      if (!names.has('duplicates_source_dhash')) throw new UserError(`${store.uri}/${f.name}: has no duplicates_source_dhash column, though the run enables the duplicates scorer; remake the shard with \`pairgen work --force\``);
      const cols: Record<string, unknown[]> = {};
      await parquetRead({ file: buffer, metadata, columns: [...COLUMNS], onChunk: ({ columnName, columnData, rowStart }) => {
        const out = (cols[columnName] ??= []);
        for (let i = 0; i < columnData.length; i++) out[rowStart + i] = columnData[i];
      } });
      const n = Number(metadata.num_rows);
      for (let i = 0; i < n; i++) {
        rows.push({ index: Number(cols.index[i]), pairId: String(cols.pair_id[i]), dhash: (cols.duplicates_source_dhash[i] as string | null) ?? null, accepted: cols.accepted[i] === true });
      }
    }
    rows.sort((a, b) => a.index - b.index); // the manifest's order within a shard
    for (const r of rows) {
      pairIds.push(r.pairId);
      dhashes.push(r.dhash);
      accepted.push(r.accepted);
    }
  }
  return findNearDuplicates({ pairIds, dhashes, accepted }, DEFAULT_MAX_DISTANCE);
}
