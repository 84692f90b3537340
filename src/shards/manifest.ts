import { availableParallelism } from 'node:os';
import type { Writable } from 'node:stream';
import type { Worker } from 'node:worker_threads';
import { ByteWriter } from 'hyparquet-writer';
import { UserError } from '../errors.ts';
import type { StorageConfig } from '../store/index.ts';
import type { Store } from '../store/types.ts';
import { startTsWorker } from '../util/worker.ts';
import { fileSource, RANGE_READ_BYTES, type EncodedGroup, type GroupStatsColumns, type GroupTask, type ManifestShard } from './manifest-group.ts';
import { mergeManifestGroup } from './manifest-merge.ts';
import type { WorkerReply } from './manifest-worker.ts';
import { parquetWriter, streamRows, writeToSink } from './parquet.ts';
import { runSchemas, type ManifestRow } from './record.ts';
import type { ScorerName } from '../scorers/config.ts';
import { placeRowGroup, SerializedPageIndexes } from '../util/parquet-groups.ts';

export type { GroupStatsColumns, ManifestShard };

/**
 * Rows per manifest row group (writeManifest), and the most finalize puts in one (whole shards, at least
 * one): no image bytes, so ~50k rows is a few tens of MB in memory.
 */
export const MANIFEST_ROW_GROUP_ROWS = 50_000;

/**
 * Write manifest.parquet to `sink`: one row per candidate (accepted and rejected) across all shards,
 * every column but the image bytes, plus `file` / `file_row`. Rows are pulled one row group at a time,
 * so memory stays bounded whatever the row count. Ends the sink when done.
 *
 * With a Store: `const pass = new PassThrough(); const up = store.putStream('manifest.parquet', pass);
 * await writeManifest(pass, rows); await up;`
 */
export async function writeManifest(
  sink: Writable,
  rows: AsyncIterable<ManifestRow> | Iterable<ManifestRow>,
  opts: { rowGroupRows?: number; scorers?: ScorerName[] } = {},
): Promise<void> {
  await endSinkAfter(sink, () => streamRows(sink, rows, { schema: runSchemas(opts.scorers).manifest, kind: 'manifest', rowGroupRows: opts.rowGroupRows ?? MANIFEST_ROW_GROUP_ROWS }));
}

export interface ShardManifestOptions {
  /** The committed shards in shard order, each with its files (name, size, rows) from its marker. */
  shards: ManifestShard[];
  /** The run's scorers (their score columns follow the fixed ones); default none. */
  scorers?: ScorerName[];
  /** Score columns to hand to onGroup (GroupStatsColumns.scores), e.g. those the run's rules read. */
  statsScores?: string[];
  /** With the duplicates scorer: every row's `duplicate_of` mark, in manifest row order. */
  duplicateOf?: (string | null)[];
  /** The store the files are read from, and what opens it again inside a worker thread. */
  store: Store;
  storeUri: string;
  storage?: Partial<StorageConfig>;
  /** Files above this size are read by ranges (footer and metadata column chunks only). */
  rangeReadBytes?: number;
  /** Worker threads encoding row groups (default: one per core); 1 encodes on this thread. The bytes do not depend on it. */
  threads?: number;
  /** Each worker thread's V8 old-generation cap in MiB (default WORKER_HEAP_MIB); a group that outgrows it is redone on this thread. */
  workerHeapMib?: number;
  rowGroupRows?: number;
  /** Called with each row group's stats columns, in row order. */
  onGroup?: (stats: GroupStatsColumns) => void;
}

/**
 * Write manifest.parquet from the committed shards: the shards' rows in candidate order (each shard's
 * files merged by index), in row groups of whole shards, each merged from the shards' manifest parts
 * (manifest-merge.ts; a shard without one has it made from its files) on worker threads and placed in
 * order here. At most threads + 1 groups are in memory. The bytes depend on the shards alone, not on the
 * threads or on whether parts were stored. Ends the sink when done, destroys it on error. Returns the
 * number of rows.
 */
export async function writeManifestFromShards(sink: Writable, o: ShardManifestOptions): Promise<number> {
  const tasks = planGroups(o.shards, o.rowGroupRows ?? MANIFEST_ROW_GROUP_ROWS, o.scorers ?? [], o.statsScores ?? []);
  if (o.duplicateOf) {
    let at = 0;
    for (const t of tasks) t.duplicateOf = o.duplicateOf.slice(at, (at += t.rows));
  }
  const rangeReadBytes = o.rangeReadBytes ?? RANGE_READ_BYTES;
  const threads = Math.max(1, Math.min(o.threads ?? availableParallelism(), tasks.length));
  const pool = threads > 1 ? new GroupPool(threads, o.workerHeapMib ?? WORKER_HEAP_MIB, { storeUri: o.storeUri, storage: o.storage ?? {}, rangeReadBytes }) : null;
  const here = (t: GroupTask) => mergeManifestGroup(t, (name) => o.store.get(name), (f) => fileSource(o.store, f, rangeReadBytes));
  const encode = (t: GroupTask) => (pool ? pool.encode(t).catch((e) => (outOfMemory(e) ? here(t) : Promise.reject(e))) : here(t));
  let rows = 0;
  try {
    await endSinkAfter(sink, async () => {
      const out = new SinkWriter(sink);
      const pq = parquetWriter(out, runSchemas(o.scorers).manifest, 'manifest');
      const indexes = new SerializedPageIndexes();
      const inFlight: Promise<EncodedGroup>[] = [];
      let next = 0;
      for (let g = 0; g < tasks.length; g++) {
        while (next < tasks.length && next < g + threads + 1) {
          const p = encode(tasks[next++]);
          p.catch(() => {}); // handled when its turn comes
          inFlight.push(p);
        }
        const group = await inFlight.shift()!;
        placeRowGroup(pq, group, out);
        indexes.take(pq);
        rows += group.rows;
        o.onGroup?.(group.stats);
        await out.flush();
      }
      await indexes.finish(pq);
    });
  } finally {
    await pool?.close();
  }
  return rows;
}

