/**
 * DPMSolverMultistepScheduler (DPM-Solver++, Lu et al. 2022) as diffusers' scheduling_dpmsolver_multistep.py:
 * algorithm_type dpmsolver++ / sde-dpmsolver++ / dpmsolver, solver_order 1-3, midpoint or heun, Karras or
 * exponential sigmas, lower_order_final, euler_at_final, final_sigmas_type, lambda_min_clipped.
 * ("DPM++ 2M Karras" = dpmsolver++, order 2, use_karras_sigmas.)
 */
import {
  ConfigReader, NoiseSource, StepIndex, checkLengths, checkSteps, exponentialSigmas, f32, interpIndex,
  karrasSigmas, roundHalfEven, sigmaToT, spacedTimesteps, trainingSchedule, trainingSigmas,
  type PredictionType, type Scheduler, type Spacing, type StepOptions, type StepResult,
} from './common.ts';
import { UserError } from '../../errors.ts';

type Algorithm = 'dpmsolver++' | 'sde-dpmsolver++' | 'dpmsolver';

export class DPMSolverMultistepScheduler implements Scheduler {
  readonly className = 'DPMSolverMultistepScheduler';
  readonly config: Record<string, unknown>;
  timesteps: number[] = [];
  sigmas: number[];
  initNoiseSigma = 1;
  numInferenceSteps = 0;
  private readonly alphasCumprod: Float32Array;
  private readonly numTrain: number;
  private readonly prediction: PredictionType;
  private readonly spacing: Spacing;
  private readonly stepsOffset: number;
  private readonly algorithm: Algorithm;
  private readonly order: number;
  private readonly solver: 'midpoint' | 'heun';
  private readonly lowerOrderFinal: boolean;
  private readonly eulerAtFinal: boolean;
  private readonly finalSigmas: 'zero' | 'sigma_min';
  private readonly sigmaKind: 'interp' | 'karras' | 'exponential';
  private readonly sigmaMin: number | null;
  private readonly sigmaMax: number | null;
  private readonly lambdaMinClipped: number;
  private readonly cosine: boolean;
  private readonly noise: NoiseSource;
  private outputs: (Float32Array | null)[] = [];
  private lowerOrderNums = 0;
  // t not in the schedule: the last step, as diffusers' _init_step_index.
  private readonly index = new StepIndex((ts) => ts.length - 1);

  constructor(raw: Record<string, unknown>, where: string, seed: number) {
    const r = new ConfigReader(raw, where);
    ({ alphasCumprod: this.alphasCumprod, numTrain: this.numTrain } = trainingSchedule(r, { rescale: true, sigmaFloor: true }));
    this.cosine = r.used.beta_schedule === 'squaredcos_cap_v2';
    this.prediction = r.choice<PredictionType>('prediction_type', 'epsilon', ['epsilon', 'v_prediction', 'sample']);
    this.spacing = r.choice<Spacing>('timestep_spacing', 'linspace', ['leading', 'trailing', 'linspace']);
    this.stepsOffset = r.int('steps_offset', 0);
    this.algorithm = r.choice<Algorithm>('algorithm_type', 'dpmsolver++', ['dpmsolver++', 'sde-dpmsolver++', 'dpmsolver']);
    this.order = r.int('solver_order', 2, 1);
    if (this.order > 3) r.only('solver_order', 2, 'solver_order must be 1, 2 or 3');
    this.solver = r.choice('solver_type', 'midpoint', ['midpoint', 'heun'] as const);
    this.lowerOrderFinal = r.bool('lower_order_final', true);
    this.eulerAtFinal = r.bool('euler_at_final', false);
    this.finalSigmas = r.choice('final_sigmas_type', 'zero', ['zero', 'sigma_min'] as const);
    const karras = r.bool('use_karras_sigmas', false);
    const exponential = r.bool('use_exponential_sigmas', false);
    if (karras && exponential) r.only('use_exponential_sigmas', false, 'only one of use_karras_sigmas and use_exponential_sigmas can be true');
    this.sigmaKind = karras ? 'karras' : exponential ? 'exponential' : 'interp';
    this.sigmaMin = r.numberOrNull('sigma_min');
    this.sigmaMax = r.numberOrNull('sigma_max');
    this.lambdaMinClipped = r.number('lambda_min_clipped', -Infinity);
    r.only('thresholding', false, 'dynamic thresholding is not implemented');
    r.only('use_lu_lambdas', false, 'Lu lambdas are not implemented');
    r.only('use_beta_sigmas', false, 'beta sigmas are not implemented');
    r.only('use_flow_sigmas', false, 'flow sigmas are not implemented');
    r.only('variance_type', null, 'learned variance is not implemented');
    if (this.algorithm === 'dpmsolver' && this.finalSigmas === 'zero') {
      throw new UserError(`${where}: "final_sigmas_type": "zero" is not supported with "algorithm_type": "dpmsolver"; use "sigma_min"`);
    }
    this.config = r.used;
    this.noise = new NoiseSource(seed);
    this.sigmas = Array.from(trainingSigmas(this.alphasCumprod));
  }

