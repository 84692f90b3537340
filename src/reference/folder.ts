import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { ConfigReader, trainingSchedule } from '../teacher/schedulers/common.ts';
import { ClipTokenizer } from '../text/clip-tokenizer.ts';
import type { Bank } from './bank.ts';
import { denoiserGraph, textEncoderGraph, vaeDecoderGraph, vaeEncoderGraph } from './graphs.ts';
import { trainTextTable, writeTokenizer, type LabelledText } from './text.ts';

/**
 * Writes one reference-teacher model folder in the diffusers ONNX layout:
 *   model_index.json, scheduler/scheduler_config.json, tokenizer/, text_encoder/model.onnx,
 *   unet/model.onnx (+ config.json), vae_encoder/, vae_decoder/ (+ config.json), reference.json.
 * reference.json is ours: where the bank is and what the folder was built from (for ground truth).
 */
export const SCHEDULER_CONFIG = {
  // Ancestral (fresh noise each step from the candidate's own stream); DDIM, Euler and DPM-Solver also
  // converge to single bank items (test/reference/teacher.test.ts).
  _class_name: 'EulerAncestralDiscreteScheduler',
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  trained_betas: null,
  steps_offset: 0,
  timestep_spacing: 'trailing',
  // Zero terminal SNR: the first step starts from pure noise (ᾱ = 0). With SD's leftover signal at
  // t = 999 the bank items' norms weigh in and a few dark faces win most draws.
  rescale_betas_zero_snr: true,
  // v, not ε: at ᾱ = 0 an ε output says nothing about the image (DDIM would divide 0 by 0); v = −x̂0 there.
  prediction_type: 'v_prediction',
};

export interface ReferenceInfo {
  /** The bank folder, relative to the model folder. */
  bank: string;
  banks: string[];
  people: number;
  /** null: text-to-image; a number: the instruct folder's image-prior strength. */
  image_strength: number | null;
  /** The instruct folder's prior shares of failed edits (null: text-to-image). */
  edit_failures: EditFailures | null;
}

/**
 * Prior shares of the edits an instruct folder gets wrong: `none` ends on the unedited faces, `wrong`
 * on one of the other edits (split evenly). The rest is the asked edit. These are the priors at pure
 * noise; the shares of the demo's pairs differ (the edit starts from the source's noise), see
 * docs/reference-teacher.md.
 */
export interface EditFailures {
  none: number;
  wrong: number;
}

/** Below any logit the denoiser computes: a bank that is never drawn (finite, so 0 · it stays 0). */
const NEVER = -1e30;

/**
 * log P(bank k | the text chose bank c), row c: the asked edit keeps 1 − none − wrong, the unedited
 * bank (0) gets `none`, every other edit wrong / (K − 2). A text that chose bank 0 always gets bank 0.
 */
export function bankLogPrior(K: number, failures: EditFailures): Float32Array {
  const log = (p: number) => (p > 0 ? Math.log(p) : NEVER);
  const prior = new Float32Array(K * K).fill(NEVER);
  prior[0] = 0;
  for (let c = 1; c < K; c++) {
    for (let k = 0; k < K; k++) prior[c * K + k] = log(k === c ? 1 - failures.none - failures.wrong : k === 0 ? failures.none : failures.wrong / (K - 2));
  }
  return prior;
}

export interface FolderOptions {
  bank: Bank;
  bankDir: string;
  /** Texts labelled with the bank they ask for (the naive Bayes training set). */
  texts: LabelledText[];
  /** null: a text-to-image folder; a number: an InstructPix2Pix-style folder with that prior strength. */
  imageStrength: number | null;
  /** The instruct folder's failed edits (ignored for text-to-image; all zero: none). */
  editFailures?: EditFailures;
}

const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';

