// The teacher's worker thread: loads the models once, then answers generate requests, so the UNet
// keeps this thread busy while the main thread scores, encodes and uploads.
import { parentPort, workerData } from 'node:worker_threads';
import { isUserError } from '../errors.ts';
import type { RuntimeConfig } from '../onnx/session.ts';
import type { CandidateSpec, LabellerHook, PairLabeller } from '../types.ts';
import type { TeacherConfig } from './config.ts';
import { PairGenerator } from './generator.ts';

export type Request = { type: 'generate'; id: number; specs: CandidateSpec[] } | { type: 'close'; id: number };
export type Reply =
  | { type: 'ready'; describe: ReturnType<PairGenerator['describe']> }
  | { type: 'result'; id: number; pairs: unknown }
  | { type: 'error'; id: number; user: boolean; message: string; stack?: string };

const port = parentPort!;
const post = (r: Reply, transfer: ArrayBuffer[] = []) => port.postMessage(r, transfer);
const failure = (id: number, e: unknown): Reply => ({ type: 'error', id, user: isUserError(e), message: (e as Error).message ?? String(e), stack: (e as Error).stack });

let generator: PairGenerator;
try {
  const hook = workerData.labeller as LabellerHook | null;
  const labeller: PairLabeller | null = hook ? await (await import(hook.module)).createLabeller(hook.arg) : null;
  generator = await PairGenerator.create(workerData.config as TeacherConfig, workerData.runtime as RuntimeConfig, labeller, workerData.budgetBatch as number | null);
  post({ type: 'ready', describe: generator.describe() });
} catch (e) {
  post(failure(-1, e));
  process.exit(0);
}

// One request at a time, in arrival order (generate is deterministic per call, and the sessions are not re-entrant).
let queue = Promise.resolve();
port.on('message', (req: Request) => {
  queue = queue.then(async () => {
    if (req.type === 'close') {
      await generator.close();
      post({ type: 'result', id: req.id, pairs: null });
      port.close();
      return;
    }
    try {
      const pairs = await generator.generate(req.specs);
      const buffers = pairs.flatMap((p) => [p.source.data.buffer as ArrayBuffer, p.edited.data.buffer as ArrayBuffer]);
      post({ type: 'result', id: req.id, pairs }, [...new Set(buffers)]);
    } catch (e) {
      post(failure(req.id, e));
    }
  });
});
