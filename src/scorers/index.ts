/**
 * The scorer stage (issue 11): named numbers about a generated pair beyond identity — head pose and
 * landmarks, expression, age, how much changed (whole image, face, background), image quality, safety —
 * and the source's perceptual hash. Each scorer reads the decoded images, the faces the identity stage
 * found (nothing is detected twice), and the pair's instruction and category. Only enabled scorers open
 * a model. docs/scorers.md lists every score.
 */
import { performance } from 'node:perf_hooks';
import type { EnsureOptions } from '../onnx/tfjs/cache.ts';
import type { RuntimeConfig } from '../onnx/session.ts';
import { digestFiles } from '../util/digest.ts';
import { UserError } from '../errors.ts';
import type { StageInfo } from '../types.ts';
import { SCORE_NAMES, TEXT_NAMES, type ScorerName, type ScorersConfig } from './config.ts';
import { ensureScorerModel, type ScorerModelKey } from './models.ts';
import type { PairInput, Scorer } from './scorer.ts';
import { openPoseScorer } from './pose.ts';
import { openExpressionScorer } from './expression.ts';
import { openAgeScorer } from './age.ts';
import { openEditScorer } from './edit.ts';
import { openBackgroundScorer } from './background.ts';
import { openQualityScorer } from './quality.ts';
import { openSafetyScorer } from './safety.ts';
import { openDuplicatesScorer } from './duplicates.ts';
import { clipModelFiles, openClipScorer } from './clip.ts';

export { SCORER_NAMES, SCORE_NAMES, TEXT_NAMES, DEFAULT_SCORERS, parseScorersConfig, scorersConfigSchema, scorerOf, type ScorerName, type ScorersConfig } from './config.ts';
export type { PairFaces, PairInput, Scorer, ScorerResult } from './scorer.ts';
export { headPose, landmarkDistance, type HeadPose } from './pose.ts';
export { imageQuality, type ImageQuality } from './quality.ts';
export { dHash, hammingDistance } from './duplicates.ts';
export { ensureScorerModel, ensureScorerModels, SCORER_MODELS, type ScorerModelKey } from './models.ts';

/** The enabled scorers, open. */
export interface Scorers {
  readonly scorers: Scorer[];
  /** Every ONNX file they opened (empty when only closed-form scorers are enabled). */
  readonly models: string[];
  readonly info: StageInfo;
  close(): Promise<void>;
}

export interface PairScores {
  /** Every enabled scorer's numbers, in SCORE_NAMES order. */
  scores: Record<string, number | null>;
  texts: Record<string, string | null>;
  /** Seconds each scorer took on this pair. */
  seconds: Partial<Record<ScorerName, number>>;
}

/** The model each model-backed scorer opens (the others are closed form). */
const MODEL_OF: Partial<Record<ScorerName, ScorerModelKey>> = { pose: 'facemesh', expression: 'emotion', background: 'selfie', safety: 'nsfw' };

/** The ONNX files the enabled scorers open (converted into the cache first when needed): what run.json digests. */
export async function scorerModelFiles(config: ScorersConfig, options: EnsureOptions = {}): Promise<string[]> {
  const files: string[] = [];
  for (const name of config.enabled) {
    const key = MODEL_OF[name];
    if (key) files.push(await ensureScorerModel(key, options));
    if (name === 'clip') files.push(...clipModelFiles(clipFolder(config)));
  }
  return files;
}

function clipFolder(config: ScorersConfig): string {
  if (!config.clip_model) throw new UserError('scorers.clip_model: required when clip is enabled: a CLIP ONNX export folder (docs/clip.md)');
  return config.clip_model;
}

async function open(name: ScorerName, config: ScorersConfig, runtime: RuntimeConfig, options: EnsureOptions): Promise<Scorer> {
  const model = () => ensureScorerModel(MODEL_OF[name]!, options);
  switch (name) {
    case 'pose': return openPoseScorer(await model(), runtime);
    case 'expression': return openExpressionScorer(await model(), runtime);
    case 'age': return openAgeScorer();
    case 'edit': return openEditScorer();
    case 'background': return openBackgroundScorer(await model(), runtime);
    case 'quality': return openQualityScorer();
    case 'safety': return openSafetyScorer(await model(), runtime);
    case 'duplicates': return openDuplicatesScorer();
    case 'clip': return openClipScorer(clipFolder(config), runtime);
  }
}

/**
 * Open the enabled scorers, in the config's order. A model is converted into the cache (options.cacheDir)
 * the first time a scorer needs it; a scorer that is not enabled converts and opens nothing.
 */
export async function createScorers(config: ScorersConfig, runtime: RuntimeConfig, options: EnsureOptions = {}): Promise<Scorers> {
  const scorers: Scorer[] = [];
  try {
    for (const name of config.enabled) scorers.push(await open(name, config, runtime, options));
  } catch (e) {
    await Promise.all(scorers.map((s) => s.close()));
    throw e;
  }
  const models = scorers.flatMap((s) => s.models);
  return {
    scorers,
    models,
    info: { name: `scorers:${config.enabled.join('+')}`, modelDigest: models.length ? (await digestFiles(models)).digest : '', settings: { enabled: config.enabled } },
    close: async () => {
      await Promise.all(scorers.map((s) => s.close()));
    },
  };
}

/** Run every enabled scorer on one pair, one after another, and merge their numbers and texts. */
export async function scorePair(scorers: Scorers, pair: PairInput): Promise<PairScores> {
  const out: PairScores = { scores: {}, texts: {}, seconds: {} };
  for (const scorer of scorers.scorers) {
    const start = performance.now();
    const result = await scorer.score(pair);
    out.seconds[scorer.name] = (performance.now() - start) / 1000;
    const declared = [...SCORE_NAMES[scorer.name], ...TEXT_NAMES[scorer.name]].sort().join();
    const returned = [...Object.keys(result.scores), ...Object.keys(result.texts)].sort().join();
    if (returned !== declared) throw new Error(`scorer ${scorer.name} returned [${returned}], not its declared names [${declared}]`);
    for (const n of SCORE_NAMES[scorer.name]) out.scores[n] = result.scores[n];
    for (const n of TEXT_NAMES[scorer.name]) out.texts[n] = result.texts[n];
  }
  return out;
}
