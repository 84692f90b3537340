import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { FLOAT_TYPES, INT_TYPES, OnnxModel, readOnnxHeader, type OnnxHeader, type OnnxIo, type RuntimeConfig } from '../onnx/index.ts';
import { log } from '../util/log.ts';
import type { TeacherConfig } from './config.ts';
import { ClipTokenizer } from '../text/clip-tokenizer.ts';
import { readSchedulerConfig } from './schedulers/index.ts';

/**
 * A diffusers / Optimum ONNX model folder:
 *   model_index.json, scheduler/scheduler_config.json, tokenizer[_2]/, text_encoder[_2]/model.onnx,
 *   unet/model.onnx, vae_encoder/model.onnx, vae_decoder/model.onnx (+ config.json), each model.onnx
 *   possibly with its weights in external data files beside it (model.onnx_data).
 * The folder rules (which parts a config needs, SDXL recognition, the files each part needs, what each
 * ONNX part must take and give) live here once: loading, the model digest and `pairgen check` (check.ts)
 * all apply them.
 */
export type ModelKind = 'sd' | 'sdxl';

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
  kind: ModelKind;
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

// ---------------------------------------------------------------- the folder rules

/** SDXL is recognised by text_encoder_2/ (two text encoders, pooled embeddings and time ids), not by model_index.json's class name. */
export function modelKind(dir: string): ModelKind {
  return existsSync(join(dir, 'text_encoder_2')) ? 'sdxl' : 'sd';
}

/**
 * The model folders a teacher config opens and which parts of each: the main model, and the edit model
 * when it is another folder. A VAE encoder is needed whenever an image is encoded (instruct, img2img,
 * SDEdit); with two folders only the edit model encodes.
 */
export function teacherFolders(config: TeacherConfig): { dir: string; parts: ModelParts }[] {
  const needsEncoder = config.mode !== 'prompt-pair' || config.strength !== null;
  const edit = config.edit_model && config.edit_model !== config.model ? config.edit_model : null;
  const folders = [{ dir: config.model, parts: { vaeEncoder: needsEncoder && !edit, vaeDecoder: true } }];
  if (edit) folders.push({ dir: edit, parts: { vaeEncoder: needsEncoder, vaeDecoder: true } });
  return folders;
}

function tokenizerDirs(kind: ModelKind): string[] {
  return kind === 'sdxl' ? ['tokenizer', 'tokenizer_2'] : ['tokenizer'];
}

/** The files a load reads before any ONNX model, relative to the folder, in reading order; all required. */
export function configFiles(kind: ModelKind): string[] {
  return ['model_index.json', 'scheduler/scheduler_config.json', ...tokenizerDirs(kind).flatMap((t) => [`${t}/vocab.json`, `${t}/merges.txt`])];
}

/** Read beside a tokenizer's vocab.json when present. */
const OPTIONAL_TOKENIZER_FILES = ['tokenizer_config.json', 'special_tokens_map.json'];

/** The ONNX parts a load with these parts opens, in opening order; each is `<part>/model.onnx`. */
export function onnxParts(kind: ModelKind, parts: ModelParts): string[] {
  const names = ['text_encoder', ...(kind === 'sdxl' ? ['text_encoder_2'] : []), 'unet'];
  if (parts.vaeEncoder) names.push('vae_encoder');
  if (parts.vaeDecoder) names.push('vae_decoder');
  return names;
}

/** The external data files a part's model.onnx keeps its weights in (as its graph names them), relative to the folder. */
export function weightFiles(part: string, header: OnnxHeader): string[] {
  return header.externalFiles.map((f) => `${part}/${f}`);
}

/** Where the VAE settings are read from: the first of these that exists. */
export const VAE_CONFIGS = ['vae_decoder/config.json', 'vae_encoder/config.json', 'vae/config.json'];

export function vaeConfigFile(dir: string): string | null {
  return VAE_CONFIGS.find((r) => existsSync(join(dir, r))) ?? null;
}

/** The VAE settings of a parsed VAE config.json at `path`, or what is wrong with it. */
export function vaeSettingsOf(c: Record<string, unknown>, path: string): { settings: VaeSettings | null; problems: string[] } {
  const problems: string[] = [];
  const blocks = c.block_out_channels;
  if (!Array.isArray(blocks) || blocks.length === 0) problems.push(`${path}: block_out_channels must be a non-empty list`);
  if (typeof c.scaling_factor !== 'number') problems.push(`${path}: scaling_factor must be a number`);
  if (problems.length) return { settings: null, problems };
  const numList = (v: unknown) => (Array.isArray(v) && v.every((x) => typeof x === 'number') ? (v as number[]) : null);
  const settings = {
    scaleFactor: 2 ** ((blocks as unknown[]).length - 1),
    scalingFactor: c.scaling_factor as number,
    latentChannels: typeof c.latent_channels === 'number' ? c.latent_channels : 4,
    latentsMean: numList(c.latents_mean),
    latentsStd: numList(c.latents_std),
  };
  return { settings, problems };
}

