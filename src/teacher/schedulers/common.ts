/**
 * What every scheduler shares: the Scheduler interface, config reading with clear errors, the training
 * noise schedule (betas → alphas_cumprod) and the timestep/sigma helpers diffusers computes with numpy.
 *
 * Dtype rule (to agree with diffusers to ~1e-6): values diffusers keeps in torch float32 tensors
 * (betas, alphas_cumprod, sigmas, per-step scalars) are rounded with Math.fround; values it computes
 * with numpy float64 (Karras ramps, sigma→t interpolation) stay float64 until diffusers casts them.
 */
import { UserError } from '../../errors.ts';
import { normalStream, type NormalStream } from '../random.ts';

export const f32 = Math.fround;

export interface StepOptions {
  /** DDIM's eta (0 = deterministic DDIM, 1 = DDPM-like); ignored by other schedulers. */
  eta?: number;
  /** Supplies standard-normal noise of length n when a step needs it, in the order diffusers draws it. */
  noise?: (n: number) => Float32Array;
}

export interface StepResult {
  prevSample: Float32Array;
  /** The model's estimate of the clean sample (x0) at this step, when the scheduler forms one. */
  denoised?: Float32Array;
}

export interface Scheduler {
  /** The diffusers class name, e.g. "EulerDiscreteScheduler". */
  readonly className: string;
  /** The config with every key this class reads, defaults filled in (for inspection; runs record the model's scheduler_config.json with the config's overrides, see teacher/generator.ts describe()). */
  readonly config: Readonly<Record<string, unknown>>;
  /** Timesteps to run, in order (after setTimesteps). Values are floats for Euler-type schedulers. */
  timesteps: number[];
  /** Noise levels, one per timestep plus the final one, for sigma-based schedulers; null otherwise. */
  sigmas: number[] | null;
  /** Multiply the initial N(0, 1) latents by this. */
  initNoiseSigma: number;
  numInferenceSteps: number;
  setTimesteps(numInferenceSteps: number): void;
  /** Start stepping at this index of `timesteps` (img2img); diffusers' set_begin_index. */
  setBeginIndex(index: number): void;
  /** The factor scaleModelInput multiplies by at timestep t (1 for schedulers that do not scale). */
  inputScale(t: number): number;
  scaleModelInput(sample: Float32Array, t: number): Float32Array;
  step(modelOutput: Float32Array, t: number, sample: Float32Array, opts?: StepOptions): StepResult;
  /** Noise a clean sample to timestep t (img2img / SDEdit start). */
  addNoise(original: Float32Array, noise: Float32Array, t: number): Float32Array;
}

/** Reads typed keys out of a scheduler_config.json object, with errors that name the key. */
export class ConfigReader {
  readonly used: Record<string, unknown> = {};
  constructor(
    private readonly raw: Record<string, unknown>,
    private readonly where: string,
  ) {}

  private fail(key: string, expected: string, got: unknown): never {
    throw new UserError(`${this.where}: "${key}" must be ${expected}, got ${JSON.stringify(got) ?? String(got)}`);
  }
  private get(key: string, def: unknown): unknown {
    const v = this.raw[key] === undefined ? def : this.raw[key];
    this.used[key] = v;
    return v;
  }
  number(key: string, def: number): number {
    const v = this.get(key, def);
    if (typeof v !== 'number') this.fail(key, 'a number', v);
    return v;
  }
  int(key: string, def: number, min = 0): number {
    const v = this.get(key, def);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) this.fail(key, `an integer >= ${min}`, v);
    return v;
  }
  numberOrNull(key: string): number | null {
    const v = this.get(key, null);
    if (v !== null && typeof v !== 'number') this.fail(key, 'a number or null', v);
    return v as number | null;
  }
  bool(key: string, def: boolean): boolean {
    const v = this.get(key, def);
    if (typeof v !== 'boolean') this.fail(key, 'true or false', v);
    return v;
  }
  choice<T extends string>(key: string, def: T, allowed: readonly T[]): T {
    const v = this.get(key, def);
    if (typeof v !== 'string' || !allowed.includes(v as T)) this.fail(key, `one of ${allowed.join(', ')}`, v);
    return v as T;
  }
  numbersOrNull(key: string): number[] | null {
    const v = this.get(key, null);
    if (v === null) return null;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) this.fail(key, 'a list of numbers or null', v);
    return v as number[];
  }
  /** A key whose only supported value is `def` (a diffusers option this project does not implement). */
  only(key: string, def: unknown, why: string): void {
    const v = this.get(key, def);
    if (v !== def && !(v === null && def === false)) this.fail(key, `${JSON.stringify(def)} (${why})`, v);
  }
}

