import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isUserError } from '../errors.ts';
import { readOnnxHeader, type OnnxHeader } from '../onnx/index.ts';
import type { TeacherConfig } from './config.ts';
import { SourcePortraits } from './images.ts';
import { createScheduler, readSchedulerConfig, SCHEDULER_CLASSES } from './schedulers/index.ts';
import {
  configFiles, modelKind, onnxParts, partFit, sampleChannels, teacherFolders, vaeConfigFile, vaeSettingsOf, weightFiles, VAE_CONFIGS,
  type ModelKind, type ModelParts, type PartFit,
} from './model.ts';
import { modeProblems, sampleSizeOf, type ModelFacts } from './modes.ts';

export interface TeacherCheck {
  /** Everything that would stop the teacher, each naming the key or file and what was expected. */
  problems: string[];
  /** One line describing the teacher, when there is no problem. */
  summary: string | null;
  /** A model file or folder (or the sources) is missing: the config's notes on getting the models then help. */
  missing: boolean;
}

/** A model folder that could be read: the mode rules' facts (modes.ts), and what the summary shows. */
interface FolderFacts extends ModelFacts {
  kind: ModelKind;
  unetType: string | null;
}

/**
 * `pairgen check` of the teacher section, without running a model: each model folder the config opens,
 * by the rules the teacher loads it with (model.ts: the parts the mode needs, SDXL recognition, the files
 * and external weight files of each part, each ONNX part's inputs and outputs read from its header), then
 * the mode rules (UNet channels against the mode, img2img sources, image size). Every problem is
 * collected, not just the first.
 */
export async function checkTeacher(t: TeacherConfig): Promise<TeacherCheck> {
  const problems: string[] = [];
  let missing = false;
  const [source, edit = null] = teacherFolders(t).map(({ dir, parts }, i) => {
    const r = checkModelFolder(i === 0 ? 'teacher.model' : 'teacher.edit_model', dir, parts);
    problems.push(...r.problems);
    missing ||= r.missing;
    return { dir, facts: r.facts };
  });
  problems.push(...modeProblems(t, source.facts, edit?.facts ?? null));
  if (t.scheduler !== null && !SCHEDULER_CLASSES.includes(t.scheduler)) {
    problems.push(`teacher.scheduler: unknown scheduler class ${JSON.stringify(t.scheduler)}; known: ${SCHEDULER_CLASSES.join(', ')}`);
  } else {
    for (const [key, folder] of [['teacher.model', source], ['teacher.edit_model', edit]] as const) {
      if (folder?.facts) problems.push(...schedulerProblems(key, folder.dir, t));
    }
  }
  if (t.mode === 'img2img' && t.sources) {
    missing ||= !existsSync(t.sources.path);
    try {
      // Open the sources and decode the first one: a folder of files that are not images fails here, not in every shard.
      await (await SourcePortraits.open(t.sources)).get(0, 64, 64);
    } catch (e) {
      if (!isUserError(e)) throw e;
      problems.push(e.message);
    }
  }

  let summary: string | null = null;
  if (problems.length === 0 && source.facts) {
    const describe = (f: FolderFacts) => `${f.kind === 'sdxl' ? 'SDXL' : 'SD'}, UNet ${f.unetChannels ?? '?'} channels ${f.unetType ?? ''}`.trim();
    summary = `teacher: ${t.model} (${describe(source.facts)})${edit?.facts ? ` + edit ${edit.dir} (${describe(edit.facts)})` : ''}, mode ${t.mode}, ${t.steps} steps`;
  }
  return { problems, summary, missing };
}

