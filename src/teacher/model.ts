import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { RuntimeConfig } from '../onnx/session.ts';
import { UserError } from '../errors.ts';
import type { TeacherConfig } from './config.ts';
import { log } from '../util/log.ts';
import { OnnxModel } from '../onnx/model.ts';
import { ClipTokenizer } from './tokenizer.ts';
import { readSchedulerConfig } from './schedulers/index.ts';

/**
 * A diffusers / Optimum ONNX model folder:
 *   model_index.json, scheduler/scheduler_config.json, tokenizer[_2]/, text_encoder[_2]/model.onnx,
 *   unet/model.onnx, vae_encoder/model.onnx, vae_decoder/model.onnx (+ config.json), each model.onnx
 *   possibly with its weights in model.onnx_data beside it.
 * SDXL is recognised by text_encoder_2/ (two text encoders, pooled embeddings and time ids).
 */
export interface VaeSettings {
  /** Pixels per latent cell: 2^(len(block_out_channels) - 1). */
  scaleFactor: number;
  scalingFactor: number;
  latentChannels: number;
  /** SDXL-style per-channel latent statistics, when the config has them. */
  latentsMean: number[] | null;
  latentsStd: number[] | null;
}

export interface DiffusersModel {
  dir: string;
  kind: 'sd' | 'sdxl';
  tokenizers: ClipTokenizer[];
  textEncoders: OnnxModel[];
  unet: OnnxModel;
  /** Channels of the UNet's `sample` input: 4 for text-to-image, 8 for InstructPix2Pix. */
  unetInChannels: number;
  vaeEncoder: OnnxModel | null;
  vaeDecoder: OnnxModel | null;
  vae: VaeSettings;
  schedulerConfig: Record<string, unknown>;
  /** SDXL: a missing negative prompt means zero embeddings (model_index.json force_zeros_for_empty_prompt). */
  forceZerosForEmptyPrompt: boolean;
  release(): Promise<void>;
}

export interface ModelParts {
  vaeEncoder: boolean;
  vaeDecoder: boolean;
}

function listing(dir: string): string {
  try {
    const names = readdirSync(dir).map((n) => (statSync(join(dir, n)).isDirectory() ? n + '/' : n)).sort();
    return names.length ? names.join(', ') : 'nothing';
  } catch {
    return 'nothing (the folder does not exist)';
  }
}

function requireFile(dir: string, rel: string): string {
  const path = join(dir, rel);
  if (!existsSync(path)) {
    const sub = rel.includes('/') ? join(dir, rel.split('/')[0]) : dir;
    throw new UserError(`model folder ${dir} lacks ${rel} (found in ${sub}: ${listing(sub)})`);
  }
  return path;
}

function readJson(path: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new UserError(`cannot read ${path} as JSON: ${(e as Error).message}`);
  }
}

function isSdxl(dir: string): boolean {
  return existsSync(join(dir, 'text_encoder_2'));
}

function components(dir: string, parts: ModelParts): string[] {
  const names = ['text_encoder', ...(isSdxl(dir) ? ['text_encoder_2'] : []), 'unet'];
  if (parts.vaeEncoder) names.push('vae_encoder');
  if (parts.vaeDecoder) names.push('vae_decoder');
  return names;
}

/**
 * The model folders a teacher config opens and which parts of each: the main model, and the edit model
 * when it is another folder. A VAE encoder is needed whenever an image is encoded (instruct, img2img,
 * SDEdit); with two folders only the edit model encodes. Shared by loading and by the model digest.
 */
export function teacherFolders(config: TeacherConfig): { dir: string; parts: { vaeEncoder: boolean; vaeDecoder: boolean } }[] {
  const needsEncoder = config.mode !== 'prompt-pair' || config.strength !== null;
  const edit = config.edit_model && config.edit_model !== config.model ? config.edit_model : null;
  const folders = [{ dir: config.model, parts: { vaeEncoder: needsEncoder && !edit, vaeDecoder: true } }];
  if (edit) folders.push({ dir: edit, parts: { vaeEncoder: needsEncoder, vaeDecoder: true } });
  return folders;
}

/** Every file a load with these parts reads, as absolute paths in a stable (sorted) order: the digest input. */
export function modelFiles(dir: string, parts: ModelParts): string[] {
  const files = [requireFile(dir, 'model_index.json'), requireFile(dir, 'scheduler/scheduler_config.json')];
  const tokenizers = isSdxl(dir) ? ['tokenizer', 'tokenizer_2'] : ['tokenizer'];
  for (const t of tokenizers) {
    for (const f of ['vocab.json', 'merges.txt']) files.push(requireFile(dir, `${t}/${f}`));
    for (const f of ['tokenizer_config.json', 'special_tokens_map.json']) if (existsSync(join(dir, t, f))) files.push(join(dir, t, f));
  }
  for (const c of components(dir, parts)) {
    files.push(requireFile(dir, `${c}/model.onnx`));
    for (const f of ['model.onnx_data', 'config.json']) if (existsSync(join(dir, c, f))) files.push(join(dir, c, f));
  }
  return files.sort();
}