/** How an ONNX part fails the teacher's needs; every list empty and the flag false when it fits. */
export interface PartFit {
  /** Inputs the teacher feeds that the model lacks. */
  missingInputs: string[];
  /** Inputs of a type the teacher does not feed there. */
  wrongTypes: { name: string; type: string; expected: readonly string[] }[];
  /** Outputs the teacher reads that the model lacks (the first name where several would do). */
  missingOutputs: string[];
  /** An SDXL text encoder without hidden_states.N outputs (the teacher reads the penultimate one). */
  lacksHiddenStates: boolean;
}

interface PartRule {
  inputs: [name: string, types: readonly string[]][];
  /** Outputs the teacher reads; each entry is met by any one of its names. */
  outputs: string[][];
  /** A model with a single output meets `outputs` whatever its name (UNet exports name it variously). */
  anyLoneOutput: boolean;
  hiddenStates: boolean;
}

function partRule(kind: ModelKind, part: string): PartRule {
  const ids: [string, readonly string[]][] = [['input_ids', INT_TYPES]];
  switch (part) {
    case 'text_encoder':
      return { inputs: ids, outputs: kind === 'sd' ? [['last_hidden_state']] : [], anyLoneOutput: false, hiddenStates: kind === 'sdxl' };
    case 'text_encoder_2':
      return { inputs: ids, outputs: [['text_embeds']], anyLoneOutput: false, hiddenStates: true };
    case 'unet':
      return {
        inputs: [
          ['sample', FLOAT_TYPES],
          ['timestep', [...FLOAT_TYPES, ...INT_TYPES]],
          ['encoder_hidden_states', FLOAT_TYPES],
          ...(kind === 'sdxl' ? ([['text_embeds', FLOAT_TYPES], ['time_ids', FLOAT_TYPES]] as [string, readonly string[]][]) : []),
        ],
        outputs: [['out_sample']],
        anyLoneOutput: true,
        hiddenStates: false,
      };
    case 'vae_encoder':
      return { inputs: [['sample', FLOAT_TYPES]], outputs: [['latent_parameters', 'latent_sample']], anyLoneOutput: false, hiddenStates: false };
    case 'vae_decoder':
      return { inputs: [['latent_sample', FLOAT_TYPES]], outputs: [['sample']], anyLoneOutput: false, hiddenStates: false };
    default:
      throw new Error(`no rule for model part ${part}`);
  }
}

/** Does an ONNX part take and give what the teacher feeds and reads? */
export function partFit(kind: ModelKind, part: string, io: { inputs: readonly OnnxIo[]; outputs: readonly OnnxIo[] }): PartFit {
  const rule = partRule(kind, part);
  const fit: PartFit = { missingInputs: [], wrongTypes: [], missingOutputs: [], lacksHiddenStates: false };
  for (const [name, types] of rule.inputs) {
    const input = io.inputs.find((i) => i.name === name);
    if (!input) fit.missingInputs.push(name);
    else if (!types.includes(input.type)) fit.wrongTypes.push({ name, type: input.type, expected: types });
  }
  const outputs = io.outputs.map((o) => o.name);
  if (!(rule.anyLoneOutput && outputs.length === 1)) {
    for (const anyOf of rule.outputs) if (!anyOf.some((n) => outputs.includes(n))) fit.missingOutputs.push(anyOf[0]);
  }
  fit.lacksHiddenStates = rule.hiddenStates && penultimateOf(outputs) === null;
  return fit;
}

/** Channels of the UNet's `sample` input when the file fixes them (4: text-to-image, 8: InstructPix2Pix), else null. */
export function sampleChannels(unet: { inputs: readonly OnnxIo[] }): number | null {
  const channels = unet.inputs.find((i) => i.name === 'sample')?.shape[1];
  return typeof channels === 'number' ? channels : null;
}

/** The name of the penultimate hidden state output (`hidden_states.{N-1}` of 0..N), or null. */
function penultimateOf(outputs: string[]): string | null {
  const ids = outputs.map((n) => /^hidden_states\.(\d+)$/.exec(n)?.[1]).filter((x) => x !== undefined).map(Number);
  if (ids.length < 2) return null;
  return `hidden_states.${Math.max(...ids) - 1}`;
}

export function penultimateHiddenState(te: OnnxModel): string | null {
  return penultimateOf([...te.outputs.keys()]);
}

// ---------------------------------------------------------------- loading

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

/**
 * The folder's files for a load with these parts (a UserError names the first one missing) and the
 * headers of its ONNX parts, read without loading weights.
 */
