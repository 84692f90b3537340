/**
 * A pool of worker threads serving one module, one request per thread at a time, the rest queued in
 * arrival order (the scoring pool, src/candidates/scoring.ts). The module calls serveThread. A thread
 * that dies takes the pool with it: its request, the queued ones and any later one are rejected naming
 * the thread and how it ended. Errors a request raises reach its caller, UserError kept.
 */
import { parentPort, workerData, type Worker } from 'node:worker_threads';
import { isUserError, UserError } from '../errors.ts';
import { startTsWorker } from './worker.ts';

// The protocol between ThreadPool and serveThread: the thread posts `ready` once it is open (or an error
// with id -1), then answers each `run` with a result or an error of the same id, and `close` last.

type ToThread<Req> = { type: 'run'; id: number; request: Req } | { type: 'close'; id: number };
type FromThread<Res, Ready> =
  | { type: 'ready'; value: Ready }
  | { type: 'result'; id: number; value: Res }
  | { type: 'error'; id: number; user: boolean; message: string; stack?: string };

const toError = (r: { user: boolean; message: string; stack?: string }): Error => Object.assign(r.user ? new UserError(r.message) : new Error(r.message), { stack: r.stack });

interface Job<Req, Res> {
  request: Req;
  transfer: ArrayBuffer[];
  resolve: (v: Res) => void;
  reject: (e: Error) => void;
}

interface Thread<Req, Res> {
  worker: Worker;
  job: Job<Req, Res> | null;
  /** Called when the thread answers `close`. */
  closed: () => void;
}

const CLOSE_ID = -2;

/**
 * Worker threads running one module (which calls serveThread), each given one request at a time; the
 * requests beyond the threads wait in a queue, first come first served. A thread that dies (an uncaught
 * error, an exit) takes the pool with it: its request, the queued ones and any later one are rejected with
 * an error that says which thread died and how. Errors a request raises reach its caller, UserError kept.
 */
export class ThreadPool<Req, Res> {
  private readonly queue: Job<Req, Res>[] = [];
  private dead: Error | null = null;
  private closing: Promise<void> | null = null;

  private constructor(private readonly threads: Thread<Req, Res>[], private readonly what: string) {}

