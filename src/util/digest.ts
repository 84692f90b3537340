import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';

export interface FileDigest {
  path: string;
  size: number;
  sha256: string;
}

export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

// Model files can be gigabytes; a worker hashes each once per process.
const cache = new Map<string, FileDigest>();

export async function digestFile(path: string): Promise<FileDigest> {
  const st = statSync(path);
  const cacheKey = `${path}\0${st.size}\0${st.mtimeMs}`;
  const hit = cache.get(cacheKey);
  if (hit) return hit;
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
  const digest = { path, size: st.size, sha256: hash.digest('hex') };
  cache.set(cacheKey, digest);
  return digest;
}

/** Digests of a set of files, plus one combined digest over their contents in path order. */
export async function digestFiles(paths: string[]): Promise<{ digest: string; files: FileDigest[] }> {
  const files: FileDigest[] = [];
  for (const p of [...new Set(paths)].sort()) files.push(await digestFile(p));
  return { digest: sha256Hex(files.map((f) => f.sha256).join('\n')), files };
}