/** One model folder, for a load with these parts; `missing` when a file or the folder is absent. */
function checkModelFolder(key: string, dir: string, parts: ModelParts): { problems: string[]; missing: boolean; facts: FolderFacts | null } {
  if (!existsSync(dir)) {
    return {
      problems: [`${key}: model folder ${dir} does not exist (expected a diffusers ONNX export: model_index.json, scheduler/, tokenizer/, text_encoder/, unet/, vae_decoder/${parts.vaeEncoder ? ', vae_encoder/' : ''})`],
      missing: true,
      facts: null,
    };
  }
  if (!statSync(dir).isDirectory()) return { problems: [`${key}: ${dir} is a file, expected a folder (a diffusers ONNX export)`], missing: false, facts: null };
  const problems: string[] = [];
  let missing = false;
  const lack = (rel: string, why = '') => {
    problems.push(`${key}: missing ${join(dir, rel)}${why}`);
    missing = true;
  };

  const kind = modelKind(dir);
  for (const rel of configFiles(kind)) {
    if (rel.endsWith('.json')) readJson(dir, rel, problems, lack);
    else if (!existsSync(join(dir, rel))) lack(rel);
  }
  const vaeRel = vaeConfigFile(dir);
  let latentChannels = 4;
  let scaleFactor: number | null = null;
  if (!vaeRel) lack(VAE_CONFIGS[0], ' (the VAE scale and scaling factor are read from it)');
  else {
    const config = readJson(dir, vaeRel, problems, lack);
    const vae = config && vaeSettingsOf(config, join(dir, vaeRel));
    if (vae) problems.push(...vae.problems);
    if (vae?.settings) ({ latentChannels, scaleFactor } = vae.settings);
  }

  // Optional: the teacher reads sample_size from it when the config gives no size.
  const unetConfig = existsSync(join(dir, 'unet/config.json')) ? readJson(dir, 'unet/config.json', problems, lack) : null;

  let unet: OnnxHeader | null = null;
  for (const part of onnxParts(kind, parts)) {
    const rel = `${part}/model.onnx`;
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
    for (const weights of weightFiles(part, header)) if (!existsSync(join(dir, weights))) lack(weights, ` (${rel} keeps its weights there)`);
    problems.push(...fitProblems(`${key}: ${path}`, partFit(kind, part, header), header));
    if (part === 'unet') unet = header;
  }
  return {
    problems,
    missing,
    facts: {
      dir, kind, latentChannels, scaleFactor, sampleSize: sampleSizeOf(unetConfig),
      unetChannels: unet && sampleChannels(unet), unetType: unet?.inputs.find((i) => i.name === 'sample')?.type ?? null,
    },
  };
}

/** The model folder's scheduler with teacher.scheduler and scheduler_options applied must build, as the teacher builds it. */
function schedulerProblems(key: string, dir: string, t: TeacherConfig): string[] {
  const path = join(dir, 'scheduler/scheduler_config.json');
  let base: Record<string, unknown>;
  try {
    base = readSchedulerConfig(path);
  } catch {
    return []; // a missing or unreadable file is reported with the folder's other files
  }
  try {
    createScheduler({ ...base, ...(t.scheduler ? { _class_name: t.scheduler } : {}), ...t.scheduler_options }, { source: path });
    return [];
  } catch (e) {
    return [`${key}: ${(e as Error).message.split('\n')[0]}`];
  }
}

/** A part's misfit as problems, each starting with `what` (the key and the file). */
function fitProblems(what: string, fit: PartFit, header: OnnxHeader): string[] {
  const names = (io: OnnxHeader['inputs']) => io.map((i) => i.name).join(', ') || 'none';
  const problems = fit.wrongTypes.map((w) => `${what}: input ${w.name} is ${w.type}; expected ${w.expected.join(' or ')}`);
  if (fit.missingInputs.length) problems.push(`${what} lacks input(s) ${fit.missingInputs.join(', ')} (it has: ${names(header.inputs)})`);
  if (fit.missingOutputs.length) problems.push(`${what} lacks output(s) ${fit.missingOutputs.join(', ')} (it has: ${names(header.outputs)})`);
  else if (fit.lacksHiddenStates) problems.push(`${what} lacks hidden_states.N outputs (needed for SDXL: export with output_hidden_states) (it has: ${names(header.outputs)})`);
  return problems;
}

/** A JSON object file of the folder, or null with the problem recorded (`lack` when it is absent). */
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
