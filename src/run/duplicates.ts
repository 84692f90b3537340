/**
 * finalize's near-duplicate pass (runs with the duplicates scorer): every committed row's pair_id,
 * verdict and source dHash, in manifest order, and the mark the rule of scorers/near-duplicates.ts gives
 * each row (the earliest accepted pair, in pair_id order, whose source is within DEFAULT_MAX_DISTANCE bits).
 *
 * A shard's rows are read from its manifest part when its marker lists one (one small file, already in
 * manifest order), else from its data and rejects files (by ranges when large; merged by index), in
 * order, with the next READ_AHEAD shards' files being fetched meanwhile. From THREADED_JOIN_ROWS rows the
 * join runs on worker threads (markRowsOnThreads); the marks do not depend on it.
 *
 * Rows are held as typed arrays, not strings: a pair_id (16 hex digits) is a 64-bit key whose numeric
 * order is its text order, and a dHash is two 32-bit halves. At 10M rows that is about 0.3 GiB where
 * two arrays of strings took over 1 GiB.
 */
import { availableParallelism } from 'node:os';
import { UserError } from '../errors.ts';
import { fileSource, RANGE_READ_BYTES } from '../shards/manifest-group.ts';
import { readColumns, readPairgenMetadata, type ManifestShard, type ParquetSource } from '../shards/index.ts';
import { DEFAULT_MAX_DISTANCE, HashColumns, keyOrder, markRows, markRowsOnThreads } from '../scorers/near-duplicates.ts';
import type { Store } from '../store/types.ts';

const COLUMNS = ['pair_id', 'index', 'accepted', 'duplicates_source_dhash'];
const PAIR_ID = /^[0-9a-f]{16}$/;
/** Shards whose files are being fetched ahead of the one being read (each a part of ~0.1 MB per 1,000 rows). */
const READ_AHEAD = 16;
/** Below this many rows the join stays on this thread (starting threads costs more than it saves). */
const THREADED_JOIN_ROWS = 500_000;

export interface NearDuplicateOptions {
  /** Files above this size are read by ranges (default RANGE_READ_BYTES). */
  rangeReadBytes?: number;
  /** Threads for the join from THREADED_JOIN_ROWS rows (default: one per core). The marks do not depend on it. */
  threads?: number;
}

/** Each manifest row's `duplicate_of`, in manifest row order (shards in order, each shard's rows by index). */
export async function nearDuplicateMarks(store: Store, shards: ManifestShard[], options: NearDuplicateOptions = {}): Promise<(string | null)[]> {
  const rangeReadBytes = options.rangeReadBytes ?? RANGE_READ_BYTES;
  const rows = shards.reduce((a, sh) => a + sh.files.reduce((b, f) => b + f.rows, 0), 0);
  const ids = new HashColumns(rows);
  const hashes = new HashColumns(rows);
  const accepted = new Uint8Array(rows);
  // The shards' files are fetched READ_AHEAD shards ahead, in order, so reading them overlaps the decoding
  // (one GET at a time left the thread idle for a third of the pass on a local folder).
  const fetches: Promise<ParquetSource[]>[] = [];
  // A shard's rows come from its part when it has one (a whole small file), else from its files.
  const filesOf = (shard: ManifestShard) => (shard.part ? [shard.part] : shard.files);
  const fetchShard = (s: number) => {
    const shard = shards[s];
    const fetching = Promise.all(filesOf(shard).map((f) => (shard.part ? store.get(f.name) : fileSource(store, f, rangeReadBytes))));
    fetching.catch(() => undefined); // awaited in turn below; not an unhandled rejection meanwhile
    fetches[s] = fetching;
  };
  for (let s = 0; s < Math.min(READ_AHEAD, shards.length); s++) fetchShard(s);
  let row = 0;
  for (const [s, shard] of shards.entries()) {
    const sources = await fetches[s];
    delete fetches[s];
    if (s + READ_AHEAD < shards.length) fetchShard(s + READ_AHEAD);
    // The shard's columns: its part's, or its files' one after the other, then put in index order.
    const cols: unknown[][] = COLUMNS.map(() => []);
    for (const [i, f] of filesOf(shard).entries()) {
      const { metadata, buffer } = await readPairgenMetadata(sources[i], f.name);
      const names = new Set(metadata.schema.map((s) => s.name));
      if (!names.has('duplicates_source_dhash')) throw new UserError(`${store.uri}/${f.name}: has no duplicates_source_dhash column, though the run enables the duplicates scorer; remake the shard with \`pairgen work --force\``);
      if (Number(metadata.num_rows) !== f.rows) throw new UserError(`${store.uri}/${f.name}: holds ${metadata.num_rows} rows, its shard's marker says ${f.rows}`);
      (await readColumns(buffer, metadata, COLUMNS)).forEach((values, c) => {
        for (const v of values) cols[c].push(v); // not push(...values): a large file would overflow the call's arguments
      });
    }
    const [pairId, index, acc, dhash] = cols;
    const order = pairId.map((_, i) => i);
    if (!shard.part) order.sort((a, b) => Number(index[a]) - Number(index[b])); // the manifest's order within a shard (a part is in it already)
    for (const i of order) {
      const id = String(pairId[i]);
      const hash = (dhash[i] as string | null) ?? null;
      if (!PAIR_ID.test(id) || !ids.set(row, id)) throw new UserError(`${store.uri}: shard ${shard.shard}: pair_id ${JSON.stringify(id)} is not 16 lowercase hex digits`);
      if (hash !== null && !hashes.set(row, hash)) throw new UserError(`duplicates.source_dhash of pair ${JSON.stringify(id)}: expected 16 hex digits, got ${JSON.stringify(hash)}`);
      accepted[row++] = acc[i] === true ? 1 : 0;
    }
  }
  if (row !== rows) throw new Error(`near-duplicate pass: read ${row} rows, the markers say ${rows}`);
  const order = keyOrder(ids);
  for (let i = 1; i < rows; i++) {
    const a = order[i - 1], b = order[i];
    if (ids.hi[a] === ids.hi[b] && ids.lo[a] === ids.lo[b]) throw new UserError(`pair_id ${JSON.stringify(hex(ids, b))} appears twice; near-duplicate marking needs unique pair ids`);
  }
  const input = { order, hashes, accepted };
  const threads = options.threads ?? availableParallelism();
  const markRow = rows >= THREADED_JOIN_ROWS && threads > 1 ? await markRowsOnThreads(input, DEFAULT_MAX_DISTANCE, threads) : markRows(input, DEFAULT_MAX_DISTANCE);
  const marks = new Array<string | null>(rows).fill(null);
  for (let r = 0; r < rows; r++) if (markRow[r] >= 0) marks[r] = hex(ids, markRow[r]);
  return marks;
}

function hex(ids: HashColumns, row: number): string {
  return ids.hi[row].toString(16).padStart(8, '0') + ids.lo[row].toString(16).padStart(8, '0');
}
