import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../../errors.ts';
import { writeFileAtomic } from '../../util/atomic.ts';
import { sha256Hex } from '../../util/digest.ts';
import { CONVERTER_VERSION, convertTfjsGraph } from './convert.ts';
import { tfjsModelFiles } from './model.ts';

/**
 * TF.js models shipped inside npm packages, converted once to ONNX into a cache folder and reconverted
 * only when the source model or the converter changes. The face models (src/identity/convert.ts) and
 * the scorer models (src/scorers/models.ts) are kept here.
 */

/** One model to convert: where its TF.js source is and what to call the result. */
export interface ConvertSpec {
  /** Cache file stem: <cache>/<id>.onnx. */
  id: string;
  /** The npm package holding the source. */
  package: string;
  /** The source's path inside the package: a model.json, or an nsfwjs model.min.js bundle. */
  file: string;
  /** NHWC input shape; -1 = dynamic batch. */
  inputShape: number[];
}

export interface EnsureOptions {
  /** Default: env PAIRGEN_CACHE, else <repo>/.cache/models. */
  cacheDir?: string;
  /** Reconvert even when the cache is fresh. */
  force?: boolean;
  /** Called for each model: whether it was converted or already fresh. */
  onModel?: (event: { id: string; path: string; converted: boolean; bytes: number }) => void;
}

/** What the stamp beside each ONNX file records; the file is fresh when all of it still holds. */
interface Stamp {
  source: string;
  sourceSha256: string;
  converterVersion: string;
  inputShape: number[];
  onnxSha256: string;
}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export function defaultCacheDir(): string {
  return process.env.PAIRGEN_CACHE ? resolve(process.env.PAIRGEN_CACHE) : join(repoRoot, '.cache', 'models');
}

/**
 * The absolute path of `file` inside the installed npm package `pkg`. Looked up along Node's module
 * paths rather than through require.resolve, which refuses files a package's `exports` do not list.
 */
export function packagePath(pkg: string, file: string): string {
  const dirs = createRequire(import.meta.url).resolve.paths(pkg) ?? [];
  const root = dirs.map((d) => join(d, pkg)).find((d) => existsSync(join(d, 'package.json')));
  if (!root) throw new UserError(`the package ${pkg} is not installed; run \`make setup\``);
  return join(root, file);
}

/** sha256 over the model file and its weight shards, in manifest order. */
async function sourceDigest(modelPath: string): Promise<string> {
  const hash = createHash('sha256');
  for (const file of await tfjsModelFiles(modelPath)) hash.update(await readFile(file));
  return hash.digest('hex');
}

async function readStamp(path: string): Promise<Stamp | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Stamp;
  } catch {
    return null;
  }
}

async function isFresh(onnxPath: string, stamp: Stamp | null, expected: Omit<Stamp, 'onnxSha256'>): Promise<boolean> {
  if (!stamp) return false;
  if (stamp.source !== expected.source || stamp.sourceSha256 !== expected.sourceSha256 || stamp.converterVersion !== expected.converterVersion) return false;
  if (JSON.stringify(stamp.inputShape) !== JSON.stringify(expected.inputShape)) return false;
  try {
    return sha256Hex(await readFile(onnxPath)) === stamp.onnxSha256;
  } catch {
    return false;
  }
}

const writeAtomic = (path: string, data: Uint8Array | string) => writeFileAtomic(path, data, { hint: 'set PAIRGEN_CACHE to a writable folder' });

/** The cache folder (created when missing), from the options or the default. */
export async function cacheFolder(options: EnsureOptions): Promise<string> {
  const cacheDir = resolve(options.cacheDir ?? defaultCacheDir());
  try {
    await mkdir(cacheDir, { recursive: true });
  } catch (e) {
    throw new UserError(`cannot create the model cache folder ${cacheDir} (set PAIRGEN_CACHE to a writable folder): ${(e as Error).message}`, { cause: e });
  }
  return cacheDir;
}

/** The converted model's path in `cacheDir`, converting it first when missing or stale. */
export async function ensureConverted(spec: ConvertSpec, cacheDir: string, options: EnsureOptions = {}): Promise<string> {
  const source = packagePath(spec.package, spec.file);
  const onnxPath = join(cacheDir, `${spec.id}.onnx`);
  const stampPath = `${onnxPath}.json`;
  const expected = { source: `${spec.package}/${spec.file}`, sourceSha256: await sourceDigest(source), converterVersion: CONVERTER_VERSION, inputShape: spec.inputShape };
  if (!options.force && (await isFresh(onnxPath, await readStamp(stampPath), expected))) {
    options.onModel?.({ id: spec.id, path: onnxPath, converted: false, bytes: 0 });
    return onnxPath;
  }
  const bytes = await convertTfjsGraph(source, { inputShape: spec.inputShape });
  // The stamp goes last: a crash between the two renames leaves a stale stamp, so the next run redoes it.
  await writeAtomic(onnxPath, bytes);
  const stamp: Stamp = { ...expected, onnxSha256: sha256Hex(bytes) };
  await writeAtomic(stampPath, JSON.stringify(stamp, null, 2) + '\n');
  options.onModel?.({ id: spec.id, path: onnxPath, converted: true, bytes: bytes.length });
  return onnxPath;
}