export type BetaSchedule = 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';
export type PredictionType = 'epsilon' | 'v_prediction' | 'sample';
export type Spacing = 'leading' | 'trailing' | 'linspace';

/** torch.linspace(start, end, steps, dtype=float32) on the CPU (its kernel uses a fused multiply-add). */
export function linspaceF32(start: number, end: number, steps: number): Float32Array {
  const s = f32(start);
  const e = f32(end);
  const step = f32(f32(e - s) / (steps - 1));
  const half = Math.floor(steps / 2);
  const out = new Float32Array(steps);
  for (let i = 0; i < steps; i++) out[i] = i < half ? s + step * i : e - step * (steps - i - 1);
  return out;
}

/** betas_for_alpha_bar with the cosine transform (squaredcos_cap_v2), max beta 0.999. */
function cosineBetas(n: number): Float32Array {
  const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * Math.PI / 2) ** 2;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), 0.999);
  return out;
}

/** Rescale betas to zero terminal SNR (Lin et al. 2023, Algorithm 1), in float32 like diffusers. */
function rescaleZeroTerminalSnr(betas: Float32Array): Float32Array {
  const n = betas.length;
  const sqrtBar = new Float32Array(n);
  let acc = 1;
  for (let i = 0; i < n; i++) {
    acc *= f32(1 - betas[i]);
    sqrtBar[i] = Math.sqrt(f32(acc));
  }
  const s0 = sqrtBar[0];
  const sT = sqrtBar[n - 1];
  const scale = f32(s0 / f32(s0 - sT));
  for (let i = 0; i < n; i++) sqrtBar[i] = f32(f32(sqrtBar[i] - sT) * scale);
  const bar = sqrtBar.map((x) => x * x);
  const out = new Float32Array(n);
  out[0] = 1 - bar[0];
  for (let i = 1; i < n; i++) out[i] = 1 - f32(bar[i] / bar[i - 1]);
  return out;
}

/** The training noise schedule: alphas_cumprod (float32) from the beta keys of a config. */
export function trainingSchedule(
  r: ConfigReader,
  opts: { rescale: boolean; sigmaFloor?: boolean },
): { alphasCumprod: Float32Array; numTrain: number } {
  const numTrain = r.int('num_train_timesteps', 1000, 1);
  const betaStart = r.number('beta_start', 0.0001);
  const betaEnd = r.number('beta_end', 0.02);
  const schedule = r.choice<BetaSchedule>('beta_schedule', 'linear', ['linear', 'scaled_linear', 'squaredcos_cap_v2']);
  const trained = r.numbersOrNull('trained_betas');
  let betas: Float32Array;
  if (trained) {
    if (trained.length !== numTrain) {
      throw new UserError(`scheduler config: "trained_betas" has ${trained.length} values, expected num_train_timesteps = ${numTrain}`);
    }
    betas = Float32Array.from(trained);
  } else if (schedule === 'linear') betas = linspaceF32(betaStart, betaEnd, numTrain);
  else if (schedule === 'scaled_linear') betas = linspaceF32(Math.sqrt(betaStart), Math.sqrt(betaEnd), numTrain).map((b) => b * b);
  else betas = cosineBetas(numTrain);
  const rescale = opts.rescale && r.bool('rescale_betas_zero_snr', false);
  if (rescale) betas = rescaleZeroTerminalSnr(betas);
  // torch.cumprod on the CPU accumulates float32 inputs in double and rounds each output.
  const alphasCumprod = new Float32Array(numTrain);
  let acc = 1;
  for (let i = 0; i < numTrain; i++) {
    acc *= f32(1 - betas[i]);
    alphasCumprod[i] = acc;
  }
  // Sigma-based schedulers keep the last sigma finite (diffusers sets 2^-24); DDIM and LCM keep the 0.
  if (rescale && opts.sigmaFloor) alphasCumprod[numTrain - 1] = 2 ** -24;
  return { alphasCumprod, numTrain };
}