  /** Start `count` threads of `moduleUrl` with `data` as their workerData; resolves once every one is ready. */
  static async start<Req, Res, Ready>(moduleUrl: URL, count: number, data: Record<string, unknown>, what: string): Promise<{ pool: ThreadPool<Req, Res>; ready: Ready }> {
    const threads: Thread<Req, Res>[] = [];
    const readies: Promise<Ready>[] = [];
    for (let i = 0; i < count; i++) {
      // No inherited node options: the test runner's or `-e`'s flags can stop a thread from starting; the boot file registers tsx itself.
      const worker = startTsWorker(moduleUrl, data, { execArgv: [] });
      threads.push({ worker, job: null, closed: () => undefined });
      readies.push(new Promise<Ready>((resolve, reject) => {
        worker.once('message', (r: FromThread<Res, Ready>) => (r.type === 'ready' ? resolve(r.value) : reject(r.type === 'error' ? toError(r) : new Error(`${what} ${i}: unexpected first message ${r.type}`))));
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`${what} ${i} exited (code ${code}) while starting`)));
      }));
    }
    let values: Ready[];
    try {
      values = await Promise.all(readies);
    } catch (e) {
      await Promise.all(threads.map((t) => t.worker.terminate()));
      throw e;
    }
    const pool = new ThreadPool<Req, Res>(threads, what);
    threads.forEach((t, i) => pool.watch(t, i));
    return { pool, ready: values[0] };
  }

  /** Run one request on the next free thread; `transfer` lists buffers of the request that move to the thread. */
  run(request: Req, transfer: ArrayBuffer[] = []): Promise<Res> {
    if (this.dead) return Promise.reject(this.dead);
    if (this.closing) return Promise.reject(new Error(`the ${this.what} pool is closed`));
    return new Promise<Res>((resolve, reject) => {
      this.queue.push({ request, transfer, resolve, reject });
      this.dispatch();
    });
  }

  close(): Promise<void> {
    this.closing ??= this.end();
    return this.closing;
  }

  private async end(): Promise<void> {
    for (const job of this.queue.splice(0)) job.reject(new Error(`the ${this.what} pool was closed before this request ran`));
    await Promise.all(this.threads.map(async (t) => {
      // Let the thread release its sessions (after the request it is running, if any), then end it.
      const done = new Promise<void>((resolve) => {
        t.worker.once('exit', () => resolve());
        t.closed = resolve;
      });
      if (!this.dead) t.worker.postMessage({ type: 'close', id: CLOSE_ID } satisfies ToThread<Req>);
      else t.closed();
      await done;
      await t.worker.terminate();
    }));
  }

  private nextId = 0;

  private watch(thread: Thread<Req, Res>, index: number): void {
    thread.worker.on('message', (r: FromThread<Res, unknown>) => {
      if (r.type === 'ready') return;
      if (r.id === CLOSE_ID) return thread.closed();
      const job = thread.job;
      thread.job = null;
      if (!job) return;
      if (r.type === 'result') job.resolve(r.value);
      else job.reject(toError(r));
      this.dispatch();
    });
    thread.worker.on('error', (e) => this.fail(new Error(`${this.what} ${index} of ${this.threads.length} died: ${e.message}`, { cause: e })));
    thread.worker.on('exit', (code) => this.fail(new Error(`${this.what} ${index} of ${this.threads.length} exited (code ${code})`)));
  }

  private dispatch(): void {
    if (this.dead) return;
    for (const thread of this.threads) {
      if (thread.job) continue;
      const job = this.queue.shift();
      if (!job) return;
      thread.job = job;
      try {
        thread.worker.postMessage({ type: 'run', id: this.nextId++, request: job.request } satisfies ToThread<Req>, job.transfer);
      } catch (e) {
        thread.job = null; // the request could not be sent (e.g. something that cannot be cloned): its caller's error
        job.reject(e as Error);
      }
    }
  }

  private fail(e: Error): void {
    if (this.closing && !this.threads.some((t) => t.job)) return;
    this.dead ??= e;
    for (const t of this.threads) {
      t.job?.reject(this.dead);
      t.job = null;
    }
    for (const job of this.queue.splice(0)) job.reject(this.dead);
  }
}

/**
 * The thread side of ThreadPool: open what the thread serves (with its workerData), post `ready`, then
 * answer one request at a time in arrival order. An error while opening is posted and ends the thread.
 */
export async function serveThread<Req, Res, Ready>(open: (data: Record<string, unknown>) => Promise<{ ready: Ready; handle(request: Req): Promise<Res>; close(): Promise<void> }>): Promise<void> {
  const port = parentPort!;
  const failure = (id: number, e: unknown): FromThread<Res, Ready> => ({ type: 'error', id, user: isUserError(e), message: (e as Error)?.message ?? String(e), stack: (e as Error)?.stack });
  let served: Awaited<ReturnType<typeof open>>;
  try {
    served = await open(workerData as Record<string, unknown>);
  } catch (e) {
    port.postMessage(failure(-1, e));
    port.close();
    return;
  }
  port.postMessage({ type: 'ready', value: served.ready } satisfies FromThread<Res, Ready>);
  let queue = Promise.resolve();
  port.on('message', (m: ToThread<Req>) => {
    queue = queue.then(async () => {
      if (m.type === 'close') {
        await served.close();
        port.postMessage({ type: 'result', id: m.id, value: null as Res } satisfies FromThread<Res, Ready>);
        port.close();
        return;
      }
      try {
        port.postMessage({ type: 'result', id: m.id, value: await served.handle(m.request) } satisfies FromThread<Res, Ready>);
      } catch (e) {
        port.postMessage(failure(m.id, e));
      }
    });
  });
}
