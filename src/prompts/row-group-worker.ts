/** Worker thread of RowGroupEncoder (encoder.ts): encodes the row groups it is sent. */
import { parentPort } from 'node:worker_threads';
import { encodeRowGroup } from './row-group.ts';
import type { RowBatch } from './expand.ts';

parentPort!.on('message', ({ id, batch }: { id: number; batch: RowBatch }) => {
  try {
    const group = encodeRowGroup(batch);
    parentPort!.postMessage({ id, group }, [group.bytes.buffer as ArrayBuffer]);
  } catch (e) {
    parentPort!.postMessage({ id, error: (e as Error).stack ?? String(e) });
  }
});
