/**
 * The prompt table on disk: one Parquet file (hyparquet-writer), eval rows first, then train rows,
 * written row group by row group while the expansion streams (the groups encoded on worker threads,
 * encoder.ts and row-group.ts), hashed as it is written, and moved into place only when complete.
 * Readers fetch only the row groups covering the range they ask for.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { availableParallelism } from 'node:os';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, type AsyncBuffer, type FileMetaData } from 'hyparquet';
import { UserError } from '../errors.ts';
import { checkExpandOptions, Expansion, type ExpandOptions, type PromptRow } from './expand.ts';
import type { PromptSet } from './grammar.ts';
import { RowGroupEncoder } from './encoder.ts';
import { placeRowGroup, type EncodedRowGroup } from '../util/parquet-groups.ts';
import { COMPRESSORS, CREATED_BY, SCHEMA } from './row-group.ts';

/**
 * Rows per Parquet row group. Small groups keep the writer's peak memory low (200k rows: 425 MiB peak RSS
 * with 50k-row groups, 177 MiB with 10k) and let a worker fetch little more than its range; the cost is
 * a larger footer (~0.9 KB per group).
 */
export const ROW_GROUP_ROWS = 10_000;
const META_PREFIX = 'pairgen.prompts.';
/** Below this many rows, starting encoder threads costs more than it saves. */
const THREADED_FROM_ROWS = 4 * ROW_GROUP_ROWS;

export interface PromptTableSummary {
  /** All rows written, eval included. */
  rows: number;
  /** Train rows per category, in the prompt set's category order. */
  perCategory: Record<string, number>;
  evalRows: number;
  /** sha256 (hex) of the written file. */
  sha256: string;
}

export interface WriteOptions extends ExpandOptions {
  /** Called after each row group with the number of rows written so far. */
  onProgress?: (rows: number) => void;
  /**
   * Threads encoding row groups while the main thread expands (0: encode inline). Default: one per core
   * beyond the first, at least 1, at most 3; inline for small tables. The bytes do not depend on it.
   */
  encodeThreads?: number;
}

function defaultThreads(totalRows: number): number {
  return totalRows < THREADED_FROM_ROWS ? 0 : Math.min(3, Math.max(1, availableParallelism() - 1));
}

/**
 * Expand the set into a Parquet file at outPath. Written to a temporary file next to it and renamed
 * at the end: on any error nothing is left at outPath (an existing file there is kept).
 * Same set file + count + seed → same bytes.
 */
