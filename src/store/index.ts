import { realpathSync, statfsSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.ts';
import { redactUrl, type StorageConfig } from './config.ts';
import { LocalStore } from './local.ts';
import { describeS3, openS3Store, resolveS3Settings, type S3Tuning } from './s3.ts';
import type { Store } from './types.ts';

export { NotFoundError } from './errors.ts';
export type { ConditionalWrites, PutIfAbsentResult, Store, StoreEntry } from './types.ts';
export type { StorageConfig } from './config.ts';
export { checkStorageConfig, redactUrl } from './config.ts';
export type { S3Tuning } from './s3.ts';

/**
 * Open the store rooted at `uri`: a local path (absolute or relative to the working directory),
 * file:///abs/path, or s3://bucket/prefix. `config` is the pipeline's `storage` section (used for
 * s3:// only); `tuning` holds internal knobs for tests and benchmarks.
 */
export function openStore(uri: string, config: Partial<StorageConfig> = {}, tuning: S3Tuning = {}): Store {
  const path = localPath(uri);
  if (path !== null) return new LocalStore(path);
  return openS3Store(uri, config, tuning);
}

/** A one-line description of where a URI points, for logs (never contains credentials). */
export function describeStoreUri(uri: string, config: Partial<StorageConfig> = {}): string {
  const path = localPath(uri);
  if (path !== null) return `local folder ${path}`;
  return describeS3(resolveS3Settings(uri, config));
}

/**
 * The absolute local path a URI names, or null for s3://. Every URI is checked here: a scheme we do not
 * know, a file:// URI with a host, query or fragment, and a path on a special file system are user errors.
 */
export function localPath(uri: string): string | null {
  if (uri.trim() === '') throw new UserError('storage URI is empty: expected a local path, file:///path or s3://bucket/prefix');
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase();
  // One-letter "schemes" are Windows drive letters (C:\data).
  if (scheme === undefined || scheme.length === 1) return checkLocal(uri, resolve(uri));
  if (scheme === 's3') return null;
  if (scheme === 'file') return checkLocal(uri, fileUriPath(uri));
  const hint = scheme === 'gs' ? ' (for Google Cloud Storage use s3://bucket/prefix with storage.endpoint https://storage.googleapis.com and HMAC keys)' : '';
  throw new UserError(`storage URI ${redactUrl(uri)}: unsupported scheme '${scheme}:'; expected a local path, file:///path or s3://bucket/prefix${hint}`);
}

function fileUriPath(uri: string): string {
  let url: URL;
  let path: string;
  try {
    url = new URL(uri);
    path = fileURLToPath(url);
  } catch (e) {
    throw new UserError(`storage URI ${redactUrl(uri)}: expected file:///absolute/path (${(e as Error).message.replace(uri, '').trim()})`);
  }
  // fileURLToPath drops both silently; a '?' or '#' in a folder name is written %3F / %23.
  const extra = [url.search && `query '${url.search}'`, url.hash && `fragment '${url.hash}'`].filter(Boolean);
  if (extra.length > 0) {
    throw new UserError(`storage URI ${redactUrl(uri)}: unexpected ${extra.join(' and ')}; a file:// URI names a path only (write '?' as %3F and '#' as %23 in a name)`);
  }
  if (!isAbsolute(path)) throw new UserError(`storage URI ${redactUrl(uri)}: expected file:///absolute/path`);
  return resolve(path);
}

/** Kernel pseudo file systems by statfs f_type (linux/magic.h): writing there never makes a file. */
const PSEUDO_FILE_SYSTEMS = new Map<number, string>([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x1cd1, 'devpts'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0x6165676c, 'pstore'],
  [0xcafe4a11, 'bpf'],
  [0x62656570, 'configfs'],
  [0xde5e81e4, 'efivarfs'],
  [0x19800202, 'mqueue'],
  [0x42494e4d, 'binfmt_misc'],
  [0xf97cff8c, 'selinuxfs'],
  [0x65735543, 'fusectl'],
]);

/**
 * Refuse a local root on a special file system (a write under /proc spins or fails in odd ways).
 * The real path counts (symlinks resolved on the part that exists). Two checks: the path prefixes
 * /proc, /sys and /dev (but /dev/shm, an ordinary tmpfs), because /dev is devtmpfs, whose statfs
 * type is tmpfs's; and statfs's f_type against the kernel's pseudo file systems, wherever mounted.
 */
function checkLocal(uri: string, path: string): string {
  let existing = path;
  let real: string | null = null;
  while (real === null) {
    try {
      real = realpathSync(existing);
    } catch {
      if (dirname(existing) === existing) return path;
      existing = dirname(existing);
    }
  }
  const full = join(real, relative(existing, path));
  const under = (root: string) => full === root || full.startsWith(root + '/');
  let kind = ['/proc', '/sys', '/dev'].find((root) => under(root) && !under('/dev/shm')) ?? null;
  if (kind === null) {
    try {
      kind = PSEUDO_FILE_SYSTEMS.get(statfsSync(real).type) ?? null;
    } catch {
      // No statfs on this platform or path: the prefixes above are the whole check.
    }
  }
  if (kind !== null) {
    const shown = full === path ? path : `${path} (really ${full})`;
    throw new UserError(`storage URI ${redactUrl(uri)}: ${shown} is on a special file system (${kind}); expected a path on a disk`);
  }
  return path;
}
