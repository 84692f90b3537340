/**
 * Encodes row groups of the prompt table on worker threads while the main thread expands the next
 * rows (the expansion itself is sequential: every draw depends on the de-duplication of the draws
 * before it). With 0 threads it encodes inline. Results come back in submission order.
 */
import type { Worker } from 'node:worker_threads';
import { startTsWorker } from '../util/worker.ts';
import type { RowBatch } from './expand.ts';
import type { EncodedRowGroup } from '../util/parquet-groups.ts';
import { encodeRowGroup } from './row-group.ts';

type Reply = { id: number; group: EncodedRowGroup; error?: undefined } | { id: number; error: string };

export class RowGroupEncoder {
  private readonly workers: Worker[] = [];
  private readonly waiting = new Map<number, { resolve: (g: EncodedRowGroup) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private dead: Error | null = null;

  constructor(readonly threads: number) {
    for (let i = 0; i < threads; i++) {
      // No inherited node options: `node --input-type=module -e ...` would make the thread refuse to start.
      const worker = startTsWorker(new URL('./row-group-worker.ts', import.meta.url), {}, { execArgv: [] });
      worker.on('message', (r: Reply) => {
        const w = this.waiting.get(r.id);
        this.waiting.delete(r.id);
        if (r.error !== undefined) w?.reject(new Error(`prompt table encoder: ${r.error}`));
        else w?.resolve(r.group);
      });
      worker.on('error', (e) => this.failAll(e));
      worker.on('exit', (code) => this.failAll(new Error(`prompt table encoder thread exited (code ${code})`)));
      this.workers.push(worker);
    }
  }

  /** Encode one batch (round robin over the threads). The promise never goes unhandled. */
  encode(batch: RowBatch): Promise<EncodedRowGroup> {
    if (!this.threads) return Promise.resolve(encodeRowGroup(batch));
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    const p = new Promise<EncodedRowGroup>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    // the batch's arrays move to the thread (the caller keeps no use of them)
    this.workers[id % this.workers.length].postMessage({ id, batch }, [batch.text.buffer, batch.bounds.buffer, batch.eval.buffer, batch.category.buffer, batch.attributes.buffer] as ArrayBuffer[]);
    p.catch(() => {}); // awaited later, in order; an error must not count as unhandled meanwhile
    return p;
  }

  async close(): Promise<void> {
    const workers = this.workers.splice(0);
    for (const w of workers) w.removeAllListeners('exit');
    await Promise.all(workers.map((w) => w.terminate()));
  }

  private failAll(e: Error): void {
    this.dead ??= e;
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
  }
}
