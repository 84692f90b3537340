import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { loadPipelineConfig, type PipelineConfig } from './index.ts';
import { isUserError } from '../errors.ts';
import { createIdentityScorer } from '../identity/index.ts';
import { loadPromptSet } from '../prompts/index.ts';
import type { TeacherConfig } from '../teacher/config.ts';
import { SourcePortraits } from '../teacher/images.ts';
import { readOnnxHeader, type OnnxHeader, type OnnxIo } from '../onnx/header.ts';

export interface CheckReport {
  file: string;
  /** Everything that would stop a run, each naming the key or file and what was expected. */
  problems: string[];
  /** One line per stage when it is fine. */
  summary: string[];
  /** The config's leading comment (where its models come from), shown when a model file is missing. */
  howToGetModels: string | null;
}

/**
 * `pairgen check`: load the config (a bad config throws its UserError), then check, without running any
 * model, everything a run will read: the prompt set, each teacher model folder (files, external weight
 * files, ONNX input/output names and types, UNet channels against the mode) and the identity models.
 * Every problem is collected, not just the first.
 */
export async function checkPipeline(file: string, sets: string[] = []): Promise<CheckReport> {
  const { config, file: abs } = loadPipelineConfig(file, sets);
  const report: CheckReport = { file: abs, problems: [], summary: [], howToGetModels: null };
  const categories = checkPrompts(config, report);
  const teacherMissing = await checkTeacher(config.teacher, report);
  const identityMissing = await checkIdentity(config, categories, report);
  if (teacherMissing || identityMissing) report.howToGetModels = leadingComment(abs);
  return report;
}

/** The prompt set's category names, or null when it does not load. */
function checkPrompts(config: PipelineConfig, report: CheckReport): string[] | null {
  try {
    const set = loadPromptSet(config.prompts.set);
    const names = set.categories.map((c) => c.name);
    report.summary.push(`prompts: ${set.name} (${names.length} categories: ${names.join(', ')})`);
    return names;
  } catch (e) {
    if (!isUserError(e)) throw e;
    report.problems.push(`prompts.set: ${e.message}`);
    return null;
  }
}

// ---------------------------------------------------------------- teacher

type Kind = 'sd' | 'sdxl';
const FLOATS = ['float32', 'float16'];
const IDS = ['int32', 'int64'];

interface FolderFacts {
  kind: Kind;
  /** Channels of the UNet's `sample` input when the folder has a readable UNet with a fixed channel dim. */
  unetChannels: number | null;
  latentChannels: number;
  /** Pixels per latent cell (from the VAE config), null when unknown. */
  scaleFactor: number | null;
  unetType: string | null;
}

