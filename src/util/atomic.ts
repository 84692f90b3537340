import { randomBytes } from 'node:crypto';
import { rm, rename, writeFile } from 'node:fs/promises';
import { UserError } from '../errors.ts';

export interface AtomicWriteOptions {
  /** Names what is being written in the error, e.g. "--out" → "--out: cannot write x.png: ...". */
  context?: string;
  /** Advice appended to the error, e.g. "set PAIRGEN_CACHE to a writable folder". */
  hint?: string;
  /** File mode, e.g. 0o755 for a script. */
  mode?: number;
}

/**
 * Write a local file so that no reader ever sees half of it: write a temporary file beside it, then
 * rename. `data` may be a writer that fills the temporary path itself (e.g. an .npy writer). On failure
 * the temporary file is removed and a UserError names the file. (The object store's local backend
 * does the same with fsyncs, for durability across crashes: src/store/local.ts.)
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string | ((tmp: string) => void | Promise<void>), options: AtomicWriteOptions = {}): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    if (typeof data === 'function') await data(tmp);
    else await writeFile(tmp, data, options.mode === undefined ? undefined : { mode: options.mode });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    const context = options.context ? `${options.context}: ` : '';
    const hint = options.hint ? ` (${options.hint})` : '';
    throw new UserError(`${context}cannot write ${path}${hint}: ${(e as Error).message}`, { cause: e });
  }
}
