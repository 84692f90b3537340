import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { log } from '../util/log.ts';
import type { TeacherConfig } from './config.ts';
import { modelFiles, teacherFolders, vaeConfigFile } from './model.ts';

/**
 * A teacher's memory estimate, from which a worker with a `runtime.max_memory` budget picks its batch
 * (the sessions' memory settings are TEACHER_SESSION_MEMORY in model.ts). docs/memory.md has the
 * measurements behind it.
 */

const MB = 1024 * 1024;
const GB = 1024 * MB;

/** `runtime.max_memory` ("12GB", "12 GiB", "9000MB"; GB = GiB = 2^30 bytes) in bytes. */
export function parseMemorySize(text: string, key = 'runtime.max_memory'): number {
  const m = /^([0-9]+(?:\.[0-9]+)?) ?(MB|MiB|GB|GiB)$/.exec(text);
  if (!m) throw new UserError(`${key}: ${JSON.stringify(text)} is not a size; expected e.g. 12GB, 12 GiB or 9000MB`);
  const bytes = Number(m[1]) * (m[2].startsWith('G') ? GB : MB);
  if (!(bytes > 0)) throw new UserError(`${key}: ${text} must be more than 0`);
  return bytes;
}

/** What the estimate is made of, in bytes. */
export interface MemoryEstimate {
  /** Node, V8 and onnxruntime before any model, plus the worker's own buffers. */
  base: number;
  /** The model files the teacher opens (weights are held once per process, as loaded). */
  weights: number;
  /** Activations of one UNet batch row at the output size (one image, one guidance branch). */
  unetRow: number;
  /** UNet batch rows per candidate: images drawn together x guidance branches. */
  rowsPerCandidate: number;
  /** Activations of one VAE call (the VAE runs one image at a time). */
  vae: number;
}

/** Calibration against measured peaks (docs/memory.md): bytes live per attention score, per feature-map value. */
const ATTENTION_COPIES = 2;
const FEATURE_MAPS = 48;
const VAE_FEATURE_MAPS = 22;
const BASE = 450 * MB;

/** Estimated peak of a worker whose teacher runs `batch` candidates per UNet call. */
export function estimatedPeak(e: MemoryEstimate, batch: number): number {
  return e.base + e.weights + Math.max(batch * e.rowsPerCandidate * e.unetRow, e.vae);
}

/**
 * The most candidates per UNet call (at most `maxBatch`) whose estimated peak fits `budget`; a
 * UserError when not even one fits.
 */
export function batchForBudget(e: MemoryEstimate, budget: number, maxBatch: number, key = 'runtime.max_memory'): number {
  let batch = 0;
  while (batch < maxBatch && estimatedPeak(e, batch + 1) <= budget) batch++;
  if (batch === 0) {
    const gb = (b: number) => `${(b / GB).toFixed(1)} GB`;
    throw new UserError(
      `${key}: ${gb(budget)} is less than the teacher's estimated peak for one candidate per call, ${gb(estimatedPeak(e, 1))} ` +
        `(weights ${gb(e.weights)}, UNet activations ${gb(e.rowsPerCandidate * e.unetRow)}, VAE ${gb(e.vae)}, runtime ${gb(e.base)}); raise it, or lower teacher.height/width`,
    );
  }
  return batch;
}