/** Returns true when a model file or folder is missing (the config's download notes then help). */
async function checkTeacher(t: TeacherConfig, report: CheckReport): Promise<boolean> {
  const needsEncoder = t.mode !== 'prompt-pair' || t.strength !== null;
  const edit = t.edit_model && t.edit_model !== t.model ? t.edit_model : null;
  const before = report.problems.length;
  let missing = false;
  const check = (key: string, dir: string, vaeEncoder: boolean): FolderFacts | null => {
    const r = checkModelFolder(key, dir, vaeEncoder);
    report.problems.push(...r.problems);
    missing ||= r.missing;
    return r.facts;
  };
  const source = check('teacher.model', t.model, needsEncoder && !edit);
  const editFacts = edit ? check('teacher.edit_model', edit, needsEncoder) : source;

  const isInstruct = (f: FolderFacts | null) => (f && f.unetChannels !== null ? f.unetChannels > f.latentChannels : null);
  if (isInstruct(source) === true && t.mode !== 'img2img') {
    report.problems.push(`teacher.model: ${t.model} is an InstructPix2Pix model (its UNet takes ${source!.unetChannels} channels: latents and image latents); it cannot draw sources from a prompt. Put it in teacher.edit_model and a text-to-image model in teacher.model`);
  }
  if (t.mode === 'instruct' && isInstruct(editFacts) === false) {
    report.problems.push(`teacher.edit_model: mode "instruct" needs an InstructPix2Pix model (a UNet with ${editFacts!.latentChannels * 2} input channels); ${edit ?? t.model} has ${editFacts!.unetChannels}`);
  }
  if (t.mode === 'img2img') {
    if (isInstruct(editFacts) === false && t.strength === null) report.problems.push('teacher.strength: mode "img2img" with a text-to-image edit model needs a strength in (0, 1]');
    if (!t.sources) report.problems.push('teacher.sources: mode "img2img" edits real portraits: set sources.path to a folder of images or a Parquet table');
    else {
      missing ||= !existsSync(t.sources.path);
      try {
        await SourcePortraits.open(t.sources);
      } catch (e) {
        if (!isUserError(e)) throw e;
        report.problems.push(e.message);
      }
    }
  }
  for (const [key, f] of [['teacher.model', source], ['teacher.edit_model', edit ? editFacts : null]] as const) {
    if (!f?.scaleFactor) continue;
    for (const side of ['height', 'width'] as const) {
      const v = t[side];
      if (v !== null && v % f.scaleFactor !== 0) report.problems.push(`teacher.${side}: ${v} is not a multiple of ${f.scaleFactor}, the VAE scale factor of ${key} (latents are ${f.scaleFactor}x smaller than the image)`);
    }
  }
  if (t.mode === 'prompt-pair' && edit && t.strength === null) {
    report.problems.push('teacher.edit_model: mode "prompt-pair" without strength draws both images from teacher.model; set strength to SDEdit with the edit model, or remove edit_model');
  }
  if (report.problems.length === before && source) {
    const describe = (f: FolderFacts) => `${f.kind === 'sdxl' ? 'SDXL' : 'SD'}, UNet ${f.unetChannels ?? '?'} channels ${f.unetType ?? ''}`.trim();
    report.summary.push(`teacher: ${t.model} (${describe(source)})${edit && editFacts ? ` + edit ${edit} (${describe(editFacts)})` : ''}, mode ${t.mode}, ${t.steps} steps`);
  }
  return missing;
}

/** What each component must take and give; mirrors the checks the teacher makes when it loads a folder. */
function componentRules(kind: Kind, component: string): { inputs: [string, string[]][]; outputs: (io: OnnxIo[]) => string | null } {
  const names = (io: OnnxIo[]) => new Set(io.map((o) => o.name));
  const need = (...wanted: string[]) => (io: OnnxIo[]) => {
    const have = names(io);
    const lacking = wanted.filter((w) => !have.has(w));
    return lacking.length ? `lacks output(s) ${lacking.join(', ')}` : null;
  };
  const hiddenStates = (io: OnnxIo[]) => (io.filter((o) => /^hidden_states\.\d+$/.test(o.name)).length >= 2 ? null : 'lacks hidden_states.N outputs (needed for SDXL: export with output_hidden_states)');
  switch (component) {
    case 'text_encoder':
      return { inputs: [['input_ids', IDS]], outputs: kind === 'sd' ? need('last_hidden_state') : hiddenStates };
    case 'text_encoder_2':
      return { inputs: [['input_ids', IDS]], outputs: (io) => need('text_embeds')(io) ?? hiddenStates(io) };
    case 'unet':
      return {
        inputs: [['sample', FLOATS], ['timestep', [...FLOATS, ...IDS]], ['encoder_hidden_states', FLOATS], ...(kind === 'sdxl' ? ([['text_embeds', FLOATS], ['time_ids', FLOATS]] as [string, string[]][]) : [])],
        outputs: (io) => (io.length === 1 || names(io).has('out_sample') ? null : 'lacks output out_sample'),
      };
    case 'vae_encoder':
      return { inputs: [['sample', FLOATS]], outputs: (io) => (names(io).has('latent_parameters') || names(io).has('latent_sample') ? null : 'lacks output latent_parameters') };
    default: // vae_decoder
      return { inputs: [['latent_sample', FLOATS]], outputs: need('sample') };
  }
}

