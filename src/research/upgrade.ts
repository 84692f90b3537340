import { parquetReadObjects } from 'hyparquet';
import { UserError } from '../errors.ts';
import { isCommitted, writeShard } from '../dataset/commit.ts';
import { CANDIDATES_FILE, PROMPTS_FILE, RUN_FILE, shardName } from '../dataset/layout.ts';
import { RUN_FORMAT, type RunPlan } from '../dataset/run-file.ts';
import { checkSplits, splitOf } from '../dataset/splits.ts';
import { finalizeRun } from '../run/finalize.ts';
import { pairSchema, readPairgenMetadata, recordValue, sha256Hex, type PairRecord } from '../shards/index.ts';
import { openStore } from '../store/index.ts';
import type { Store } from '../store/types.ts';
import { log } from '../util/log.ts';
import { deriveConfig, writeDerivedRun } from './derive.ts';

/** The run.json format of layout 1: pairs under shards/shard-NNNNN.parquet (pairgen before layout 2). */
const LAYOUT_1_FORMAT = 'pairgen-run/1';

export interface UpgradeResult {
  uri: string;
  /** Shards copied into the new layout now. */
  upgraded: number;
  /** Shards the new run already had (a resumed upgrade). */
  skipped: number;
  /** Shards not committed in the old run: pending in the new one, for `pairgen work`. */
  pending: number[];
  /** Whether the new run was complete and so finalized. */
  finalized: boolean;
}

/**
 * `pairgen upgrade <old-run> --out <new>`: a run written in layout 1 (run.json format pairgen-run/1,
 * shards/shard-NNNNN.parquet, .rejects.parquet and .json markers) copied into layout 2. The rows and
 * their image bytes are kept as they are; each row gets its split (the same hash of pair_id and the
 * run's fractions that layout 1 applied in its manifest) and the new run's id. Old shards that are not
 * committed (no marker, or files that do not match it) are left pending for `pairgen work` on the new
 * run. A complete run is finalized. The old run is only read. Resumable: shards already in the new run
 * are skipped.
 */
export async function upgradeRun(oldUri: string, outUri: string): Promise<UpgradeResult> {
  const oldStore = openStore(oldUri);
  const text = await oldStore.getIfExists(RUN_FILE);
  if (!text) throw new UserError(`${oldStore.uri}: no run here (no ${RUN_FILE})`);
  let old: RunPlan;
  try {
    old = JSON.parse(Buffer.from(text).toString('utf8'));
  } catch (e) {
    throw new UserError(`${oldStore.uri}/${RUN_FILE}: not valid JSON (${(e as Error).message})`);
  }
  if ((old.format as string) === RUN_FORMAT) throw new UserError(`${oldStore.uri}: already a ${RUN_FORMAT} run; nothing to upgrade`);
  if ((old.format as string) !== LAYOUT_1_FORMAT) throw new UserError(`${oldStore.uri}/${RUN_FILE}: format "${old.format}" is not ${LAYOUT_1_FORMAT}, the layout this verb upgrades`);

  // The config through today's schema: keys added since get their defaults; output.row_group_rows
  // (a fixed row count per group) became output.row_group_bytes.
  const { row_group_rows: _rows, ...output } = (old.config.output ?? {}) as RunPlan['config']['output'] & { row_group_rows?: number };
  const config = deriveConfig({ ...old, config: { ...old.config, output } }, oldStore.uri, []);
  const plan: RunPlan = { ...old, config, format: RUN_FORMAT, run_id: '' };
  const extra = plan.candidates ? [{ key: CANDIDATES_FILE, bytes: await oldStore.get(CANDIDATES_FILE) }] : [];
  if (!(await oldStore.head(PROMPTS_FILE))) throw new UserError(`${oldStore.uri}/${PROMPTS_FILE} is missing; the old run cannot be upgraded without its prompt table`);
  const { store } = await writeDerivedRun(plan, oldStore, outUri, { files: extra }); // sets plan.run_id
  const fractions = checkSplits(plan.splits, `${oldStore.uri}/${RUN_FILE}: splits`);

  const result: UpgradeResult = { uri: store.uri, upgraded: 0, skipped: 0, pending: [], finalized: false };
  for (let shard = 0; shard < plan.shards; shard++) {
    if (await isCommitted(store, shard)) {
      result.skipped++;
      continue;
    }
    const records = await layout1Shard(oldStore, shard);
    if (!records) {
      result.pending.push(shard);
      continue;
    }
    for (const r of records) {
      r.split = splitOf(r.pair_id, fractions);
      r.run_id = plan.run_id;
    }
    await writeShard(store, plan, shard, records, {});
    result.upgraded++;
  }
  if (result.pending.length === 0) {
    await finalizeRun(store.uri, { preview: false });
    result.finalized = true;
  }
  return result;
}

/** The records of a committed layout-1 shard, images included; null when it is not committed. */
async function layout1Shard(store: Store, shard: number): Promise<PairRecord[] | null> {
  const markerKey = `shards/${shardName(shard)}.json`;
  const markerBytes = await store.getIfExists(markerKey);
  if (!markerBytes) return null;
  let files: { name: string; size: number; sha256: string }[];
  try {
    files = JSON.parse(Buffer.from(markerBytes).toString('utf8')).files;
    if (!Array.isArray(files)) throw new Error('no files list');
  } catch (e) {
    log.warn(`${store.uri}/${markerKey}: unreadable marker (${(e as Error).message}); the shard stays pending`);
    return null;
  }
  const records: PairRecord[] = [];
  for (const f of files) {
    const bytes = await store.getIfExists(f.name);
    if (!bytes || bytes.length !== f.size || sha256Hex(bytes) !== f.sha256) {
      log.warn(`${store.uri}/${f.name}: missing or does not match its marker; ${shardName(shard)} stays pending`);
      return null;
    }
    const { metadata, buffer } = await readPairgenMetadata(bytes, `${store.uri}/${f.name}`);
    const present = new Set(metadata.schema.map((s) => s.name));
    // utf8: false keeps image bytes binary; the utf8-annotated columns still come back as strings.
    const rows = await parquetReadObjects({ file: buffer, metadata, utf8: false });
    for (const raw of rows) {
      const record: Record<string, unknown> = { source_image: null, edited_image: null };
      for (const field of pairSchema.fields) if (present.has(field.name)) record[field.name] = recordValue(field, raw[field.name]);
      records.push(record as unknown as PairRecord);
    }
  }
  return records.sort((a, b) => a.index - b.index);
}
