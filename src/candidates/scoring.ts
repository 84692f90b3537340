/**
 * The scoring pool (issue 11, point 5): the identity stage and the pair scorers on worker threads, so
 * scoring leaves the main thread (encoding, writing) and the teacher's thread free and uses every core.
 * Each thread opens its own sessions (onnxruntime sessions cannot move between threads) and scores one
 * pair at a time; a pool of N threads scores N pairs at once and queues the rest in arrival order.
 * With 0 threads the same stage runs on the calling thread, one pair at a time (tests, small machines).
 * A pair's numbers do not depend on the thread count: every thread opens the same models with the same
 * session options, and each pair is scored on its own.
 *
 *   const pool = await createScoringPool({ identity, scorers, runtime, threads: defaultScoringThreads(runtime) });
 *   const { identity, scores } = await pool.score(source, edited, spec);
 *   await pool.close();
 */
import { availableParallelism } from 'node:os';
import { UserError } from '../errors.ts';
import type { RuntimeConfig } from '../onnx/session.ts';
import type { CandidateSpec, RgbImage } from '../types.ts';
import { log } from '../util/log.ts';
import { ThreadPool } from '../util/thread-pool.ts';
import { openScoringStage, type PoolScore, type ScoringInfo, type ScoringStageOptions } from './scoring-stage.ts';

export type { PoolScore, ScoringInfo };

export interface ScoringPoolOptions extends ScoringStageOptions {
  /** Worker threads; 0 scores on the calling thread. defaultScoringThreads(runtime) sizes it to the machine. */
  threads: number;
}

export interface ScoringPool {
  readonly info: ScoringInfo;
  readonly threads: number;
  score(source: RgbImage, edited: RgbImage, spec: CandidateSpec): Promise<PoolScore>;
  /** Ends every thread; pairs still queued are rejected. */
  close(): Promise<void>;
}

/**
 * Scoring threads for this machine: one per core but one, which is left to the teacher's thread and the
 * main thread (encoding, writing). Each thread's sessions run on runtime.intra_op_threads cores (0 is
 * onnxruntime's default: every core), so the cores are divided by that. At least 1.
 */
export function defaultScoringThreads(runtime: RuntimeConfig, cores = availableParallelism()): number {
  const perThread = runtime.intra_op_threads > 0 ? runtime.intra_op_threads : cores;
  return Math.max(1, Math.floor((cores - 1) / perThread));
}

/** One pair as it goes to a thread. */
export interface ScoringRequest {
  source: RgbImage;
  edited: RgbImage;
  spec: CandidateSpec;
}

/**
 * Open the scoring stage on `threads` worker threads (or on this thread with 0). Every thread opens its
 * models at once; a thread that cannot (a missing model, a bad provider) fails the whole pool with its
 * error, and no thread is left running.
 */
export async function createScoringPool(options: ScoringPoolOptions): Promise<ScoringPool> {
  const { threads, ...stageOptions } = options;
  if (!Number.isInteger(threads) || threads < 0) throw new UserError(`scoring threads: expected a whole number ≥ 0, got ${threads}`);
  const started = performance.now();
  if (threads === 0) {
    const stage = await openScoringStage(stageOptions);
    let last: Promise<unknown> = Promise.resolve();
    let closed: Promise<void> | null = null;
    return {
      info: stage.info,
      threads,
      score(source, edited, spec) {
        if (closed) return Promise.reject(new Error('the scoring pool is closed'));
        // One pair at a time, like one thread.
        const next = last.then(() => stage.score(source, edited, spec));
        last = next.catch(() => undefined);
        return next;
      },
      close() {
        closed ??= last.then(() => stage.close());
        return closed;
      },
    };
  }
  const { pool, ready } = await ThreadPool.start<ScoringRequest, PoolScore, ScoringInfo>(new URL('./scoring-worker.ts', import.meta.url), threads, { options: stageOptions }, 'scoring thread');
  log.info(`scoring: ${threads} thread${threads === 1 ? '' : 's'} ready in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return {
    info: ready,
    threads,
    // One copy of each image: the caller keeps its pixels (work.ts encodes them after scoring), and the
    // copy is compact (a view's whole backing buffer would be cloned otherwise), so it is moved, not copied again.
    score(source, edited, spec) {
      const s = copyImage(source), e = copyImage(edited);
      return pool.run({ source: s, edited: e, spec }, [s.data.buffer as ArrayBuffer, e.data.buffer as ArrayBuffer]);
    },
    close: () => pool.close(),
  };
}

// new Uint8Array(view) always copies into a buffer of its own (a Buffer's slice() would share the caller's memory).
const copyImage = (img: RgbImage): RgbImage => ({ width: img.width, height: img.height, data: new Uint8Array(img.data) });