/** Write the folder; returns the tokenizer and text table it wrote (to check the texts against). */
export async function writeReferenceFolder(dir: string, opts: FolderOptions): Promise<{ tokenizer: ClipTokenizer; table: Float32Array }> {
  const { bank } = opts;
  const C = 3;
  const K = bank.banks.length;
  const sub = async (name: string, files: Record<string, Uint8Array | string>) => {
    await mkdir(join(dir, name), { recursive: true });
    for (const [f, data] of Object.entries(files)) await writeFile(join(dir, name, f), data);
  };
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, 'model_index.json'),
    json({
      _class_name: opts.imageStrength === null ? 'OnnxStableDiffusionPipeline' : 'OnnxStableDiffusionInstructPix2PixPipeline',
      _pairgen_reference: true,
      scheduler: ['diffusers', 'DDIMScheduler'],
      text_encoder: ['diffusers', 'OnnxRuntimeModel'],
      tokenizer: ['transformers', 'CLIPTokenizer'],
      unet: ['diffusers', 'OnnxRuntimeModel'],
      vae_decoder: ['diffusers', 'OnnxRuntimeModel'],
      vae_encoder: ['diffusers', 'OnnxRuntimeModel'],
      safety_checker: [null, null],
      feature_extractor: [null, null],
      requires_safety_checker: false,
    }),
  );
  await sub('scheduler', { 'scheduler_config.json': json(SCHEDULER_CONFIG) });

  await writeTokenizer(join(dir, 'tokenizer'), opts.texts.map((t) => t.text), bank.banks.slice(1));
  const tokenizer = await ClipTokenizer.fromDir(join(dir, 'tokenizer'));
  const vocabSize = Object.keys(JSON.parse(await readFile(join(dir, 'tokenizer', 'vocab.json'), 'utf8'))).length;
  const table = trainTextTable(tokenizer, vocabSize, opts.texts, K);
  await sub('text_encoder', {
    'model.onnx': textEncoderGraph(table, vocabSize, K),
    'config.json': json({ architectures: ['PairgenReferenceTextEncoder'], hidden_size: K, vocab_size: vocabSize, max_position_embeddings: 77 }),
  });

  const { alphasCumprod } = trainingSchedule(new ConfigReader(SCHEDULER_CONFIG, 'reference scheduler'), { rescale: true });
  // Ties between banks (e.g. an empty prompt) go to bank 0, the unedited faces.
  const failures = opts.imageStrength === null ? null : (opts.editFailures ?? { none: 0, wrong: 0 });
  const bankBias = new Float32Array(K);
  bankBias[0] = 1e-3;
  const unet = denoiserGraph({
    banks: bank.images,
    channels: C,
    height: bank.size,
    width: bank.size,
    alphasCumprod,
    bankBias,
    prediction: 'v_prediction',
    image: opts.imageStrength === null ? undefined : { strength: opts.imageStrength, sourceBank: 0 },
    bankPrior: failures && failures.none + failures.wrong > 0 ? bankLogPrior(K, failures) : undefined,
  });
  const inChannels = opts.imageStrength === null ? C : 2 * C;
  await sub('unet', {
    'model.onnx': unet,
    'config.json': json({ _class_name: 'PairgenReferenceDenoiser', sample_size: bank.size, in_channels: inChannels, out_channels: C, cross_attention_dim: K }),
  });
  const vaeConfig = json({ _class_name: 'AutoencoderKL', in_channels: C, out_channels: C, latent_channels: C, block_out_channels: [C], sample_size: bank.size, scaling_factor: 1.0 });
  await sub('vae_encoder', { 'model.onnx': vaeEncoderGraph(C), 'config.json': vaeConfig });
  await sub('vae_decoder', { 'model.onnx': vaeDecoderGraph(C), 'config.json': vaeConfig });
  const info: ReferenceInfo = { bank: relative(dir, opts.bankDir), banks: bank.banks, people: bank.people.length, image_strength: opts.imageStrength, edit_failures: failures };
  await writeFile(join(dir, 'reference.json'), json(info));
  return { tokenizer, table };
}
