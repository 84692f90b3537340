import { Worker, type WorkerOptions } from 'node:worker_threads';

const BOOT = new URL('./worker-boot.mjs', import.meta.url);

/** Start a worker thread running a TypeScript module (tsx is registered inside the thread first). */
export function startTsWorker(moduleUrl: string | URL, workerData: Record<string, unknown> = {}, options: WorkerOptions = {}): Worker {
  return new Worker(BOOT, { ...options, workerData: { ...workerData, __module: String(moduleUrl) } });
}
