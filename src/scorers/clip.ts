/**
 * Text fidelity with a CLIP model the user brings (issue 11): InstructPix2Pix's numbers — how well each
 * image matches its caption, whether the image moved in CLIP space the way the caption did, and how
 * alike the two images are. docs/clip.md says where to get weights and what the numbers mean.
 *
 * The model folder is an ONNX export in Optimum's layout: either the two towers (text_model.onnx,
 * vision_model.onnx — transformers.js's layout, also under onnx/) or the whole model as
 * `optimum-cli export onnx` writes it (model.onnx), beside CLIP's tokenizer files (vocab.json,
 * merges.txt, tokenizer_config.json) and, when present, config.json and preprocessor_config.json.
 */
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { OnnxModel } from '../onnx/model.ts';
import type { RuntimeConfig } from '../onnx/session.ts';
import { ClipTokenizer } from '../text/clip-tokenizer.ts';
import type { RgbImage } from '../types.ts';
import type { PairInput, ScorerResult } from './scorer.ts';

/** A pair with the captions of its two images: the prompt the source was made from and the edit's target prompt. */
export type ClipPairInput = PairInput;

export const CLIP_SCORE_NAMES = ['clip.source_caption', 'clip.edited_caption', 'clip.directional', 'clip.image'] as const;

// ---------------------------------------------------------------------------------------------------
// Image preprocessing, as CLIPImageProcessor's PIL path (transformers 4.x CLIPImageProcessor, 5.x
// CLIPImageProcessorPil, and OpenAI's own preprocess): resize with Pillow's filter so the shortest side
// is `size`, centre crop, rescale to 0..1, normalise per channel.
// ---------------------------------------------------------------------------------------------------

export interface ClipPreprocess {
  /** Resize so the shorter side has this length (aspect kept), or to exactly this size; null: no resize. */
  resize: { shortestEdge: number } | { width: number; height: number } | null;
  crop: { width: number; height: number } | null;
  filter: 'bicubic' | 'bilinear';
  rescale: number;
  mean: [number, number, number];
  std: [number, number, number];
}

const OPENAI_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
const OPENAI_STD: [number, number, number] = [0.26862954, 0.2613026, 0.2757771];
/** PIL's resample codes, as preprocessor_config.json's `resample` stores them. */
const PIL_FILTERS: Record<number, ClipPreprocess['filter']> = { 2: 'bilinear', 3: 'bicubic' };

