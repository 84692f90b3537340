import { join } from 'node:path';
import { UserError } from '../errors.ts';
import type { RuntimeConfig } from '../onnx/session.ts';
import type { IdentityConfig } from './config.ts';
import { ensurePackagedModels, humanModelsDir } from './convert.ts';
import { openBlazeFace, openScrfd, type FaceDetector } from './detector.ts';
import { openArcface, openFaceres, type FaceEmbedder } from './embedder.ts';

/** The TF.js files the packaged models are converted from (their digest identifies the weights). */
function packagedSources(name: string): string[] {
  const dir = humanModelsDir();
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

export function requireModel(path: string | undefined, section: string, kind: string): string {
  if (!path) throw new UserError(`identity.${section}.model: required when identity.${section}.kind is ${kind} (the path of your ${kind === 'scrfd' ? 'SCRFD' : 'ArcFace'} .onnx file)`);
  return path;
}

export async function openDetector(config: IdentityConfig, runtime: RuntimeConfig): Promise<FaceDetector> {
  const opts = { scoreThreshold: config.detector.score_threshold, nmsIou: config.detector.nms_iou, inputSize: config.detector.input_size };
  if (config.detector.kind === 'scrfd') return openScrfd(requireModel(config.detector.model, 'detector', 'scrfd'), runtime, opts);
  return openBlazeFace((await ensurePackagedModels()).detector, runtime, opts);
}

export async function openEmbedder(config: IdentityConfig, runtime: RuntimeConfig): Promise<FaceEmbedder> {
  if (config.embedder.kind === 'arcface') return openArcface(requireModel(config.embedder.model, 'embedder', 'arcface'), runtime);
  return openFaceres((await ensurePackagedModels()).faceres, runtime);
}
