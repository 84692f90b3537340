/**
 * The web app's files (src/serve/app/, shipped with the package): index.html at `/`, the rest at
 * `/app/<name>`. Only plain file names inside that folder are served: no subfolders, no dot files, and
 * the resolved real path must still be inside the folder (a symlink out of it is refused too).
 */
import { readFile, realpath } from 'node:fs/promises';
import { extname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { badRequest, notFound, type Reply } from './http.ts';

export const APP_DIR = fileURLToPath(new URL('./app/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

/** A plain file name: letters, digits, dot, dash, underscore; not starting with a dot. */
const FILE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

export async function appFile(name: string, appDir = APP_DIR): Promise<Reply> {
  if (!FILE_NAME.test(name) || name.includes('..')) throw badRequest(`/app/${name.slice(0, 80)}: not a file name of the app (plain names only, no folders)`);
  let path: string;
  let root: string;
  try {
    root = await realpath(appDir);
    path = await realpath(join(appDir, name));
  } catch {
    throw notFound(`/app/${name}: no such file in the app`);
  }
  if (!path.startsWith(root + sep)) throw notFound(`/app/${name}: no such file in the app`);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch {
    throw notFound(`/app/${name}: no such file in the app`);
  }
  const type = TYPES[extname(name).toLowerCase()] ?? 'application/octet-stream';
  // The page is always asked again (it names the assets); the assets may be kept a few minutes.
  const cache = type.startsWith('text/html') ? 'no-cache' : 'public, max-age=300';
  return { bytes, headers: { 'Content-Type': type, 'Cache-Control': cache, 'X-Content-Type-Options': 'nosniff' } };
}
