/**
 * The node-local model cache: files fetched from a store, kept by content digest and shared by every
 * worker on the node.
 *
 *   <cache>/blobs/<sha256>   a verified file, never changed once there (renamed into place whole)
 *   <cache>/tmp/             downloads in progress (a killed download leaves only a file here)
 *   <cache>/locks/           one lock per digest, so workers on one node download a file once
 *   <cache>/trees/<key>/     model folders as the loaders expect them, hard links to blobs (index.ts)
 *   <cache>/refs/<hash>.json the blob a store object (URI, size, ETag) was last read into, so plan and
 *                            check, which list a model each time, download it again only when it changed
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.ts';
import { redactUrl } from '../store/index.ts';
import type { Store } from '../store/types.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { sha256Hex } from '../util/digest.ts';
import { log } from '../util/log.ts';

/** PAIRGEN_MODEL_CACHE, else $XDG_CACHE_HOME/pairgen/models, else ~/.cache/pairgen/models. */
export function modelCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PAIRGEN_MODEL_CACHE) return resolve(env.PAIRGEN_MODEL_CACHE);
  return join(env.XDG_CACHE_HOME ? resolve(env.XDG_CACHE_HOME) : join(homedir(), '.cache'), 'pairgen', 'models');
}

/** Ranged reads of this size: a multi-gigabyte model never sits in memory whole. */
const CHUNK_BYTES = 64 << 20;

export class ModelCache {
  readonly root: string;

  constructor(root = modelCacheDir()) {
    this.root = root;
    for (const sub of ['blobs', 'tmp', 'locks', 'trees', 'refs']) {
      try {
        mkdirSync(join(root, sub), { recursive: true });
      } catch (e) {
        throw new UserError(`model cache ${root}: cannot create ${sub}/ there (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); set PAIRGEN_MODEL_CACHE to a writable folder on this node's disk`, { cause: e });
      }
    }
  }

  blobPath(sha256: string): string {
    return join(this.root, 'blobs', sha256);
  }

  tmpPath(hint: string): string {
    return join(this.root, 'tmp', `${hint}.${process.pid}.${randomBytes(4).toString('hex')}.part`);
  }

  /**
   * The blob of a file whose digest run.json recorded, downloading it when this node has not yet.
   * Under the digest's lock: a second worker waits for the first one's download, then finds the blob.
   * A download whose bytes do not hash to `sha256` is deleted and tried once more, then refused.
   */
  async fetchKnown(store: Store, key: string, size: number, sha256: string, what: string): Promise<string> {
    const blob = this.blobPath(sha256);
    if (sizeOf(blob) === size) return blob;
    // Loaded only when a download may be needed: proper-lockfile's signal-exit hooks every fatal signal at
    // load time and re-raises it, so SIGXFSZ (a `ulimit -f` write) would kill any verb that merely imported it.
    const { default: lockfile } = await import('proper-lockfile');
    const release = await lockfile.lock(blob, {
      realpath: false,
      lockfilePath: join(this.root, 'locks', `${sha256}.lock`),
      // A holder refreshes its lock every 5 s; one not refreshed for 30 s belongs to a dead process.
      stale: 30_000,
      update: 5_000,
      // Polls the lock folder (cheap): a waiter notices a finished download within half a second.
      retries: { forever: true, minTimeout: 50, maxTimeout: 500 },
      onCompromised: (e) => log.warn(`model cache: the lock of ${sha256.slice(0, 12)} was taken over (${e.message}); the file is still verified before use`),
    });
    try {
      if (sizeOf(blob) === size) return blob;
      const now = await store.head(key);
      if (now === null) throw new UserError(`${what}: no such object (run.json recorded ${size} bytes with sha256 ${sha256}); put the planned model files back, or plan a new run`);
      if (now.size !== size) throw new UserError(`${what}: is ${now.size} bytes, run.json recorded ${size} (sha256 ${sha256}); the model was changed or damaged after planning: put the planned files back, or plan a new run`);
      for (let attempt = 1; ; attempt++) {
        const got = await this.download(store, key, size, sha256);
        if (got === sha256) return blob;
        if (attempt === 2) {
          throw new UserError(`${what}: its sha256 is ${got}, run.json recorded ${sha256} (downloaded twice); the model was changed or damaged after planning: put the planned files back, or plan a new run`);
        }
      }
    } finally {
      await release().catch(() => {});
    }
  }

  /** Download a file whose digest is not known yet (plan, check): its bytes go to the blob of their digest. */
  async fetchNew(store: Store, key: string, size: number): Promise<string> {
    return this.download(store, key, size, null);
  }

  /** The digest of what `uri` held when it last had this size and ETag, if its blob is still here. */
  knownDigest(uri: string, size: number, etag: string | undefined): string | null {
    if (!etag) return null;
    try {
      const ref = JSON.parse(readFileSync(this.refPath(uri), 'utf8')) as { size: number; etag: string; sha256: string };
      return ref.size === size && ref.etag === etag && sizeOf(this.blobPath(ref.sha256)) === size ? ref.sha256 : null;
    } catch {
      return null;
    }
  }

  async remember(uri: string, size: number, etag: string | undefined, sha256: string): Promise<void> {
    if (etag) await writeFileAtomic(this.refPath(uri), JSON.stringify({ uri: redactUrl(uri), size, etag, sha256 }), { hint: 'set PAIRGEN_MODEL_CACHE to a writable folder' });
  }

  private refPath(uri: string): string {
    return join(this.root, 'refs', `${sha256Hex(uri).slice(0, 32)}.json`);
  }

  /** Forget a blob that failed verification (the next fetch downloads it again). */
  async discard(sha256: string): Promise<void> {
    await rm(this.blobPath(sha256), { force: true });
  }

  /**
   * Stream the object into tmp/ in ranged reads, hashing as it goes; a file of the expected digest (or,
   * without one, any complete file) is renamed to its blob. Returns the digest of what was read.
   */
  private async download(store: Store, key: string, size: number, expected: string | null): Promise<string> {
    const tmp = this.tmpPath(expected ?? 'new');
    const hash = createHash('sha256');
    try {
      const file = await open(tmp, 'w');
      try {
        for (let start = 0; start < size; start += CHUNK_BYTES) {
          const bytes = await store.getRange(key, start, Math.min(size, start + CHUNK_BYTES));
          hash.update(bytes);
          await file.write(bytes);
        }
        await file.sync();
      } finally {
        await file.close();
      }
      const got = hash.digest('hex');
      if (expected === null || got === expected) await rename(tmp, this.blobPath(got));
      return got;
    } finally {
      await rm(tmp, { force: true });
    }
  }
}

function sizeOf(path: string): number | null {
  return existsSync(path) ? statSync(path).size : null;
}