function checkModelFolder(key: string, dir: string, vaeEncoder: boolean): { problems: string[]; missing: boolean; facts: FolderFacts | null } {
  const problems: string[] = [];
  if (!existsSync(dir)) {
    return {
      problems: [`${key}: model folder ${dir} does not exist (expected a diffusers ONNX export: model_index.json, scheduler/, tokenizer/, text_encoder/, unet/, vae_decoder/${vaeEncoder ? ', vae_encoder/' : ''})`],
      missing: true,
      facts: null,
    };
  }
  if (!statSync(dir).isDirectory()) return { problems: [`${key}: ${dir} is a file; expected a model folder`], missing: false, facts: null };
  let missing = false;
  const lack = (rel: string, why = '') => {
    problems.push(`${key}: missing ${join(dir, rel)}${why}`);
    missing = true;
  };

  const index = readJson(dir, 'model_index.json', problems, lack);
  const className = typeof index?._class_name === 'string' ? index._class_name : '';
  const kind: Kind = existsSync(join(dir, 'text_encoder_2')) || /XL/.test(className) ? 'sdxl' : 'sd';
  readJson(dir, 'scheduler/scheduler_config.json', problems, lack);
  for (const tok of kind === 'sdxl' ? ['tokenizer', 'tokenizer_2'] : ['tokenizer']) {
    readJson(dir, `${tok}/vocab.json`, problems, lack);
    if (!existsSync(join(dir, tok, 'merges.txt'))) lack(`${tok}/merges.txt`);
  }
  const vaeConfigRel = ['vae_decoder/config.json', 'vae_encoder/config.json', 'vae/config.json'].find((r) => existsSync(join(dir, r)));
  let latentChannels = 4;
  let scaleFactor: number | null = null;
  if (!vaeConfigRel) lack('vae_decoder/config.json', ' (the VAE scale and scaling factor are read from it)');
  else {
    const vae = readJson(dir, vaeConfigRel, problems, lack);
    if (vae) {
      if (!Array.isArray(vae.block_out_channels) || vae.block_out_channels.length === 0) problems.push(`${join(dir, vaeConfigRel)}: block_out_channels must be a non-empty list`);
      else scaleFactor = 2 ** (vae.block_out_channels.length - 1);
      if (typeof vae.scaling_factor !== 'number') problems.push(`${join(dir, vaeConfigRel)}: scaling_factor must be a number`);
      if (typeof vae.latent_channels === 'number') latentChannels = vae.latent_channels;
    }
  }

  const components = ['text_encoder', ...(kind === 'sdxl' ? ['text_encoder_2'] : []), 'unet', ...(vaeEncoder ? ['vae_encoder'] : []), 'vae_decoder'];
  let unet: OnnxHeader | null = null;
  for (const c of components) {
    const rel = `${c}/model.onnx`;
    const path = join(dir, rel);
    if (!existsSync(path)) {
      lack(rel);
      continue;
    }
    let header: OnnxHeader;
    try {
      header = readOnnxHeader(path);
    } catch (e) {
      problems.push(`${key}: ${path} cannot be read as an ONNX model: ${(e as Error).message}`);
      continue;
    }
    for (const ext of header.externalFiles) {
      if (!existsSync(join(dir, c, ext))) lack(`${c}/${ext}`, ` (${rel} keeps its weights there)`);
    }
    const rules = componentRules(kind, c);
    const lackingIn: string[] = [];
    for (const [name, types] of rules.inputs) {
      const io = header.inputs.find((i) => i.name === name);
      if (!io) lackingIn.push(name);
      else if (!types.includes(io.type)) problems.push(`${key}: ${path}: input ${name} is ${io.type}; expected ${types.join(' or ')}`);
    }
    if (lackingIn.length) problems.push(`${key}: ${path} lacks input(s) ${lackingIn.join(', ')} (it has: ${header.inputs.map((i) => i.name).join(', ') || 'none'})`);
    const out = rules.outputs(header.outputs);
    if (out) problems.push(`${key}: ${path} ${out} (it has: ${header.outputs.map((o) => o.name).join(', ') || 'none'})`);
    if (c === 'unet') unet = header;
  }
  const sample = unet?.inputs.find((i) => i.name === 'sample');
  const channels = sample?.shape[1];
  return {
    problems,
    missing,
    facts: { kind, latentChannels, scaleFactor, unetChannels: typeof channels === 'number' ? channels : null, unetType: sample?.type ?? null },
  };
}

