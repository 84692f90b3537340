/** What every handler of `pairgen serve` answers with: JSON bodies, bytes, and errors as `{"error": "..."}`. */
import type { ServerResponse } from 'node:http';

/** An answer other than 200: its status and one clear line for the client. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export const notFound = (message: string) => new HttpError(404, message);
export const badRequest = (message: string) => new HttpError(400, message);

/** A handler's result: a JSON value, or bytes with their headers. */
export type Reply = { json: unknown; status?: number; headers?: Record<string, string> } | { bytes: Uint8Array; headers: Record<string, string>; status?: number };

export function send(res: ServerResponse, reply: Reply, head = false): void {
  if ('json' in reply) {
    const body = Buffer.from(JSON.stringify(reply.json, jsonSafe));
    res.writeHead(reply.status ?? 200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': body.byteLength, 'Cache-Control': 'no-store', ...reply.headers });
    res.end(head ? undefined : body);
  } else {
    res.writeHead(reply.status ?? 200, { 'Content-Length': reply.bytes.byteLength, ...reply.headers });
    res.end(head || reply.status === 304 ? undefined : reply.bytes);
  }
}

export function sendError(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  send(res, { json: { error: message }, status });
}

/** BigInts (DuckDB's BIGINT) as numbers when exact, else as text. */
function jsonSafe(_key: string, v: unknown): unknown {
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  return v;
}
