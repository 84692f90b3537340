import { statSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { localPath, openStore } from './index.ts';

/**
 * Write one output file (a query result, a report page) to a local path or an s3:// URI, atomically
 * through the store: a reader sees the whole file or none of it.
 */
export async function putOutput(out: string, body: Uint8Array | string): Promise<void> {
  // The whole URI is checked (scheme, file:// query or fragment, special file systems) before it is split.
  const path = localPath(out);
  const { parent, key } = path === null ? splitUri(out) : splitUri(path);
  if (path !== null) {
    const isDir = (() => {
      try {
        return statSync(path).isDirectory();
      } catch {
        return false;
      }
    })();
    if (isDir) throw new UserError(`--out ${out}: is a directory; expected a file name`);
  }
  await openStore(parent).put(key, body);
}

/** "a/b/c.txt" → parent "a/b", key "c.txt"; the same for s3://bucket/prefix/c.txt. */
export function splitUri(out: string): { parent: string; key: string } {
  const trimmed = out.replace(/\/+$/, '');
  const cut = trimmed.lastIndexOf('/');
  const key = trimmed.slice(cut + 1);
  if (!key || (cut >= 0 && /^s3:\/\/[^/]*$/i.test(trimmed))) throw new UserError(`--out ${out}: expected a file name`);
  return { parent: cut < 0 ? '.' : cut === 0 ? '/' : trimmed.slice(0, cut), key };
}