/** Karras et al. (2022) sigmas, rho = 7, float64 (numpy). */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, n: number): number[] {
  const minInv = sigmaMin ** (1 / 7);
  const maxInv = sigmaMax ** (1 / 7);
  return linspace(0, 1, n).map((ramp) => (maxInv + ramp * (minInv - maxInv)) ** 7);
}

/** Exponential (log-uniform) sigmas, float64. */
export function exponentialSigmas(sigmaMin: number, sigmaMax: number, n: number): number[] {
  return linspace(Math.log(sigmaMax), Math.log(sigmaMin), n).map(Math.exp);
}

/** numpy.linspace in float64 (endpoint included). */
export function linspace(start: number, end: number, n: number): number[] {
  if (n === 1) return [start];
  const step = (end - start) / (n - 1);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(start + i * step);
  out[n - 1] = end;
  return out;
}

/** numpy.round (half to even). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** numpy.arange(start, stop, step) for a negative step. */
function arangeDown(start: number, stop: number, step: number): number[] {
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(start + i * step);
  return out;
}

/**
 * The common timestep spacings (descending, float64 before any cast):
 * linspace: linspace(0, T-1, n) reversed (not rounded; callers round where diffusers does);
 * leading: arange(n) * (T // n) reversed, + steps_offset; trailing: round(arange(T, 0, -T/n)) - 1.
 */
export function spacedTimesteps(spacing: Spacing, n: number, numTrain: number, stepsOffset: number): number[] {
  if (spacing === 'linspace') return linspace(0, numTrain - 1, n).reverse();
  if (spacing === 'leading') {
    const ratio = Math.floor(numTrain / n);
    return Array.from({ length: n }, (_, i) => (n - 1 - i) * ratio + stepsOffset);
  }
  return arangeDown(numTrain, 0, -numTrain / n).map((t) => roundHalfEven(t) - 1);
}

/** sigma_t = sqrt((1 - a) / a) per training step, in float32 like diffusers' torch expression. */
export function trainingSigmas(alphasCumprod: Float32Array): Float32Array {
  return alphasCumprod.map((a) => Math.sqrt(f32(f32(1 - a) / a)));
}

/** np.interp(x, arange(len(fp)), fp) for x within range. */
export function interpIndex(x: number, fp: ArrayLike<number>): number {
  if (x <= 0) return fp[0];
  if (x >= fp.length - 1) return fp[fp.length - 1];
  const j = Math.floor(x);
  if (x === j) return fp[j];
  return (fp[j + 1] - fp[j]) * (x - j) + fp[j];
}

/** diffusers' _sigma_to_t: the fractional training timestep whose log-sigma matches (float64). */
export function sigmaToT(sigma: number, logSigmas: ArrayLike<number>): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  const n = logSigmas.length;
  // low = the last index whose log-sigma is <= logSigma (log-sigmas ascend), clipped to n - 2.
  let count = 0;
  let lastTrue = 0;
  for (let i = 0; i < n; i++) {
    if (logSigma - logSigmas[i] >= 0) {
      count++;
      lastTrue = i;
    }
  }
  // argmax of the cumulative count = first index reaching the maximum count = the last true index (0 if none).
  let low = count === 0 ? 0 : lastTrue;
  if (low > n - 2) low = n - 2;
  const lo = logSigmas[low];
  const hi = logSigmas[low + 1];
  let w = (lo - logSigma) / (lo - hi);
  w = Math.min(1, Math.max(0, w));
  return (1 - w) * low + w * (low + 1);
}

/** Index of timestep t in the schedule as diffusers picks it (the second match when t repeats). */
function indexForTimestep(timesteps: number[], t: number, ifMissing?: number): number {
  const hits: number[] = [];
  timesteps.forEach((v, i) => {
    if (v === t) hits.push(i);
  });
  if (hits.length === 0) {
    if (ifMissing !== undefined) return ifMissing;
    throw new Error(`timestep ${t} is not in the schedule [${timesteps.join(', ')}]`);
  }
  return hits.length > 1 ? hits[1] : hits[0];
}

/**
 * What the alpha-based schedulers (DDIM, LCM, PNDM) share: the training schedule and the final alpha
 * (set_alpha_to_one), no sigmas and no input scaling, and add_noise with sqrt(alphas_cumprod).
 * The constructor reads the beta keys and set_alpha_to_one; the subclass reads the rest from the
 * returned reader (`config` is the reader's `used` record, so it ends up holding every key read).
 */
