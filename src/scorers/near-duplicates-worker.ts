// A thread of markRowsOnThreads (near-duplicates.ts): one part of the join per request, over hashes shared
// with the other threads.
import { serveThread } from '../util/thread-pool.ts';
import { joinPart, type JoinRequest } from './near-duplicates-join.ts';

await serveThread<JoinRequest, ReturnType<typeof joinPart>, null>(async () => ({
  ready: null,
  handle: async (request) => joinPart(request),
  close: async () => undefined,
}));