/** Pillow's filters (Resample.c): support radius and kernel; bicubic is Keys' cubic with a = -0.5. */
const FILTERS = {
  bilinear: { support: 1, kernel: (x: number) => (Math.abs(x) < 1 ? 1 - Math.abs(x) : 0) },
  bicubic: {
    support: 2,
    kernel: (x: number) => {
      const a = -0.5;
      x = Math.abs(x);
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
};

/** Pillow's 8-bit fixed point: coefficients scaled by 2^22, rounding half away from zero. */
const PRECISION = 2 ** 22;

/** Pillow's weights along one axis: for each output pixel, its first input pixel and its fixed-point weights. */
interface AxisWeights {
  outSize: number;
  first: Int32Array;
  count: Int32Array;
  /** `taps` slots per output pixel, the first `count` used. */
  weights: Float64Array;
  taps: number;
}

/**
 * Pillow's precompute_coeffs + normalize_coeffs_8bpc: the filter widened by the downscale factor
 * (antialiasing), weights normalised per output pixel, then rounded to fixed point.
 */
function axisWeights(inSize: number, outSize: number, filter: ClipPreprocess['filter']): AxisWeights {
  const { support: radius, kernel } = FILTERS[filter];
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = radius * filterScale;
  const step = 1 / filterScale; // multiplied, not divided, as Pillow does: the last bit decides some roundings
  const taps = Math.ceil(support) * 2 + 1;
  const out: AxisWeights = { outSize, first: new Int32Array(outSize), count: new Int32Array(outSize), weights: new Float64Array(outSize * taps), taps };
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const first = Math.max(0, Math.trunc(center - support + 0.5));
    const count = Math.min(inSize, Math.trunc(center + support + 0.5)) - first;
    const w = Array.from({ length: count }, (_, k) => kernel((k + first - center + 0.5) * step));
    const total = w.reduce((sum, v) => sum + v, 0);
    for (let k = 0; k < count; k++) {
      const normalised = total !== 0 ? w[k] / total : w[k];
      out.weights[o * taps + k] = Math.trunc(normalised * PRECISION + (normalised < 0 ? -0.5 : 0.5));
    }
    out.first[o] = first;
    out.count[o] = count;
  }
  return out;
}

/**
 * One pass along an axis over `lines` lines of interleaved RGB: input pixel i of line l is at
 * l·srcLine + i·srcStep, output pixel o at l·dstLine + o·dstStep. Each sum is rounded and clipped to
 * 0..255, as Pillow does after each pass.
 */
function resamplePass(src: Uint8Array, dst: Uint8Array, a: AxisWeights, lines: number, srcLine: number, srcStep: number, dstLine: number, dstStep: number): void {
  for (let l = 0; l < lines; l++) {
    for (let o = 0; o < a.outSize; o++) {
      for (let c = 0; c < 3; c++) {
        let sum = PRECISION / 2;
        let at = l * srcLine + a.first[o] * srcStep + c;
        for (let k = 0; k < a.count[o]; k++, at += srcStep) sum += src[at] * a.weights[o * a.taps + k];
        dst[l * dstLine + o * dstStep + c] = Math.min(255, Math.max(0, Math.floor(sum / PRECISION)));
      }
    }
  }
}

/** Resize 8-bit RGB exactly as Pillow's Image.resize: a horizontal pass, then a vertical one (each only when its size changes). */
export function resizeLikePil(img: RgbImage, width: number, height: number, filter: ClipPreprocess['filter']): RgbImage {
  let wide = img.data;
  if (width !== img.width) {
    wide = new Uint8Array(width * img.height * 3);
    resamplePass(img.data, wide, axisWeights(img.width, width, filter), img.height, img.width * 3, 3, width * 3, 3);
  }
  let out = wide;
  if (height !== img.height) {
    out = new Uint8Array(width * height * 3);
    resamplePass(wide, out, axisWeights(img.height, height, filter), width, 3, width * 3, 3, width * 3);
  }
  return { width, height, data: out === img.data ? img.data.slice() : out };
}

/** The model's pixel_values for one image: [3, height, width] (CHW), preprocessed as CLIPImageProcessor does. */
export function clipPixels(img: RgbImage, p: ClipPreprocess): { data: Float32Array; width: number; height: number } {
  let resized = img;
  if (p.resize) {
    let [w, h] = 'shortestEdge' in p.resize ? [0, 0] : [p.resize.width, p.resize.height];
    if ('shortestEdge' in p.resize) {
      // transformers' get_resize_output_image_size: the longer side is truncated, not rounded.
      const s = p.resize.shortestEdge;
      [w, h] = img.width <= img.height ? [s, Math.trunc((s * img.height) / img.width)] : [Math.trunc((s * img.width) / img.height), s];
    }
    if (w !== img.width || h !== img.height) resized = resizeLikePil(img, w, h, p.filter);
  }
  const { width: cw, height: ch } = p.crop ?? resized;
  // transformers' center_crop: offset floor((size - crop) / 2); a crop larger than the image is padded with 0.
  const top = Math.floor((resized.height - ch) / 2);
  const left = Math.floor((resized.width - cw) / 2);
  const plane = cw * ch;
  const data = new Float32Array(3 * plane);
  for (let y = 0; y < ch; y++) {
    for (let x = 0; x < cw; x++) {
      const sy = y + top, sx = x + left;
      const inside = sy >= 0 && sy < resized.height && sx >= 0 && sx < resized.width;
      for (let c = 0; c < 3; c++) {
        const v = inside ? resized.data[(sy * resized.width + sx) * 3 + c] * p.rescale : 0;
        data[c * plane + y * cw + x] = (v - p.mean[c]) / p.std[c];
      }
    }
  }
  return { data, width: cw, height: ch };
}

// ---------------------------------------------------------------------------------------------------
// The model folder
// ---------------------------------------------------------------------------------------------------

type Json = Record<string, unknown>;

async function readJson(folder: string, name: string): Promise<Json | null> {
  const path = join(folder, name);
  if (!existsSync(path)) return null;
  let value: unknown;
  try {
    value = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new UserError(`CLIP model: ${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new UserError(`CLIP model: ${path} must be a JSON object`);
  return value as Json;
}

/** preprocessor_config.json (both the old `size: 224` and the newer `{shortest_edge}` forms); defaults are CLIP's at the model's image size. */
export function parsePreprocess(config: Json | null, imageSize: number, where: string): ClipPreprocess {
  const c = config ?? {};
  const fail = (key: string, expected: string) => new UserError(`CLIP model: "${key}" in ${where} must be ${expected}, got ${JSON.stringify(c[key])}`);
  const positive = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v > 0;
  const size = (key: string, value: unknown): ClipPreprocess['resize'] => {
    if (positive(value)) return { shortestEdge: value as number };
    const v = (value ?? {}) as Json;
    if (positive(v.shortest_edge)) return { shortestEdge: v.shortest_edge as number };
    if (positive(v.height) && positive(v.width)) return { height: v.height as number, width: v.width as number };
    throw fail(key, 'a size (an integer, {shortest_edge} or {height, width})');
  };
  const triple = (key: string, def: [number, number, number]): [number, number, number] => {
    const v = c[key] ?? def;
    if (typeof v === 'number') return [v, v, v];
    if (!Array.isArray(v) || v.length !== 3 || v.some((x) => typeof x !== 'number')) throw fail(key, 'three numbers (R, G, B)');
    return v as [number, number, number];
  };
  const resample = c.resample ?? 3;
  if (typeof resample !== 'number' || !PIL_FILTERS[resample]) throw fail('resample', '2 (bilinear) or 3 (bicubic)');
  const resize = c.do_resize === false ? null : size('size', c.size ?? imageSize);
  let crop: ClipPreprocess['crop'] = null;
  if (c.do_center_crop !== false) {
    const s = size('crop_size', c.crop_size ?? imageSize);
    crop = s && 'shortestEdge' in s ? { width: s.shortestEdge, height: s.shortestEdge } : s;
  }
  const rescale = c.do_rescale === false ? 1 : (c.rescale_factor ?? 1 / 255);
  if (typeof rescale !== 'number') throw fail('rescale_factor', 'a number');
  const normalise = c.do_normalize !== false;
  return {
    resize, crop, filter: PIL_FILTERS[resample], rescale,
    mean: normalise ? triple('image_mean', OPENAI_MEAN) : [0, 0, 0],
    std: normalise ? triple('image_std', OPENAI_STD) : [1, 1, 1],
  };
}

/** Where the ONNX files are, in the order they are looked for. */
const LAYOUTS = [
  { text: 'text_model.onnx', vision: 'vision_model.onnx' },
  { text: 'onnx/text_model.onnx', vision: 'onnx/vision_model.onnx' },
  { whole: 'model.onnx' },
  { whole: 'onnx/model.onnx' },
] as const;

/**
 * The ONNX files of the CLIP export in `folder` (two towers, or the whole model), found in LAYOUTS order:
 * what the scorer opens and what a run digests. A missing folder or model is a user error.
 */
export function clipModelFiles(folder: string): string[] {
  if (!existsSync(folder) || !statSync(folder).isDirectory()) throw new UserError(`CLIP model: folder ${folder} not found`);
  const layout = LAYOUTS.find((l) => Object.values(l).every((f) => existsSync(join(folder, f))));
  if (!layout) {
    throw new UserError(`CLIP model: ${folder} has neither text_model.onnx + vision_model.onnx (the towers, also under onnx/) nor model.onnx (optimum-cli export onnx); see docs/clip.md`);
  }
  return Object.values(layout).map((f) => join(folder, f));
}

function requireIo(model: OnnxModel, inputs: string[], outputs: string[], hint: string): void {
  for (const name of inputs) if (!model.inputs.has(name)) throw new UserError(`CLIP model: ${model.path} has no input ${name} (it has: ${[...model.inputs.keys()].join(', ')}); ${hint}`);
  for (const name of outputs) if (!model.outputs.has(name)) throw new UserError(`CLIP model: ${model.path} has no output ${name} (it has: ${[...model.outputs.keys()].join(', ')}); ${hint}`);
}

/** A difference of unit embeddings shorter than this is float32 noise (~1e-7 a component), not a change. */
const NO_CHANGE = 1e-6;

const cosine = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  // 0, not NaN or noise, when a side is (nearly) the zero vector: an unchanged image or caption has no direction.
  return aa > NO_CHANGE ** 2 && bb > NO_CHANGE ** 2 ? ab / Math.sqrt(aa * bb) : 0;
};

const unit = (v: ArrayLike<number>): Float64Array => {
  let n = 0;
  for (let i = 0; i < v.length; i++) n += v[i] * v[i];
  return Float64Array.from(v, (x) => x / Math.sqrt(n));
};

const minus = (a: Float64Array, b: Float64Array) => a.map((x, i) => x - b[i]);

/**
 * InstructPix2Pix's CLIP numbers (its metrics/clip_similarity.py) over embeddings: cosines of the
 * unit-length image and text embeddings, and of the differences of unit embeddings for the direction.
 */
export function clipScores(sourceImage: ArrayLike<number>, editedImage: ArrayLike<number>, sourceText: ArrayLike<number> | null, targetText: ArrayLike<number> | null): Record<(typeof CLIP_SCORE_NAMES)[number], number | null> {
  const i0 = unit(sourceImage), i1 = unit(editedImage);
  const t0 = sourceText && unit(sourceText), t1 = targetText && unit(targetText);
  return {
    'clip.source_caption': t0 ? cosine(i0, t0) : null,
    'clip.edited_caption': t1 ? cosine(i1, t1) : null,
    'clip.directional': t0 && t1 ? cosine(minus(i1, i0), minus(t1, t0)) : null,
    'clip.image': cosine(i0, i1),
  };
}

/**
 * The `clip` scorer: InstructPix2Pix's four numbers per pair (docs/clip.md). A caption that is empty gives
 * null for the numbers that need it. Text embeddings are cached per prompt (the same prompts recur over
 * many seeds) when the towers are separate files.
 */
export class ClipScorer {
  readonly name = 'clip';
  private readonly textCache = new Map<string, Float32Array>();

  private constructor(
    readonly folder: string,
    private readonly towers: { text: OnnxModel; vision: OnnxModel } | { whole: OnnxModel },
    readonly tokenizer: ClipTokenizer,
    readonly preprocess: ClipPreprocess,
    /** Tokens per prompt fed to the text model (padded with the pad token, attention mask 0 there). */
    readonly sequenceLength: number,
  ) {}

  static async open(folder: string, runtime: RuntimeConfig): Promise<ClipScorer> {
    const files = clipModelFiles(folder);
    const tokenizer = await ClipTokenizer.fromDir(folder);
    const config = await readJson(folder, 'config.json');
    const textConfig = (config?.text_config ?? {}) as Json;
    const visionConfig = (config?.vision_config ?? {}) as Json;
    const opened: OnnxModel[] = [];
    try {
      let towers: { text: OnnxModel; vision: OnnxModel } | { whole: OnnxModel };
      if (files.length === 1) {
        opened.push(await OnnxModel.open(files[0], runtime));
        towers = { whole: opened[0] };
        requireIo(opened[0], ['input_ids', 'pixel_values'], ['text_embeds', 'image_embeds'], 'expected a CLIP export by optimum-cli (task zero-shot-image-classification)');
      } else {
        for (const file of files) opened.push(await OnnxModel.open(file, runtime));
        towers = { text: opened[0], vision: opened[1] };
        requireIo(opened[0], ['input_ids'], ['text_embeds'], 'expected CLIP\'s text tower with its projection (CLIPTextModelWithProjection)');
        requireIo(opened[1], ['pixel_values'], ['image_embeds'], 'expected CLIP\'s vision tower with its projection (CLIPVisionModelWithProjection)');
      }
      const textModel = 'whole' in towers ? towers.whole : towers.text;
      const visionModel = 'whole' in towers ? towers.whole : towers.vision;
      const fixedLength = textModel.input('input_ids').shape[1];
      const positions = typeof textConfig.max_position_embeddings === 'number' ? textConfig.max_position_embeddings : Infinity;
      const sequenceLength = typeof fixedLength === 'number' && fixedLength > 0 ? fixedLength : Math.min(tokenizer.modelMaxLength, positions);
      const pixelShape = visionModel.input('pixel_values').shape;
      const imageSize = typeof visionConfig.image_size === 'number' ? visionConfig.image_size : typeof pixelShape[2] === 'number' ? pixelShape[2] : 224;
      const preprocess = parsePreprocess(await readJson(folder, 'preprocessor_config.json'), imageSize, join(folder, 'preprocessor_config.json'));
      return new ClipScorer(folder, towers, tokenizer, preprocess, sequenceLength);
    } catch (e) {
      await Promise.all(opened.map((m) => m.release()));
      throw e;
    }
  }

  get models(): string[] {
    return 'whole' in this.towers ? [this.towers.whole.path] : [this.towers.text.path, this.towers.vision.path];
  }

  private textFeeds(prompts: string[]) {
    const n = prompts.length, length = this.sequenceLength;
    const ids = new Array<number>(n * length).fill(this.tokenizer.padId);
    const mask = new Array<number>(n * length).fill(0);
    prompts.forEach((p, i) => {
      this.tokenizer.encode(p, { maxLength: length }).ids.forEach((id, j) => {
        ids[i * length + j] = id;
        mask[i * length + j] = 1;
      });
    });
    const model = 'whole' in this.towers ? this.towers.whole : this.towers.text;
    return {
      input_ids: { data: ids, dims: [n, length] },
      ...(model.inputs.has('attention_mask') ? { attention_mask: { data: mask, dims: [n, length] } } : {}),
    };
  }

  private imageFeeds(images: RgbImage[]) {
    const pixels = images.map((img) => clipPixels(img, this.preprocess));
    const { width, height } = pixels[0];
    const data = new Float32Array(pixels.length * 3 * width * height);
    pixels.forEach((p, i) => data.set(p.data, i * p.data.length));
    return { pixel_values: { data, dims: [images.length, 3, height, width] } };
  }

  private static rows(t: { data: Float32Array; dims: number[] }): Float32Array[] {
    const dim = t.dims[t.dims.length - 1];
    return Array.from({ length: t.dims[0] }, (_, i) => t.data.slice(i * dim, (i + 1) * dim));
  }

  /** The projected text embedding of each prompt (text_embeds: unit length from the whole model, as projected from the towers). */
  async embedTexts(prompts: string[]): Promise<Float32Array[]> {
    if ('whole' in this.towers) {
      // The whole model always runs both towers: give it one black image.
      const black = this.imageFeeds([{ width: 1, height: 1, data: new Uint8Array(3) }]);
      return ClipScorer.rows((await this.towers.whole.run({ ...this.textFeeds(prompts), ...black }, ['text_embeds']))[0]);
    }
    const todo = [...new Set(prompts.filter((p) => !this.textCache.has(p)))];
    if (todo.length) {
      const embeds = ClipScorer.rows((await this.towers.text.run(this.textFeeds(todo), ['text_embeds']))[0]);
      todo.forEach((p, i) => this.textCache.set(p, embeds[i]));
      while (this.textCache.size > 256) this.textCache.delete(this.textCache.keys().next().value as string);
    }
    return prompts.map((p) => this.textCache.get(p)!);
  }

  /** The projected image embedding of each image (image_embeds, unit length from the whole model). */
  async embedImages(images: RgbImage[]): Promise<Float32Array[]> {
    if ('whole' in this.towers) {
      return ClipScorer.rows((await this.towers.whole.run({ ...this.textFeeds(['']), ...this.imageFeeds(images) }, ['image_embeds']))[0]);
    }
    return ClipScorer.rows((await this.towers.vision.run(this.imageFeeds(images), ['image_embeds']))[0]);
  }

  async score(pair: ClipPairInput): Promise<ScorerResult> {
    const [sourcePrompt, targetPrompt] = [pair.sourcePrompt ?? '', pair.targetPrompt ?? ''];
    const prompts = [sourcePrompt, targetPrompt].filter((p) => p.trim() !== '');
    let images: Float32Array[], texts: Float32Array[];
    if ('whole' in this.towers) {
      const feeds = { ...this.textFeeds(prompts.length ? prompts : ['']), ...this.imageFeeds([pair.source, pair.edited]) };
      const [t, i] = await this.towers.whole.run(feeds, ['text_embeds', 'image_embeds']);
      [texts, images] = [ClipScorer.rows(t), ClipScorer.rows(i)];
    } else {
      [texts, images] = [await this.embedTexts(prompts), await this.embedImages([pair.source, pair.edited])];
    }
    const text = (p: string) => (p.trim() === '' ? null : texts[prompts.indexOf(p)]);
    return { scores: clipScores(images[0], images[1], text(sourcePrompt), text(targetPrompt)), texts: {} };
  }

  async close(): Promise<void> {
    await Promise.all(('whole' in this.towers ? [this.towers.whole] : [this.towers.text, this.towers.vision]).map((m) => m.release()));
  }
}

/** Open the CLIP model folder at `folder` (docs/clip.md); problems with it are user errors naming the file. */
export function openClipScorer(folder: string, runtime: RuntimeConfig): Promise<ClipScorer> {
  return ClipScorer.open(folder, runtime);
}