export async function writePromptTable(set: PromptSet, opts: WriteOptions, outPath: string): Promise<PromptTableSummary> {
  checkExpandOptions(opts);
  const tmp = join(dirname(outPath), `.${basename(outPath)}.${process.pid}.tmp`);
  let fd: number;
  try {
    fd = openSync(tmp, 'w');
  } catch (e) {
    throw new UserError(`${outPath}: cannot write the prompt table (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { cause: e });
  }
  const hash = createHash('sha256');
  let encoder: RowGroupEncoder | undefined;
  try {
    const perCategory: Record<string, number> = Object.fromEntries(set.categories.map((c) => [c.name, 0]));
    let evalRows = 0;
    let rows = 0;
    const writer = new ParquetWriter({ writer: fileSink(fd, hash), schema: SCHEMA, createdBy: CREATED_BY, compressors: COMPRESSORS });
    const expansion = new Expansion(set, opts);
    encoder = new RowGroupEncoder(opts.encodeThreads ?? defaultThreads(set.eval.rows.length + set.eval.count + opts.count));
    // Groups being encoded, in file order; bounded, so memory does not grow with the row count.
    const inFlight: Promise<EncodedRowGroup>[] = [];
    const maxInFlight = Math.max(1, 2 * encoder.threads);
    const writeNext = async () => {
      const group = await inFlight.shift()!;
      placeRowGroup(writer, group);
      await (writer.writer as ByteWriter & { flush(): void }).flush();
      rows += group.rows;
      opts.onProgress?.(rows);
      // let timers and signals run between row groups
      await new Promise<void>((resolve) => setImmediate(resolve));
    };
    for (let batch = expansion.next(ROW_GROUP_ROWS); batch.rows; batch = expansion.next(ROW_GROUP_ROWS)) {
      const counts = new Array<number>(set.categories.length).fill(0);
      for (let i = 0; i < batch.rows; i++) {
        if (batch.eval[i]) evalRows++;
        else counts[batch.category[i]]++;
      }
      counts.forEach((k, c) => (perCategory[set.categories[c].name] += k));
      inFlight.push(encoder.encode(batch));
      while (inFlight.length >= maxInFlight) await writeNext();
    }
    while (inFlight.length) await writeNext();
    writer.kvMetadata = [
      { key: `${META_PREFIX}set_name`, value: set.name },
      { key: `${META_PREFIX}set_sha256`, value: set.sha256 },
      { key: `${META_PREFIX}seed`, value: String(opts.seed) },
      { key: `${META_PREFIX}count`, value: String(opts.count) },
      { key: `${META_PREFIX}eval_rows`, value: String(evalRows) },
      { key: `${META_PREFIX}per_category`, value: JSON.stringify(perCategory) },
    ];
    await writer.finish();
    closeSync(fd);
    renameSync(tmp, outPath);
    return { rows, perCategory, evalRows, sha256: hash.digest('hex') };
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    rmSync(tmp, { force: true });
    if ((e as NodeJS.ErrnoException).code === 'EISDIR') throw new UserError(`${outPath} is a directory: expected a file path for the prompt table`, { cause: e });
    if (e instanceof Error && !(e instanceof UserError) && 'code' in e) {
      throw new UserError(`${outPath}: writing the prompt table failed (${(e as NodeJS.ErrnoException).code})`, { cause: e });
    }
    throw e;
  } finally {
    await encoder?.close();
  }
}

/** A hyparquet-writer sink that writes 1 MiB chunks to fd and feeds them to the hash. */
function fileSink(fd: number, hash: Hash): ByteWriter {
  const w = new ByteWriter(1 << 20);
  const grow = w.ensure.bind(w);
  const flush = () => {
    const chunk = new Uint8Array(w.buffer, 0, w.index);
    for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off);
    hash.update(chunk);
    w.index = 0;
  };
  w.ensure = (size: number) => {
    if (w.index > 1 << 20) flush();
    grow(size);
  };
  (w as ByteWriter & { flush(): void }).flush = flush;
  w.finish = flush;
  return w;
}

export interface ReadOptions {
  split: 'train' | 'eval';
  /** First row of the split (0-based, inclusive). Default 0. */
  start?: number;
  /** End row of the split (exclusive); clamped to the split's size. Default: the end of the split. */
  end?: number;
}

/**
 * Read rows [start, end) of one split of a prompt table, fetching only the row groups that hold them.
 * `source` is the file's path or its bytes.
 */
export async function readPromptRows(source: string | Uint8Array, opts: ReadOptions): Promise<PromptRow[]> {
  const name = typeof source === 'string' ? source : 'prompt table bytes';
  if (opts.split !== 'train' && opts.split !== 'eval') throw new UserError(`split must be "train" or "eval", got ${JSON.stringify(opts.split)}`);
  const file = await open(source);
  let meta: FileMetaData;
  try {
    meta = await parquetMetadataAsync(file);
  } catch (e) {
    throw new UserError(`${name}: not a Parquet file (${(e as Error).message})`, { cause: e });
  }
  const kv = new Map((meta.key_value_metadata ?? []).map((m) => [m.key, m.value]));
  const evalText = kv.get(`${META_PREFIX}eval_rows`);
  if (evalText === undefined) throw new UserError(`${name}: not a pairgen prompt table (no ${META_PREFIX}eval_rows metadata); make one with \`pairgen expand\``);
  const evalRows = Number(evalText);
  const total = Number(meta.num_rows);
  const [base, size] = opts.split === 'eval' ? [0, evalRows] : [evalRows, total - evalRows];
  const start = opts.start ?? 0;
  const end = Math.min(opts.end ?? size, size);
  if (!Number.isSafeInteger(start) || start < 0) throw new UserError(`start must be an integer >= 0, got ${start}`);
  if (!Number.isSafeInteger(end) || end < 0) throw new UserError(`end must be an integer >= 0, got ${opts.end}`);
  if (start >= end) return [];
  const raw = await parquetReadObjects({ file, metadata: meta, rowStart: base + start, rowEnd: base + end });
  return raw.map((r) => ({
    prompt_id: r.prompt_id,
    prompt_split: r.prompt_split,
    category: r.category,
    source_prompt: r.source_prompt,
    instruction: r.instruction,
    target_prompt: r.target_prompt,
    identity_threshold: r.identity_threshold ?? null,
    attributes: JSON.parse(r.attributes),
  }));
}

async function open(source: string | Uint8Array): Promise<AsyncBuffer> {
  if (typeof source !== 'string') return source.buffer.slice(source.byteOffset, source.byteOffset + source.byteLength) as ArrayBuffer;
  try {
    return await asyncBufferFromFile(source);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`${source}: cannot read the prompt table (${code === 'ENOENT' ? 'no such file' : code ?? String(e)})`, { cause: e });
  }
}
