// A manifest encoding thread: opens the run's store itself, then merges the row groups it is sent from
// their shards' manifest parts, one at a time (manifest.ts places them in the file in order).
import { parentPort, workerData } from 'node:worker_threads';
import { isUserError } from '../errors.ts';
import { openStore } from '../store/index.ts';
import { fileSource, type GroupTask } from './manifest-group.ts';
import { mergeManifestGroup } from './manifest-merge.ts';

export type WorkerRequest = { id: number; task: GroupTask };
export type WorkerReply =
  | { id: number; group: Awaited<ReturnType<typeof mergeManifestGroup>> }
  | { id: number; error: { user: boolean; message: string; stack?: string } };

const port = parentPort!;
const store = openStore(workerData.storeUri as string, workerData.storage);
const rangeReadBytes = workerData.rangeReadBytes as number;

port.on('message', async ({ id, task }: WorkerRequest) => {
  try {
    const group = await mergeManifestGroup(task, (name) => store.get(name), (f) => fileSource(store, f, rangeReadBytes));
    port.postMessage({ id, group } satisfies WorkerReply, [group.bytes.buffer as ArrayBuffer]);
  } catch (e) {
    const err = e as Error;
    port.postMessage({ id, error: { user: isUserError(e), message: err.message ?? String(e), stack: err.stack } } satisfies WorkerReply);
  }
});