function vaeSettings(dir: string): VaeSettings {
  const rel = ['vae_decoder/config.json', 'vae_encoder/config.json', 'vae/config.json'].find((r) => existsSync(join(dir, r)));
  if (!rel) throw new UserError(`model folder ${dir} lacks vae_decoder/config.json (needed for the VAE scale and scaling factor; found: ${listing(dir)})`);
  const path = join(dir, rel);
  const c = readJson(path);
  const blocks = c.block_out_channels;
  if (!Array.isArray(blocks) || blocks.length === 0) throw new UserError(`${path}: block_out_channels must be a non-empty list`);
  if (typeof c.scaling_factor !== 'number') throw new UserError(`${path}: scaling_factor must be a number`);
  const numList = (v: unknown) => (Array.isArray(v) && v.every((x) => typeof x === 'number') ? (v as number[]) : null);
  return {
    scaleFactor: 2 ** (blocks.length - 1),
    scalingFactor: c.scaling_factor,
    latentChannels: typeof c.latent_channels === 'number' ? c.latent_channels : 4,
    latentsMean: numList(c.latents_mean),
    latentsStd: numList(c.latents_std),
  };
}

/** Open a model folder: check its files, open its sessions and check their inputs/outputs. */
export async function loadDiffusersModel(dir: string, runtime: RuntimeConfig, parts: ModelParts): Promise<DiffusersModel> {
  modelFiles(dir, parts); // every required file exists, or a UserError says which one is missing
  const index = readJson(join(dir, 'model_index.json'));
  const kind = isSdxl(dir) ? 'sdxl' : 'sd';
  const schedulerConfig = readSchedulerConfig(join(dir, 'scheduler/scheduler_config.json')) as Record<string, unknown>;
  const vae = vaeSettings(dir);
  const tokenizers = [await ClipTokenizer.fromDir(join(dir, 'tokenizer'))];
  if (kind === 'sdxl') tokenizers.push(await ClipTokenizer.fromDir(join(dir, 'tokenizer_2')));

  const opened: OnnxModel[] = [];
  const open = async (c: string) => {
    const m = await OnnxModel.open(join(dir, c, 'model.onnx'), runtime);
    opened.push(m);
    return m;
  };
  try {
    const textEncoders = [await open('text_encoder')];
    if (kind === 'sdxl') textEncoders.push(await open('text_encoder_2'));
    for (const [i, te] of textEncoders.entries()) {
      te.expect(['input_ids'], kind === 'sd' ? ['last_hidden_state'] : i === 1 ? ['text_embeds'] : []);
      if (kind === 'sdxl' && penultimateHiddenState(te) === null) {
        throw new UserError(`ONNX model ${te.path} lacks hidden_states.N outputs, needed for SDXL (it has: ${[...te.outputs.keys()].join(', ')})`);
      }
    }
    const unet = await open('unet');
    unet.expect(['sample', 'timestep', 'encoder_hidden_states', ...(kind === 'sdxl' ? ['text_embeds', 'time_ids'] : [])]);
    if (unet.outputs.size !== 1 && !unet.outputs.has('out_sample')) unet.expect([], ['out_sample']);
    const channels = unet.input('sample').shape[1];
    const unetInChannels = typeof channels === 'number' ? channels : vae.latentChannels;
    const vaeEncoder = parts.vaeEncoder ? await open('vae_encoder') : null;
    if (vaeEncoder) {
      vaeEncoder.expect(['sample']);
      if (!vaeEncoder.outputs.has('latent_parameters') && !vaeEncoder.outputs.has('latent_sample')) vaeEncoder.expect([], ['latent_parameters']);
      if (!vaeEncoder.outputs.has('latent_parameters')) log.warn(`${vaeEncoder.path} outputs latent_sample (sampled inside the graph), not latent_parameters; image latents will not be the exact VAE mean`);
    }
    const vaeDecoder = parts.vaeDecoder ? await open('vae_decoder') : null;
    vaeDecoder?.expect(['latent_sample'], ['sample']);
    return {
      dir,
      kind,
      tokenizers,
      textEncoders,
      unet,
      unetInChannels,
      vaeEncoder,
      vaeDecoder,
      vae,
      schedulerConfig,
      forceZerosForEmptyPrompt: index.force_zeros_for_empty_prompt === true,
      release: async () => {
        for (const m of opened) await m.release();
      },
    };
  } catch (e) {
    for (const m of opened) await m.release();
    throw e;
  }
}

/** The name of the penultimate hidden state output (`hidden_states.{N-1}` of 0..N), or null. */
export function penultimateHiddenState(te: OnnxModel): string | null {
  const ids = [...te.outputs.keys()].map((n) => /^hidden_states\.(\d+)$/.exec(n)?.[1]).filter((x) => x !== undefined).map(Number);
  if (ids.length < 2) return null;
  return `hidden_states.${Math.max(...ids) - 1}`;
}
