// Worker threads do not inherit tsx's loader from the main thread, so every TypeScript worker
// starts here: register tsx in this thread, then load the module named in workerData.
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';
register();
await import(workerData.__module);