/**
 * A worker's heap cap. V8 grows a heap lazily to several times what is live: uncapped, two encoding
 * threads passed 1.3 GiB RSS early in the 10M-row bench (bench/bookkeeping.ts), though a 50,000-row
 * group of the bench's rows needs under 128 MiB live. With the cap each worker collects sooner; a worker
 * that still runs out (rows far larger than usual) is not an error: its group, and every later one, is
 * encoded on this thread instead, uncapped.
 */
export const WORKER_HEAP_MIB = 256;

function outOfMemory(e: unknown): boolean {
  return (e as { code?: string })?.code === 'ERR_WORKER_OUT_OF_MEMORY';
}

/** Row groups of whole shards in order, each as many as fit in `rowGroupRows` rows (at least one); shards without rows join a group. */
function planGroups(shards: ManifestShard[], rowGroupRows: number, scorers: ScorerName[], statsScores: string[]): GroupTask[] {
  const tasks: GroupTask[] = [];
  let group: ManifestShard[] = [];
  let rows = 0;
  for (const shard of shards) {
    const n = shard.files.reduce((a, f) => a + f.rows, 0);
    if (rows > 0 && rows + n > rowGroupRows) {
      tasks.push({ shards: group, rows, scorers, statsScores });
      group = [];
      rows = 0;
    }
    group.push(shard);
    rows += n;
  }
  if (rows > 0) tasks.push({ shards: group, rows, scorers, statsScores });
  return tasks;
}

/** A ByteWriter whose flush hands what it holds to a Node stream, with backpressure. */
class SinkWriter extends ByteWriter {
  constructor(private readonly sink: Writable) {
    super(1 << 20);
  }
  flush(): Promise<void> {
    if (this.index === 0) return Promise.resolve();
    const chunk = new Uint8Array(this.buffer.slice(0, this.index));
    this.index = 0;
    return writeToSink(this.sink, chunk);
  }
  finish(): Promise<void> {
    return this.flush();
  }
}

/** Worker threads that read and encode row groups, one group per thread at a time. */
class GroupPool {
  private readonly workers: Worker[];
  private readonly idle: Worker[];
  private readonly queue: { task: GroupTask; resolve: (g: EncodedGroup) => void; reject: (e: Error) => void }[] = [];
  private readonly running = new Map<number, { worker: Worker; resolve: (g: EncodedGroup) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private failed: Error | null = null;

  constructor(threads: number, heapMib: number, data: Record<string, unknown>) {
    const options = { resourceLimits: { maxOldGenerationSizeMb: heapMib } };
    this.workers = Array.from({ length: threads }, () => startTsWorker(new URL('./manifest-worker.ts', import.meta.url), data, options));
    this.idle = [...this.workers];
    for (const w of this.workers) {
      w.on('message', (reply: WorkerReply) => this.settle(w, reply));
      w.on('error', (e) => this.fail(e));
      w.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`manifest encoding thread exited with code ${code}`));
      });
    }
  }

  encode(task: GroupTask): Promise<EncodedGroup> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.queue.push({ task, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.idle.length && this.queue.length) {
      const worker = this.idle.pop()!;
      const { task, resolve, reject } = this.queue.shift()!;
      const id = this.nextId++;
      this.running.set(id, { worker, resolve, reject });
      worker.postMessage({ id, task });
    }
  }

  private settle(worker: Worker, reply: WorkerReply): void {
    const job = this.running.get(reply.id);
    if (!job) return;
    this.running.delete(reply.id);
    this.idle.push(worker);
    if ('error' in reply) {
      const { user, message, stack } = reply.error;
      const e = user ? new UserError(message) : new Error(message);
      if (!user && stack) e.stack = stack;
      job.reject(e);
    } else job.resolve(reply.group);
    this.dispatch();
  }

  private fail(e: Error): void {
    if (this.failed) return;
    this.failed = e;
    for (const job of [...this.running.values(), ...this.queue]) job.reject(e);
    this.running.clear();
    this.queue.length = 0;
  }

  async close(): Promise<void> {
    this.failed ??= new Error('manifest encoding threads closed');
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** Run `write`, then end the sink; on error destroy it instead (so an atomic upload publishes nothing). */
async function endSinkAfter(sink: Writable, write: () => Promise<unknown>): Promise<void> {
  try {
    await write();
  } catch (e) {
    sink.destroy(e as Error);
    throw e;
  }
  await new Promise<void>((resolve, reject) => {
    sink.once('error', reject);
    sink.end(() => resolve());
  });
}