  setTimesteps(n: number): void {
    checkSteps(n, this.numTrain);
    const train = trainingSigmas(this.alphasCumprod);
    const logSigmas = train.map(Math.log);
    // lambda_t = log(alpha_t) - log(sigma_t) in float32; clip the schedule where lambda < lambda_min_clipped.
    let clipped = 0;
    for (let i = this.numTrain - 1; i >= 0; i--) {
      const a = this.alphasCumprod[i];
      const lambda = f32(f32(Math.log(f32(Math.sqrt(a)))) - f32(Math.log(f32(Math.sqrt(f32(1 - a))))));
      if (lambda < this.lambdaMinClipped) clipped++;
      else break;
    }
    const last = this.numTrain - clipped;
    let ts: number[];
    if (this.spacing === 'linspace') {
      ts = spacedTimesteps('linspace', n + 1, last, 0).map(roundHalfEven).slice(0, -1);
    } else if (this.spacing === 'leading') {
      const ratio = Math.floor(last / (n + 1));
      ts = Array.from({ length: n }, (_, i) => (n - i) * ratio + this.stepsOffset);
    } else {
      const ratio = this.numTrain / n;
      ts = [];
      for (let k = 0; last - k * ratio > 0; k++) ts.push(roundHalfEven(last - k * ratio) - 1);
    }
    let sigmas: number[];
    if (this.sigmaKind === 'interp') {
      sigmas = ts.map((t) => interpIndex(t, train));
    } else {
      const lo = this.sigmaMin ?? train[0];
      const hi = this.sigmaMax ?? train[train.length - 1];
      sigmas = this.sigmaKind === 'karras' ? karrasSigmas(lo, hi, n) : exponentialSigmas(lo, hi, n);
      ts = sigmas.map((s) => sigmaToT(s, logSigmas));
      if (this.sigmaKind === 'karras' && !this.cosine) ts = ts.map(roundHalfEven);
    }
    // diffusers casts timesteps to int64 (truncation) whatever the sigma kind.
    this.timesteps = ts.map(Math.trunc);
    const sigmaLast = this.finalSigmas === 'sigma_min' ? train[0] : 0;
    this.sigmas = [...sigmas, sigmaLast].map(f32);
    this.numInferenceSteps = this.timesteps.length;
    this.outputs = new Array(this.order).fill(null);
    this.lowerOrderNums = 0;
    this.index.reset();
  }

  setBeginIndex(index: number): void {
    this.index.setBegin(index);
  }