function readConfig(path: string): Record<string, unknown> | null {
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

const numbers = (v: unknown): number[] | null => (Array.isArray(v) && v.every((x) => typeof x === 'number') ? v : null);

/**
 * Activations of one UNet batch row at latents h x w, from unet/config.json: the attention scores of
 * the largest self-attention (heads x tokens^2, a few copies live at once: scores, softmax, its output)
 * or the feature maps (channels x h x w, the skip connections and a conv's working set), whichever is
 * larger. Without a readable config: SD 1.x's layout (8 heads attending at full latent resolution, 320 channels).
 */
export function unetRowBytes(unetConfig: Record<string, unknown> | null, h: number, w: number): number {
  const blocks = Array.isArray(unetConfig?.down_block_types) ? (unetConfig.down_block_types as string[]) : ['CrossAttnDownBlock2D'];
  const channels = numbers(unetConfig?.block_out_channels) ?? [320];
  // diffusers reads attention_head_dim as the number of heads when num_attention_heads is not set.
  const headsOf = (i: number): number => {
    const v = unetConfig?.num_attention_heads ?? unetConfig?.attention_head_dim ?? 8;
    return typeof v === 'number' ? v : (numbers(v)?.[i] ?? 8);
  };
  let attention = 0;
  blocks.forEach((type, i) => {
    if (!type.includes('CrossAttn')) return;
    const tokens = Math.ceil(h / 2 ** i) * Math.ceil(w / 2 ** i);
    attention = Math.max(attention, ATTENTION_COPIES * headsOf(i) * tokens * tokens * 4);
  });
  const features = FEATURE_MAPS * channels[0] * h * w * 4;
  return attention + features;
}

/**
 * Activations of one VAE decode (or encode) of an H x W image: the full-resolution feature maps, among
 * them a 3x3 convolution's unfolded input (9 x twice the first-level channels per pixel), and the mid-block attention.
 */
export function vaeBytes(vaeConfig: Record<string, unknown> | null, height: number, width: number): number {
  const channels = numbers(vaeConfig?.block_out_channels) ?? [128, 256, 512, 512];
  const f = 2 ** (channels.length - 1);
  const tokens = Math.ceil(height / f) * Math.ceil(width / f);
  return VAE_FEATURE_MAPS * channels[0] * height * width * 4 + ATTENTION_COPIES * tokens * tokens * 4;
}

/**
 * The estimate for a teacher config at its output size, from the model folders' files and configs
 * alone (no session is opened): the same config and models give the same estimate, so the batch a
 * budget picks, and with it the output, is reproducible.
 */
export function estimateTeacherMemory(config: TeacherConfig, size: { height: number; width: number }): MemoryEstimate {
  const folders = teacherFolders(config);
  const weights = folders.flatMap((f) => modelFiles(f.dir, f.parts)).filter((p) => /\.onnx(_data)?$|\.onnx\.data$|\.pb$|\.bin$/.test(p)).reduce((a, p) => a + statSync(p).size, 0);
  let unetRow = 0;
  let vae = 0;
  for (const { dir } of folders) {
    const vaeConfig = readConfig(join(dir, vaeConfigFile(dir) ?? 'vae_decoder/config.json'));
    const f = 2 ** ((numbers(vaeConfig?.block_out_channels)?.length ?? 4) - 1);
    unetRow = Math.max(unetRow, unetRowBytes(readConfig(join(dir, 'unet/config.json')), Math.ceil(size.height / f), Math.ceil(size.width / f)));
    vae = Math.max(vae, vaeBytes(vaeConfig, size.height, size.width));
  }
  const cfg = config.guidance_scale > 1;
  // prompt-pair without strength draws source and edit in one call; other modes draw them one after the other.
  const images = config.mode === 'prompt-pair' && config.strength === null ? 2 : 1;
  const branches = config.mode === 'instruct' ? (cfg && config.image_guidance_scale >= 1 ? 3 : 1) : cfg ? 2 : 1;
  return { base: BASE, weights, unetRow, rowsPerCandidate: images * branches, vae };
}

/**
 * The batch a `runtime.max_memory` budget allows a teacher config at its output size (teacher.height /
 * width, else the UNet's sample_size times the VAE factor), logged with its estimate.
 */
export function teacherBatchForBudget(config: TeacherConfig, maxMemory: string): number {
  const budget = parseMemorySize(maxMemory);
  const dir = config.model;
  const sampleSize = readConfig(join(dir, 'unet/config.json'))?.sample_size;
  const blocks = numbers(readConfig(join(dir, vaeConfigFile(dir) ?? 'vae_decoder/config.json'))?.block_out_channels);
  const base = (typeof sampleSize === 'number' ? sampleSize : 64) * 2 ** ((blocks?.length ?? 4) - 1);
  const estimate = estimateTeacherMemory(config, { height: config.height ?? config.width ?? base, width: config.width ?? config.height ?? base });
  const batch = batchForBudget(estimate, budget, config.max_batch);
  const gb = (b: number) => +(b / GB).toFixed(2);
  log.info(`teacher batch ${batch} (teacher.max_batch ${config.max_batch}) fits runtime.max_memory ${maxMemory}`, {
    estimated_peak_gb: gb(estimatedPeak(estimate, batch)), weights_gb: gb(estimate.weights), unet_gb_per_candidate: gb(estimate.unetRow * estimate.rowsPerCandidate), vae_gb: gb(estimate.vae),
  });
  return batch;
}