function readFolder(dir: string, parts: ModelParts): { kind: ModelKind; files: string[]; headers: Map<string, OnnxHeader> } {
  const kind = modelKind(dir);
  const files = configFiles(kind).map((rel) => requireFile(dir, rel));
  for (const t of tokenizerDirs(kind)) for (const f of OPTIONAL_TOKENIZER_FILES) if (existsSync(join(dir, t, f))) files.push(join(dir, t, f));
  const models = onnxParts(kind, parts).map((part) => [part, requireFile(dir, `${part}/model.onnx`)] as const);
  const headers = new Map<string, OnnxHeader>();
  for (const [part, path] of models) {
    let header: OnnxHeader;
    try {
      header = readOnnxHeader(path);
    } catch (e) {
      throw new UserError(`cannot load ONNX model ${path}: ${(e as Error).message}`);
    }
    headers.set(part, header);
    files.push(path, ...weightFiles(part, header).map((rel) => requireFile(dir, rel)));
    if (existsSync(join(dir, part, 'config.json'))) files.push(join(dir, part, 'config.json'));
  }
  return { kind, files, headers };
}

/** Every file a load with these parts reads, as absolute paths in a stable (sorted) order: the digest input. */
export function modelFiles(dir: string, parts: ModelParts): string[] {
  return readFolder(dir, parts).files.sort();
}

function loadVaeSettings(dir: string): VaeSettings {
  const rel = vaeConfigFile(dir);
  if (!rel) throw new UserError(`model folder ${dir} lacks ${VAE_CONFIGS[0]} (needed for the VAE scale and scaling factor; found: ${listing(dir)})`);
  const path = join(dir, rel);
  const { settings, problems } = vaeSettingsOf(readJson(path), path);
  if (!settings) throw new UserError(problems[0]);
  return settings;
}

/** A UserError naming the model, what it lacks or takes wrongly, and what it has instead. */
function requireFit(kind: ModelKind, part: string, path: string, header: OnnxHeader): void {
  const fit = partFit(kind, part, header);
  const names = (io: OnnxIo[]) => io.map((i) => i.name).join(', ');
  const lacking = [];
  if (fit.missingInputs.length) lacking.push(`lacks input(s) ${fit.missingInputs.join(', ')} (it has: ${names(header.inputs)})`);
  if (fit.missingOutputs.length) lacking.push(`lacks output(s) ${fit.missingOutputs.join(', ')} (it has: ${names(header.outputs)})`);
  if (lacking.length) throw new UserError(`ONNX model ${path} ${lacking.join('; ')}`);
  if (fit.lacksHiddenStates) throw new UserError(`ONNX model ${path} lacks hidden_states.N outputs, needed for SDXL (it has: ${names(header.outputs)})`);
  const [wrong] = fit.wrongTypes;
  if (wrong) throw new UserError(`ONNX model ${path}: input ${wrong.name} is ${wrong.type}; expected ${wrong.expected.join(' or ')}`);
}

/**
 * The sessions' memory settings. No CPU arena: an arena keeps each session's peak activations for the
 * session's life, so the text encoder's, the UNet's and the VAE's peaks would add up; without it they
 * come and go, and the process peak is the weights plus the largest single call. The memory pattern
 * stays on: without an arena it is one planned block per run, freed after it, and without it every
 * tensor is a fresh allocation (the UNet ran 2.8x slower on the fixture, 1.4x with it). Neither changes
 * a computed value (docs/memory.md has the measurements). A runtime that sets them explicitly wins.
 */
export const TEACHER_SESSION_MEMORY: Pick<RuntimeConfig, 'cpu_mem_arena' | 'mem_pattern'> = { cpu_mem_arena: false, mem_pattern: true };

/** Open a model folder: check its files and its models' inputs/outputs, then open its sessions. */
export async function loadDiffusersModel(dir: string, runtime: RuntimeConfig, parts: ModelParts): Promise<DiffusersModel> {
  const { kind, headers } = readFolder(dir, parts); // every required file exists, or a UserError says which one is missing
  const index = readJson(join(dir, 'model_index.json'));
  const schedulerConfig = readSchedulerConfig(join(dir, 'scheduler/scheduler_config.json')) as Record<string, unknown>;
  const vae = loadVaeSettings(dir);
  const tokenizers = [];
  for (const t of tokenizerDirs(kind)) tokenizers.push(await ClipTokenizer.fromDir(join(dir, t)));
  for (const [part, header] of headers) requireFit(kind, part, join(dir, part, 'model.onnx'), header);

  const opened: OnnxModel[] = [];
  const open = async (part: string) => {
    const m = await OnnxModel.open(join(dir, part, 'model.onnx'), { ...TEACHER_SESSION_MEMORY, ...runtime });
    opened.push(m);
    return m;
  };
  try {
    const textEncoders = [await open('text_encoder')];
    if (kind === 'sdxl') textEncoders.push(await open('text_encoder_2'));
    const unet = await open('unet');
    const vaeEncoder = parts.vaeEncoder ? await open('vae_encoder') : null;
    if (vaeEncoder && !vaeEncoder.outputs.has('latent_parameters')) log.warn(`${vaeEncoder.path} outputs latent_sample (sampled inside the graph), not latent_parameters; image latents will not be the exact VAE mean`);
    const vaeDecoder = parts.vaeDecoder ? await open('vae_decoder') : null;
    return {
      dir,
      kind,
      tokenizers,
      textEncoders,
      unet,
      unetInChannels: sampleChannels(headers.get('unet')!) ?? vae.latentChannels,
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
