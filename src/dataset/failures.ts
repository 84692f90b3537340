/**
 * Failure records: markers/shard-NNNNN.failed.json says that the last attempt at a shard failed with an
 * error that is not the user's (the store still failing after its own retries, a teacher crash...).
 * A record never makes a shard look committed: a shard is committed iff its marker matches its files,
 * whatever records exist, and a worker deletes the record after it commits the shard.
 * `pairgen work` skips shards with a record unless --retry-failed; `pairgen status` lists them.
 */
import { hostname } from 'node:os';
import type { Store } from '../store/types.ts';
import { log } from '../util/log.ts';
import { failureKey, shardName } from './layout.ts';

export const FAILURE_FORMAT = 'pairgen-shard-failure';

export interface FailureRecord {
  format: typeof FAILURE_FORMAT;
  shard: number;
  run_id: string;
  /** Failed attempts so far (each failed attempt of any worker adds one). */
  attempts: number;
  /** The error of the last failed attempt: its name and message (no stack, no secrets beyond what the message holds). */
  error: string;
  /** Where and when the last attempt failed, for the operator. */
  host: string;
  pid: number;
  time: string;
}

/** The record of a shard, or null when it has none or it cannot be read as one. */
export async function readFailure(store: Store, shard: number): Promise<FailureRecord | null> {
  const bytes = await store.getIfExists(failureKey(shard));
  return bytes ? parseFailure(bytes) : null;
}

function parseFailure(bytes: Uint8Array): FailureRecord | null {
  try {
    const r = JSON.parse(Buffer.from(bytes).toString('utf8')) as FailureRecord;
    return r && r.format === FAILURE_FORMAT && Number.isInteger(r.shard) && Number.isInteger(r.attempts) ? r : null;
  } catch {
    return null;
  }
}

/**
 * Record a failed attempt (attempts = previous + 1). Best effort: when the store itself is what fails,
 * the record may not be writable; that is logged and the worker's exit code still says a shard failed.
 */
export async function recordFailure(store: Store, shard: number, runId: string, error: unknown): Promise<FailureRecord> {
  const previous = await readFailure(store, shard).catch(() => null);
  const record: FailureRecord = {
    format: FAILURE_FORMAT,
    shard,
    run_id: runId,
    attempts: (previous?.attempts ?? 0) + 1,
    error: describeError(error),
    host: hostname(),
    pid: process.pid,
    time: new Date().toISOString(),
  };
  try {
    await store.put(failureKey(shard), JSON.stringify(record, null, 2) + '\n', { contentType: 'application/json' });
  } catch (e) {
    log.warn(`${shardName(shard)}: could not write its failure record`, { error: describeError(e) });
  }
  return record;
}

/** Forget a shard's failure (after it was committed). Best effort: a stale record is ignored for committed shards. */
export async function clearFailure(store: Store, shard: number): Promise<void> {
  await store.delete(failureKey(shard)).catch((e) => log.warn(`${shardName(shard)}: could not delete its failure record`, { error: describeError(e) }));
}

export function describeError(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}