  inputScale(): number {
    return 1;
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  /** alpha_t, sigma_t and lambda_t of noise level sigma (float32, like diffusers). */
  private coeffs(sigma: number): { alpha: number; sig: number; lambda: number } {
    const alpha = f32(1 / f32(Math.sqrt(f32(f32(sigma * sigma) + 1))));
    const sig = f32(sigma * alpha);
    return { alpha, sig, lambda: f32(f32(Math.log(alpha)) - f32(Math.log(sig))) };
  }

  /** The model output converted to what the solver integrates: x0 (dpmsolver++) or epsilon (dpmsolver). */
  private convert(m: Float32Array, x: Float32Array, sigma: number): Float32Array {
    const { alpha, sig } = this.coeffs(sigma);
    const p = this.prediction;
    if (this.algorithm !== 'dpmsolver') {
      if (p === 'epsilon') return x.map((v, i) => (v - sig * m[i]) / alpha);
      if (p === 'sample') return Float32Array.from(m);
      return x.map((v, i) => alpha * v - sig * m[i]);
    }
    if (p === 'epsilon') return Float32Array.from(m);
    if (p === 'sample') return x.map((v, i) => (v - alpha * m[i]) / sig);
    return x.map((v, i) => alpha * m[i] + sig * v);
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, opts?: StepOptions): StepResult {
    if (this.numInferenceSteps === 0) throw new Error('DPMSolverMultistepScheduler: call setTimesteps before step');
    checkLengths(modelOutput, sample, 'DPMSolverMultistepScheduler.step');
    const i = this.index.current(this.timesteps, t);
    const L = this.timesteps.length;
    const lowerFinal = i === L - 1 && (this.eulerAtFinal || (this.lowerOrderFinal && L < 15) || this.finalSigmas === 'zero');
    const lowerSecond = i === L - 2 && this.lowerOrderFinal && L < 15;
    const converted = this.convert(modelOutput, sample, this.sigmas[i]);
    this.outputs.shift();
    this.outputs.push(converted);
    const z = this.algorithm === 'sde-dpmsolver++' ? this.noise.draw(sample.length, opts) : null;
    let prev: Float32Array;
    if (this.order === 1 || this.lowerOrderNums < 1 || lowerFinal) prev = this.firstOrder(converted, sample, z, i);
    else if (this.order === 2 || this.lowerOrderNums < 2 || lowerSecond) prev = this.secondOrder(sample, z, i);
    else prev = this.thirdOrder(sample, z, i);
    if (this.lowerOrderNums < this.order) this.lowerOrderNums++;
    this.index.advance(i);
    return { prevSample: prev, denoised: this.algorithm === 'dpmsolver' ? undefined : converted };
  }

  private firstOrder(m: Float32Array, x: Float32Array, z: Float32Array | null, i: number): Float32Array {
    const t = this.coeffs(this.sigmas[i + 1]);
    const s = this.coeffs(this.sigmas[i]);
    const h = f32(t.lambda - s.lambda);
    if (this.algorithm === 'dpmsolver++') {
      const a = f32(t.sig / s.sig);
      const b = f32(t.alpha * f32(f32(Math.exp(-h)) - 1));
      return x.map((v, k) => a * v - b * m[k]);
    }
    if (this.algorithm === 'dpmsolver') {
      const a = f32(t.alpha / s.alpha);
      const b = f32(t.sig * f32(f32(Math.exp(h)) - 1));
      return x.map((v, k) => a * v - b * m[k]);
    }
    const e2 = f32(Math.exp(-2 * h));
    const a = f32(f32(t.sig / s.sig) * f32(Math.exp(-h)));
    const b = f32(t.alpha * f32(1 - e2));
    const c = f32(t.sig * f32(Math.sqrt(f32(1 - e2))));
    return x.map((v, k) => a * v + b * m[k] + c * z![k]);
  }

  private secondOrder(x: Float32Array, z: Float32Array | null, i: number): Float32Array {
    const t = this.coeffs(this.sigmas[i + 1]);
    const s0 = this.coeffs(this.sigmas[i]);
    const s1 = this.coeffs(this.sigmas[i - 1]);
    const m0 = this.outputs[this.order - 1]!;
    const m1 = this.outputs[this.order - 2]!;
    const h = f32(t.lambda - s0.lambda);
    const h0 = f32(s0.lambda - s1.lambda);
    const r0 = f32(h0 / h);
    const inv = f32(1 / r0);
    const d1 = (k: number) => inv * (m0[k] - m1[k]);
    const em = f32(f32(Math.exp(-h)) - 1);
    const ep = f32(f32(Math.exp(h)) - 1);
    if (this.algorithm === 'dpmsolver++') {
      const a = f32(t.sig / s0.sig);
      const b = f32(t.alpha * em);
      const c = this.solver === 'midpoint' ? f32(-0.5 * b) : f32(t.alpha * f32(f32(em / h) + 1));
      return x.map((v, k) => a * v - b * m0[k] + c * d1(k));
    }
    if (this.algorithm === 'dpmsolver') {
      const a = f32(t.alpha / s0.alpha);
      const b = f32(t.sig * ep);
      const c = this.solver === 'midpoint' ? f32(0.5 * b) : f32(t.sig * f32(f32(ep / h) - 1));
      return x.map((v, k) => a * v - b * m0[k] - c * d1(k));
    }
    const e2 = f32(Math.exp(-2 * h));
    const a = f32(f32(t.sig / s0.sig) * f32(Math.exp(-h)));
    const b = f32(t.alpha * f32(1 - e2));
    const c = this.solver === 'midpoint' ? f32(0.5 * b) : f32(t.alpha * f32(f32(f32(1 - e2) / f32(-2 * h)) + 1));
    const n = f32(t.sig * f32(Math.sqrt(f32(1 - e2))));
    return x.map((v, k) => a * v + b * m0[k] + c * d1(k) + n * z![k]);
  }

  private thirdOrder(x: Float32Array, z: Float32Array | null, i: number): Float32Array {
    const t = this.coeffs(this.sigmas[i + 1]);
    const s0 = this.coeffs(this.sigmas[i]);
    const s1 = this.coeffs(this.sigmas[i - 1]);
    const s2 = this.coeffs(this.sigmas[i - 2]);
    const [m2, m1, m0] = this.outputs as Float32Array[];
    const h = f32(t.lambda - s0.lambda);
    const h0 = f32(s0.lambda - s1.lambda);
    const h1 = f32(s1.lambda - s2.lambda);
    const r0 = f32(h0 / h);
    const r1 = f32(h1 / h);
    const i0 = f32(1 / r0);
    const i1 = f32(1 / r1);
    const w = f32(r0 / f32(r0 + r1));
    const v2 = f32(1 / f32(r0 + r1));
    const n = x.length;
    const D1 = new Float32Array(n);
    const D2 = new Float32Array(n);
    for (let k = 0; k < n; k++) {
      const d10 = i0 * (m0[k] - m1[k]);
      const d11 = i1 * (m1[k] - m2[k]);
      D1[k] = d10 + w * (d10 - d11);
      D2[k] = v2 * (d10 - d11);
    }
    if (this.algorithm === 'dpmsolver++') {
      const em = f32(f32(Math.exp(-h)) - 1);
      const a = f32(t.sig / s0.sig);
      const b = f32(t.alpha * em);
      const c = f32(t.alpha * f32(f32(em / h) + 1));
      const d = f32(t.alpha * f32(f32(f32(em + h) / f32(h * h)) - 0.5));
      return x.map((v, k) => a * v - b * m0[k] + c * D1[k] - d * D2[k]);
    }
    if (this.algorithm === 'dpmsolver') {
      const ep = f32(f32(Math.exp(h)) - 1);
      const a = f32(t.alpha / s0.alpha);
      const b = f32(t.sig * ep);
      const c = f32(t.sig * f32(f32(ep / h) - 1));
      const d = f32(t.sig * f32(f32(f32(ep - h) / f32(h * h)) - 0.5));
      return x.map((v, k) => a * v - b * m0[k] - c * D1[k] - d * D2[k]);
    }
    const e2 = f32(Math.exp(-2 * h));
    const a = f32(f32(t.sig / s0.sig) * f32(Math.exp(-h)));
    const b = f32(t.alpha * f32(1 - e2));
    const c = f32(t.alpha * f32(f32(f32(1 - e2) / f32(-2 * h)) + 1));
    const d = f32(t.alpha * f32(f32(f32(f32(1 - e2) - f32(2 * h)) / f32(f32(2 * h) * f32(2 * h))) - 0.5));
    const nz = f32(t.sig * f32(Math.sqrt(f32(1 - e2))));
    return x.map((v, k) => a * v + b * m0[k] + c * D1[k] + d * D2[k] + nz * z![k]);
  }

  addNoise(original: Float32Array, noise: Float32Array, t: number): Float32Array {
    checkLengths(noise, original, 'addNoise');
    const i = this.index.forNoise(this.timesteps, t);
    const { alpha, sig } = this.coeffs(this.sigmas[i]);
    return original.map((x, k) => alpha * x + sig * noise[k]);
  }
}
