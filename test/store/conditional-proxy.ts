/**
 * s3rver ignores If-None-Match on PutObject (it overwrites), so the S3 "atomic" path of putIfAbsent
 * needs a server that honours it. This loopback proxy forwards every request to s3rver unchanged, and
 * gives a PUT carrying `If-None-Match: *` the semantics AWS S3 documents: the object is stored only if
 * the key is absent, else 412 PreconditionFailed (S3's error document), and of racing conditional PUTs
 * on one key exactly one wins. It does so the way a server must: per key, a HEAD on s3rver and then
 * the PUT run under one lock, so no other conditional PUT on that key can slip between them.
 * `conditionalPuts` counts the PUTs that carried the header (to prove the client sent it).
 * `conflicts` makes the next n conditional PUTs answer 409 ConditionalRequestConflict, like S3 while
 * another conditional write on the key is in flight.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ConditionalProxy {
  endpoint: string;
  conditionalPuts: number;
  conflicts: number;
  close(): Promise<void>;
}

export async function startConditionalProxy(target: string): Promise<ConditionalProxy> {
  const locks = new Map<string, Promise<void>>();
  const state: ConditionalProxy = { endpoint: '', conditionalPuts: 0, conflicts: 0, close: async () => {} };

  const forward = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) =>
    new Promise<void>((done) => {
      const up = http.request(target + req.url, { method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        answer.on('end', () => done());
      });
      up.on('error', () => {
        res.destroy();
        done();
      });
      up.end(body);
    });

  const exists = (req: http.IncomingMessage) =>
    new Promise<boolean>((resolve, reject) => {
      const path = (req.url ?? '').split('?')[0];
      // s3rver does not check signatures, so a HEAD with the PUT's own headers is answered.
      const headers = { ...req.headers };
      for (const h of ['content-length', 'content-type', 'content-md5', 'transfer-encoding', 'expect', 'if-none-match']) delete headers[h];
      const head = http.request(target + path, { method: 'HEAD', headers }, (a) => {
        a.resume();
        if (a.statusCode === 200 || a.statusCode === 404) resolve(a.statusCode === 200);
        else reject(new Error(`HEAD ${path}: HTTP ${a.statusCode}`));
      });
      head.on('error', reject);
      head.end();
    });

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.method !== 'PUT' || req.headers['if-none-match'] !== '*') return void forward(req, res, body);
      state.conditionalPuts++;
      const fail = (status: number, code: string) => {
        res.writeHead(status, { 'content-type': 'application/xml' });
        res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>`);
      };
      if (state.conflicts > 0) {
        state.conflicts--;
        return fail(409, 'ConditionalRequestConflict');
      }
      const key = (req.url ?? '').split('?')[0];
      const previous = locks.get(key) ?? Promise.resolve();
      const turn = previous.then(async () => {
        if (await exists(req)) fail(412, 'PreconditionFailed');
        else await forward(req, res, body);
      }).catch(() => void res.destroy());
      locks.set(key, turn);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return state;
}
