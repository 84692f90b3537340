import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UserError } from '../errors.ts';
import { NotFoundError } from './errors.ts';
import { checkKey, checkPrefix, checkRange, compareKeys } from './keys.ts';
import type { ConditionalWrites, PutIfAbsentResult, Store, StoreEntry } from './types.ts';

/** Temp files carry this marker; list() never shows them. */
const TEMP_MARK = '.pairgen-tmp-';

/**
 * A store rooted at a local folder. Writes go to a temp file in the target folder, are fsynced,
 * then renamed over the key (atomic on POSIX), then the folder is fsynced so the rename survives a crash.
 */
export class LocalStore implements Store {
  readonly uri: string;
  constructor(private readonly root: string) {
    this.uri = root;
  }

  private path(key: string): string {
    return join(this.root, ...checkKey(key).split('/'));
  }

  async put(key: string, body: Uint8Array | string): Promise<void> {
    await this.writeAtomically(key, (tmp) => writeSynced(tmp, body));
  }

  /**
   * rename() would replace an existing key, and open(key, 'wx') would let a reader see a half-written
   * file. So the bytes go to a temp file first, then link() gives them the key's name: link fails with
   * EEXIST when the name is taken, and the kernel makes that check and the naming one step, so of two
   * racing calls exactly one wins. The temp name is unlinked either way (the key keeps the data).
   */
  async putIfAbsent(key: string, body: Uint8Array | string): Promise<PutIfAbsentResult> {
    const target = this.path(key);
    const tmp = tempName(target);
    let result: PutIfAbsentResult = 'written';
    try {
      await mkdir(dirname(target), { recursive: true });
      await writeSynced(tmp, body);
      try {
        await link(tmp, target);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        result = 'exists';
      }
    } catch (e) {
      throw this.explain(e, key);
    } finally {
      await unlink(tmp).catch(() => {});
    }
    if (result === 'written') await syncFolder(dirname(target));
    return result;
  }

  async conditionalWrites(): Promise<ConditionalWrites> {
    return 'atomic';
  }

  async putStream(key: string, body: Readable): Promise<void> {
    await this.writeAtomically(key, async (tmp) => {
      await pipeline(body, createWriteStream(tmp, { flags: 'wx' }));
      const file = await open(tmp, 'r+');
      try {
        await file.sync();
      } finally {
        await file.close();
      }
    });
  }

  private async writeAtomically(key: string, write: (tmp: string) => Promise<void>): Promise<void> {
    const target = this.path(key);
    const dir = dirname(target);
    const tmp = tempName(target);
    try {
      await mkdir(dir, { recursive: true });
      await write(tmp);
      await rename(tmp, target);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw this.explain(e, key);
    }
    await syncFolder(dir);
  }

  /** Errors the user can fix (an unwritable or read-only folder, a file where a folder should be) become UserErrors. */
  private explain(e: unknown, key: string): unknown {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
      return new UserError(`${this.uri}: cannot write '${key}' (${code}): check that the folder exists with write permission and is not on a read-only file system`, { cause: e });
    }
    if (code === 'ENOTDIR' || code === 'EEXIST') {
      return new UserError(`${this.uri}: cannot write '${key}' (${code}): a file stands where a folder of this path should be`, { cause: e });
    }
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      return new UserError(`${this.uri}: cannot write '${key}' (${code}): the disk or quota is full`, { cause: e });
    }
    if (code === 'EFBIG') {
      return new UserError(`${this.uri}: cannot write '${key}' (${code}): the file is larger than the file system or the process's file-size limit (ulimit -f) allows`, { cause: e });
    }
    return e;
  }

  async get(key: string): Promise<Uint8Array> {
    const body = await this.getIfExists(key);
    if (body === null) throw new NotFoundError(this.uri, key);
    return body;
  }

  async getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    checkRange(start, end);
    let file;
    try {
      file = await open(this.path(key), 'r');
    } catch (e) {
      if (isMissing(e)) throw new NotFoundError(this.uri, key);
      throw e;
    }
    try {
      const out = new Uint8Array(end - start);
      const { bytesRead } = await file.read(out, 0, out.length, start);
      if (bytesRead !== out.length) throw new Error(`${this.uri}: range ${start}-${end} of '${key}' is past its end (${start + bytesRead})`);
      return out;
    } finally {
      await file.close();
    }
  }

  async getIfExists(key: string): Promise<Uint8Array | null> {
    try {
      return new Uint8Array(await readFile(this.path(key)));
    } catch (e) {
      if (isMissing(e)) return null;
      throw e;
    }
  }

  async head(key: string): Promise<{ size: number } | null> {
    try {
      const s = await stat(this.path(key));
      return s.isFile() ? { size: s.size } : null;
    } catch (e) {
      if (isMissing(e)) return null;
      throw e;
    }
  }

  async *list(prefix: string): AsyncIterable<StoreEntry> {
    checkPrefix(prefix);
    yield* this.walk('', prefix);
  }

  /** Files under folder `rel` (a key prefix ending in '/' or ''), in key order, filtered by prefix. */
  private async *walk(rel: string, prefix: string): AsyncGenerator<StoreEntry> {
    let names: string[];
    try {
      names = await readdir(join(this.root, rel));
    } catch (e) {
      if (isMissing(e)) return;
      throw e;
    }
    const children: { key: string; sortKey: string; size: number; isDir: boolean }[] = [];
    for (const name of names) {
      if (name.includes(TEMP_MARK)) continue;
      const key = rel + name;
      // Only look at entries that can hold keys starting with prefix.
      if (!key.startsWith(prefix) && !prefix.startsWith(key + '/')) continue;
      const s = await stat(join(this.root, key)).catch((e) => (isMissing(e) ? null : Promise.reject(e)));
      if (!s || !(s.isFile() || s.isDirectory())) continue;
      // A folder sorts as "name/": its keys all start with that, which gives global key order.
      children.push({ key, sortKey: s.isDirectory() ? key + '/' : key, size: s.size, isDir: s.isDirectory() });
    }
    children.sort((a, b) => compareKeys(a.sortKey, b.sortKey));
    for (const c of children) {
      if (c.isDir) yield* this.walk(c.key + '/', prefix);
      else if (c.key.startsWith(prefix)) yield { key: c.key, size: c.size };
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await unlink(this.path(key));
    } catch (e) {
      if (!isMissing(e)) throw e;
    }
  }

  child(prefix: string): Store {
    return new LocalStore(join(this.root, ...checkKey(prefix.replace(/\/+$/, '')).split('/')));
  }
}

function tempName(target: string): string {
  return `${target}${TEMP_MARK}${process.pid}-${randomBytes(6).toString('hex')}`;
}

async function writeSynced(path: string, body: Uint8Array | string): Promise<void> {
  const file = await open(path, 'wx');
  try {
    await file.writeFile(body);
    await file.sync();
  } finally {
    await file.close();
  }
}

/** fsync a folder so a new name in it survives a crash. */
async function syncFolder(dir: string): Promise<void> {
  const folder = await open(dir, 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}

function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
}
