/**
 * A pass-through HTTP proxy on loopback, put between the S3 client and s3rver, that logs every request
 * and answers chosen ones with a fault instead of a clean pass-through.
 *
 *   const proxy = await startFaultProxy(s3.endpoint);
 *   proxy.setFault((r) => (r.method === 'PUT' && r.index < 2 ? SLOWDOWN : null));
 *   ... point AWS_ENDPOINT_URL_S3 (or storage.endpoint) at proxy.endpoint ...
 *   proxy.faults   // every injected fault: { line, fault }
 *   proxy.regions  // the region of each request's SigV4 credential scope ('' when unsigned)
 *
 * Faults: 'reset' drops the connection before forwarding; 'reset-after' forwards the request (so the
 * server acts on it) and drops the connection instead of answering; 'truncate' forwards, then sends half
 * the answer's body under its full Content-Length and drops the connection; 'hang' never answers (the
 * client's socket timeout fires); { status, code } answers with an S3 error document.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Fault = 'reset' | 'reset-after' | 'truncate' | 'hang' | { status: number; code: string } | null;
export const SLOWDOWN = { status: 503, code: 'SlowDown' } as const;
export const INTERNAL = { status: 500, code: 'InternalError' } as const;

export interface ProxyRequest {
  method: string;
  url: string;
  /** "PUT /bucket/key?..." */
  line: string;
  /** Position of this request in the log. */
  index: number;
}

export interface FaultProxy {
  endpoint: string;
  requests: string[];
  /** The region of each logged request's SigV4 credential scope ('' when it has none), in log order. */
  regions: string[];
  faults: { line: string; fault: Exclude<Fault, null> }[];
  setFault(f: (r: ProxyRequest) => Fault): void;
  reset(): void;
  close(): Promise<void>;
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const requests: string[] = [];
  const regions: string[] = [];
  const faults: FaultProxy['faults'] = [];
  let choose: (r: ProxyRequest) => Fault = () => null;
  const server = http.createServer((req, res) => {
    const line = `${req.method} ${req.url}`;
    const f = choose({ method: req.method ?? '', url: req.url ?? '', line, index: requests.length });
    requests.push(line);
    regions.push(/Credential=[^/]+\/\d+\/([^/]+)\/s3\//.exec(req.headers.authorization ?? '')?.[1] ?? '');
    if (f !== null) faults.push({ line, fault: f });
    if (f === 'reset') return void req.socket.destroy();
    if (f === 'hang') return void req.resume();
    if (f !== null && typeof f === 'object') {
      req.resume();
      req.on('end', () => {
        res.writeHead(f.status, { 'content-type': 'application/xml' });
        res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${f.code}</Code><Message>injected by the test proxy</Message></Error>`);
      });
      return;
    }
    const upstream = http.request(target + req.url, { method: req.method, headers: req.headers }, (up) => {
      if (f === 'reset-after') {
        up.resume();
        up.on('end', () => req.socket.destroy());
        return;
      }
      res.writeHead(up.statusCode ?? 502, up.headers);
      if (f === 'truncate') {
        const chunks: Buffer[] = [];
        up.on('data', (c: Buffer) => chunks.push(c));
        up.on('end', () => {
          const body = Buffer.concat(chunks);
          res.write(body.subarray(0, body.length >> 1), () => res.destroy());
        });
      } else up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    regions,
    faults,
    setFault(f) {
      choose = f;
    },
    reset() {
      requests.length = 0;
      regions.length = 0;
      faults.length = 0;
      choose = () => null;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