function readJson(dir: string, rel: string, problems: string[], lack: (rel: string) => void): Record<string, unknown> | null {
  const path = join(dir, rel);
  if (!existsSync(path)) {
    lack(rel);
    return null;
  }
  try {
    // Python's json module writes -Infinity / Infinity / NaN in scheduler configs; accept them like the teacher does.
    const text = readFileSync(path, 'utf8').replace(/(?<=[:\[,]\s*)-?Infinity|(?<=[:\[,]\s*)NaN/g, 'null');
    const value = JSON.parse(text);
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
    problems.push(`${path}: expected a JSON object`);
  } catch (e) {
    problems.push(`${path}: not valid JSON (${(e as Error).message})`);
  }
  return null;
}

// ---------------------------------------------------------------- identity

async function checkIdentity(config: PipelineConfig, categories: string[] | null, report: CheckReport): Promise<boolean> {
  const id = config.identity;
  if (!id.enabled) {
    report.summary.push('identity: disabled (every pair is kept)');
    return false;
  }
  // A threshold for a category the prompt set does not have is silently unused by a run: a typo, most likely.
  for (const c of Object.keys(id.category_thresholds)) {
    if (categories && !categories.includes(c)) report.problems.push(`identity.category_thresholds.${c}: the prompt set has no category "${c}" (it has: ${categories.join(', ')})`);
  }
  let missing = false;
  for (const [key, kind, path, wanted] of [
    ['identity.detector.model', id.detector.kind, id.detector.model, 'scrfd'],
    ['identity.embedder.model', id.embedder.kind, id.embedder.model, 'arcface'],
  ] as const) {
    if (kind !== wanted) continue;
    if (!path) report.problems.push(`${key}: required when ${key.replace(/model$/, 'kind')} is ${wanted} (the path of your ${wanted === 'scrfd' ? 'SCRFD' : 'ArcFace'} .onnx file)`);
    else if (!existsSync(path)) {
      report.problems.push(`${key}: ${path} does not exist`);
      missing = true;
    }
  }
  if (report.problems.some((p) => p.startsWith('identity.') && !p.startsWith('identity.category_thresholds'))) return missing;
  // The identity models are small: open them as a run would (their own checks say what is wrong).
  try {
    const scorer = await createIdentityScorer(id, config.runtime);
    report.summary.push(`identity: ${scorer.info.name}, threshold ${id.threshold}${Object.keys(id.category_thresholds).length ? ` (per category: ${JSON.stringify(id.category_thresholds)})` : ''}`);
    await scorer.close();
  } catch (e) {
    if (!isUserError(e)) throw e;
    report.problems.push(`identity: ${e.message}`);
  }
  return missing;
}

/** The comment block at the top of a config file, without the `#` marks. */
function leadingComment(file: string): string | null {
  const lines: string[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (/^\s*#/.test(line)) lines.push(line.replace(/^\s*# ?/, ''));
    else if (line.trim() === '' && lines.length === 0) continue;
    else break;
  }
  return lines.length ? lines.join('\n').trim() : null;
}

/** The report as text: problems first, then how to get the models, or the summary when all is well. */
export function formatCheckReport(r: CheckReport, cwd = process.cwd()): string {
  const name = relative(cwd, r.file).startsWith('..') ? r.file : relative(cwd, r.file);
  if (r.problems.length === 0) return [`${name}: ok`, ...r.summary.map((s) => `  ${s}`)].join('\n');
  const out = [`${name}: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}`, ...r.problems.map((p) => `  - ${p}`)];
  if (r.howToGetModels) out.push('', `How to get the models (from ${name}):`, ...r.howToGetModels.split('\n').map((l) => `  ${l}`));
  return out.join('\n');
}

