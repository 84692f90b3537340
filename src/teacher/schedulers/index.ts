/**
 * Schedulers: small config-driven classes that turn a model's output into the next sample, numerically
 * matching diffusers. `createScheduler(config)` picks the class from the config's `_class_name`.
 */
import { readFileSync } from 'node:fs';
import { UserError } from '../../errors.ts';
import type { Scheduler } from './common.ts';
import { DDIMScheduler } from './ddim.ts';
import { EulerAncestralDiscreteScheduler, EulerDiscreteScheduler } from './euler.ts';
import { DPMSolverMultistepScheduler } from './dpmsolver.ts';
import { LCMScheduler } from './lcm.ts';
import { PNDMScheduler } from './pndm.ts';

export type { Scheduler, StepOptions, StepResult } from './common.ts';

type Factory = (raw: Record<string, unknown>, where: string, seed: number) => Scheduler;

const CLASSES: Record<string, Factory> = {
  DDIMScheduler: (c, w, s) => new DDIMScheduler(c, w, s),
  EulerDiscreteScheduler: (c, w, s) => new EulerDiscreteScheduler(c, w, s),
  EulerAncestralDiscreteScheduler: (c, w, s) => new EulerAncestralDiscreteScheduler(c, w, s),
  DPMSolverMultistepScheduler: (c, w, s) => new DPMSolverMultistepScheduler(c, w, s),
  LCMScheduler: (c, w, s) => new LCMScheduler(c, w, s),
  PNDMScheduler: (c, w) => new PNDMScheduler(c, w),
};

/** The diffusers class names createScheduler accepts. */
export const SCHEDULER_CLASSES: readonly string[] = Object.keys(CLASSES);

export interface CreateOptions {
  /** Seed of the scheduler's own noise stream, used when step() is not given opts.noise (default 0). */
  seed?: number;
  /** Where the config came from, for error messages (e.g. the scheduler_config.json path). */
  source?: string;
}

/**
 * A scheduler from a diffusers scheduler_config.json object; `_class_name` picks the class
 * (or pass `className` to override it, like diffusers' `Scheduler.from_config(other.config)`).
 */
export function createScheduler(config: Record<string, unknown>, opts: CreateOptions & { className?: string } = {}): Scheduler {
  const name = opts.className ?? config._class_name;
  const where = `scheduler config${opts.source ? ` ${opts.source}` : ''}`;
  if (typeof name !== 'string' || !(name in CLASSES)) {
    throw new UserError(`${where}: unknown scheduler class ${JSON.stringify(name ?? null)}; known: ${SCHEDULER_CLASSES.join(', ')}`);
  }
  return CLASSES[name](config, `${where} (${name})`, opts.seed ?? 0);
}

/**
 * Reads a scheduler_config.json, accepting the NaN / Infinity / -Infinity literals Python's json module
 * writes (e.g. diffusers' lambda_min_clipped default).
 */
export function readSchedulerConfig(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read scheduler config ${path}: ${(e as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(replacePythonLiterals(text));
  } catch (e) {
    throw new UserError(`scheduler config ${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new UserError(`scheduler config ${path} must be a JSON object (a diffusers scheduler_config.json)`);
  }
  return reviveSpecial(value) as Record<string, unknown>;
}

const SPECIAL: Record<string, number> = { '\u0000NaN': NaN, '\u0000Infinity': Infinity, '\u0000-Infinity': -Infinity };

/** Replaces bare NaN / Infinity / -Infinity tokens outside strings with marker strings. */
function replacePythonLiterals(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    const m = /^(-?Infinity|NaN)/.exec(text.slice(i, i + 9));
    if (m) {
      out += `"\\u0000${m[1]}"`;
      i += m[1].length;
      continue;
    }
    out += c;
    i++;
  }
  return out;
}

function reviveSpecial(v: unknown): unknown {
  if (typeof v === 'string' && v in SPECIAL) return SPECIAL[v];
  if (Array.isArray(v)) return v.map(reviveSpecial);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, reviveSpecial(x)]));
  return v;
}

/**
 * img2img / SDEdit: after setTimesteps(numInferenceSteps), the timesteps to run for a strength in (0, 1]
 * (diffusers' get_timesteps: skip the first steps), and tell the scheduler where it starts.
 * `timesteps[0]` is the timestep to noise the source to with addNoise.
 */
export function timestepsForStrength(scheduler: Scheduler, numInferenceSteps: number, strength: number): number[] {
  if (!(strength > 0 && strength <= 1)) throw new UserError(`strength must be in (0, 1], got ${strength}`);
  const init = Math.min(Math.trunc(numInferenceSteps * strength), numInferenceSteps);
  const start = Math.max(numInferenceSteps - init, 0);
  if (start >= numInferenceSteps) {
    throw new UserError(`strength ${strength} with ${numInferenceSteps} steps leaves no step to run; raise the strength or the steps`);
  }
  scheduler.setBeginIndex(start);
  return scheduler.timesteps.slice(start);
}
