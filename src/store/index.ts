import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.ts';
import type { StorageConfig } from './config.ts';
import { LocalStore } from './local.ts';
import { describeS3, openS3Store, resolveS3Settings, type S3Tuning } from './s3.ts';
import type { Store } from './types.ts';

export { NotFoundError } from './errors.ts';
export type { Store, StoreEntry } from './types.ts';
export type { StorageConfig } from './config.ts';
export type { S3Tuning } from './s3.ts';

/**
 * Open the store rooted at `uri`: a local path (absolute or relative to the working directory),
 * file:///abs/path, or s3://bucket/prefix. `config` is the pipeline's `storage` section (used for
 * s3:// only); `tuning` holds internal knobs for tests and benchmarks.
 */
export function openStore(uri: string, config: Partial<StorageConfig> = {}, tuning: S3Tuning = {}): Store {
  const target = classify(uri);
  if (target.kind === 'local') return new LocalStore(target.path);
  return openS3Store(uri, config, tuning);
}

/** A one-line description of where a URI points, for logs (never contains credentials). */
export function describeStoreUri(uri: string, config: Partial<StorageConfig> = {}): string {
  const target = classify(uri);
  if (target.kind === 'local') return `local folder ${target.path}`;
  return describeS3(resolveS3Settings(uri, config));
}

function classify(uri: string): { kind: 'local'; path: string } | { kind: 's3' } {
  if (uri.trim() === '') throw new UserError('storage URI is empty: expected a local path, file:///path or s3://bucket/prefix');
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase();
  // One-letter "schemes" are Windows drive letters (C:\data).
  if (scheme === undefined || scheme.length === 1) return { kind: 'local', path: resolve(uri) };
  if (scheme === 's3') return { kind: 's3' };
  if (scheme === 'file') {
    let path: string;
    try {
      path = fileURLToPath(uri);
    } catch (e) {
      throw new UserError(`storage URI ${uri}: expected file:///absolute/path (${(e as Error).message})`);
    }
    if (!isAbsolute(path)) throw new UserError(`storage URI ${uri}: expected file:///absolute/path`);
    return { kind: 'local', path: resolve(path) };
  }
  const hint = scheme === 'gs' ? ' (for Google Cloud Storage use s3://bucket/prefix with storage.endpoint https://storage.googleapis.com and HMAC keys)' : '';
  throw new UserError(`storage URI ${redact(uri)}: unsupported scheme '${scheme}:'; expected a local path, file:///path or s3://bucket/prefix${hint}`);
}

function redact(uri: string): string {
  return uri.replace(/\/\/[^@/]*@/, '//***@').replace(/\?.*$/, '?***');
}