export abstract class AlphaScheduler implements Scheduler {
  abstract readonly className: string;
  readonly config: Record<string, unknown>;
  timesteps: number[] = [];
  sigmas = null;
  initNoiseSigma = 1;
  numInferenceSteps = 0;
  protected readonly reader: ConfigReader;
  protected readonly alphasCumprod: Float32Array;
  protected readonly numTrain: number;
  protected readonly finalAlphaCumprod: number;

  constructor(raw: Record<string, unknown>, where: string, opts: { rescale: boolean; alphaToOne: boolean }) {
    this.reader = new ConfigReader(raw, where);
    ({ alphasCumprod: this.alphasCumprod, numTrain: this.numTrain } = trainingSchedule(this.reader, { rescale: opts.rescale }));
    this.finalAlphaCumprod = this.reader.bool('set_alpha_to_one', opts.alphaToOne) ? 1 : this.alphasCumprod[0];
    this.config = this.reader.used;
  }

  abstract setTimesteps(numInferenceSteps: number): void;
  abstract setBeginIndex(index: number): void;
  abstract step(modelOutput: Float32Array, t: number, sample: Float32Array, opts?: StepOptions): StepResult;

  /** alphas_cumprod at t, or the final alpha for the step past the last timestep (t < 0). */
  protected alphaAt(t: number): number {
    return t >= 0 ? this.alphasCumprod[t] : this.finalAlphaCumprod;
  }

  inputScale(): number {
    return 1;
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  /** sqrt(a_t) * x0 + sqrt(1 - a_t) * noise (t an integer timestep). */
  addNoise(original: Float32Array, noise: Float32Array, t: number): Float32Array {
    checkLengths(noise, original, 'addNoise');
    const ac = this.alphasCumprod;
    if (!Number.isInteger(t) || t < 0 || t >= ac.length) {
      throw new RangeError(`addNoise: timestep must be an integer in [0, ${ac.length}), got ${t}`);
    }
    const sa = f32(Math.sqrt(ac[t]));
    const sb = f32(Math.sqrt(f32(1 - ac[t])));
    return original.map((x, i) => sa * x + sb * noise[i]);
  }
}

/**
 * diffusers' step_index / begin_index bookkeeping for schedulers that walk their schedule by position:
 * the first step finds t in the timesteps (or starts at the begin index img2img set), then each step advances.
 */
export class StepIndex {
  private step: number | null = null;
  private begin: number | null = null;
  /** `ifMissing`: the index to use when t is not in the schedule (default: throw). */
  constructor(private readonly ifMissing?: (timesteps: number[]) => number) {}

  reset(): void {
    this.step = null;
    this.begin = null;
  }
  setBegin(index: number): void {
    this.begin = index;
  }
  private find(timesteps: number[], t: number): number {
    return indexForTimestep(timesteps, t, this.ifMissing?.(timesteps));
  }
  /** The index of the step at timestep t. */
  current(timesteps: number[], t: number): number {
    if (this.step === null) this.step = this.begin ?? this.find(timesteps, t);
    return this.step;
  }
  /** After a step at index i. */
  advance(i: number): void {
    this.step = i + 1;
  }
  /** The index add_noise takes its noise level from. */
  forNoise(timesteps: number[], t: number): number {
    return this.begin === null ? this.find(timesteps, t) : (this.step ?? this.begin);
  }
}

/** Draws noise through opts.noise when given, else from the scheduler's own seeded stream. */
export class NoiseSource {
  private stream: NormalStream;
  constructor(seed: number) {
    this.stream = normalStream(seed);
  }
  draw(n: number, opts?: StepOptions): Float32Array {
    if (opts?.noise) {
      const z = opts.noise(n);
      if (z.length !== n) throw new Error(`noise function returned ${z.length} values, expected ${n}`);
      return z;
    }
    return this.stream.next(n);
  }
}

export function checkLengths(a: Float32Array, b: Float32Array, what: string): void {
  if (a.length !== b.length) throw new Error(`${what}: length ${a.length} does not match sample length ${b.length}`);
}

export function checkSteps(n: number, numTrain: number): void {
  if (!Number.isInteger(n) || n < 1 || n > numTrain) {
    throw new UserError(`number of inference steps must be an integer in [1, ${numTrain}], got ${n}`);
  }
}
