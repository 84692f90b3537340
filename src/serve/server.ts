/**
 * `pairgen serve`: an HTTP server (node:http; a dozen GET routes need no framework) over one run: the
 * web app's files at `/` and `/app/<name>`, the JSON API under `/api/` (api.ts). Read-only, GET and HEAD
 * only, bound to loopback by default. On loopback it also answers only requests addressed to a loopback
 * name (the Host header), so a web page elsewhere cannot reach it through DNS rebinding. Every error is
 * `{"error": "..."}` with a 4xx/5xx status, and the server goes on serving.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isUserError, UserError } from '../errors.ts';
import { log } from '../util/log.ts';
import { RunApi } from './api.ts';
import { badRequest, HttpError, notFound, send, sendError, type Reply } from './http.ts';
import { appFile } from './static.ts';

export const DEFAULT_PORT = 8787;
export const DEFAULT_HOST = '127.0.0.1';

export interface ServeOptions {
  host?: string;
  /** 0: any free port. */
  port?: number;
  /** The web app's folder (default src/serve/app/). */
  appDir?: string;
}

export interface RunningServer {
  url: string;
  port: number;
  api: RunApi;
  close(): Promise<void>;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|::1|\[::1\])$/i;

/** Open the run (a UserError when there is none), then listen. */
export async function startServer(runUri: string, options: ServeOptions = {}): Promise<RunningServer> {
  const host = options.host ?? DEFAULT_HOST;
  const api = await RunApi.open(runUri);
  const loopbackOnly = LOOPBACK.test(host);
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e) => sendError(res, 500, `internal error: ${firstLine(e)}`));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const head = req.method === 'HEAD';
    try {
      if (req.method !== 'GET' && !head) throw new HttpError(405, `${req.method} is not allowed: the server is read-only (GET and HEAD only)`);
      if (loopbackOnly && !LOOPBACK.test(hostName(req.headers.host ?? ''))) throw new HttpError(403, `Host ${JSON.stringify((req.headers.host ?? '').slice(0, 80))} refused: the server answers only requests to a loopback address`);
      send(res, await route(req), head);
    } catch (e) {
      if (e instanceof HttpError) sendError(res, e.status, e.message);
      else if (isUserError(e)) sendError(res, 400, e.message);
      else {
        log.error(`serve: ${req.url?.slice(0, 200)}: ${firstLine(e)}`);
        sendError(res, 500, `internal error: ${firstLine(e)}`);
      }
    }
  }

  async function route(req: IncomingMessage): Promise<Reply> {
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const path = q < 0 ? raw : raw.slice(0, q);
    const params = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
    const segments = pathSegments(path);
    if (segments.length === 0) return appFile('index.html', options.appDir);
    if (segments[0] === 'app' && segments.length === 2) return appFile(segments[1], options.appDir);
    if (segments[0] === 'api') return api.handle(segments.slice(1), params, { ifNoneMatch: req.headers['if-none-match'] });
    throw notFound(`no page ${path.slice(0, 100)}: the app is at /, its files at /app/<name>, the API under /api/`);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? DEFAULT_PORT, host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch(async (e) => {
    await api.close();
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new UserError(`--port ${options.port}: the port is in use on ${host}; pick another (or --port 0 for any free one)`);
    throw e;
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${port}/`,
    port,
    api,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await api.close();
    },
  };
}

/** The URL path's segments, each percent-decoded; a segment that decodes to a path step (".", "..", "/", "\") is refused. */
function pathSegments(path: string): string[] {
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '') continue;
    let segment: string;
    try {
      segment = decodeURIComponent(part);
    } catch {
      throw badRequest(`the URL path ${JSON.stringify(path.slice(0, 100))} is not valid percent-encoding`);
    }
    if (segment === '.' || segment === '..' || /[/\\\0]/.test(segment)) throw badRequest(`the URL path ${JSON.stringify(path.slice(0, 100))} tries to leave its folder; refused`);
    out.push(segment);
  }
  return out;
}

function hostName(host: string): string {
  const m = /^(\[[^\]]+\]|[^:]+)(?::\d+)?$/.exec(host);
  return m ? m[1] : host;
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0];
}
