/** DDIMScheduler (Song et al. 2020), as diffusers' scheduling_ddim.py: eta, clip_sample, set_alpha_to_one. */
import {
  ConfigReader, NoiseSource, checkLengths, checkSteps, f32, roundHalfEven, spacedTimesteps, trainingSchedule,
  type PredictionType, type Scheduler, type Spacing, type StepOptions, type StepResult,
} from './common.ts';

export class DDIMScheduler implements Scheduler {
  readonly className = 'DDIMScheduler';
  readonly config: Record<string, unknown>;
  timesteps: number[] = [];
  sigmas = null;
  initNoiseSigma = 1;
  numInferenceSteps = 0;
  private readonly alphasCumprod: Float32Array;
  private readonly numTrain: number;
  private readonly finalAlphaCumprod: number;
  private readonly prediction: PredictionType;
  private readonly spacing: Spacing;
  private readonly stepsOffset: number;
  private readonly clipSample: boolean;
  private readonly clipRange: number;
  private readonly noise: NoiseSource;

  constructor(raw: Record<string, unknown>, where: string, seed: number) {
    const r = new ConfigReader(raw, where);
    ({ alphasCumprod: this.alphasCumprod, numTrain: this.numTrain } = trainingSchedule(r, { rescale: true }));
    this.finalAlphaCumprod = r.bool('set_alpha_to_one', true) ? 1 : this.alphasCumprod[0];
    this.prediction = r.choice<PredictionType>('prediction_type', 'epsilon', ['epsilon', 'v_prediction', 'sample']);
    this.spacing = r.choice<Spacing>('timestep_spacing', 'leading', ['leading', 'trailing', 'linspace']);
    this.stepsOffset = r.int('steps_offset', 0);
    this.clipSample = r.bool('clip_sample', true);
    this.clipRange = r.number('clip_sample_range', 1);
    r.only('thresholding', false, 'dynamic thresholding is not implemented');
    this.config = r.used;
    this.noise = new NoiseSource(seed);
  }

  setTimesteps(n: number): void {
    checkSteps(n, this.numTrain);
    this.numInferenceSteps = n;
    // diffusers rounds and casts to int64 for every spacing (linspace included).
    const ts = spacedTimesteps(this.spacing, n, this.numTrain, this.stepsOffset);
    this.timesteps = this.spacing === 'linspace' ? ts.map(roundHalfEven) : ts;
  }

  setBeginIndex(): void {
    // DDIM derives everything from the timestep value itself.
  }

  inputScale(): number {
    return 1;
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  private alphaAt(t: number): number {
    return t >= 0 ? this.alphasCumprod[t] : this.finalAlphaCumprod;
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, opts?: StepOptions): StepResult {
    if (this.numInferenceSteps === 0) throw new Error('DDIMScheduler: call setTimesteps before step');
    checkLengths(modelOutput, sample, 'DDIMScheduler.step');
    const eta = opts?.eta ?? 0;
    const prevT = t - Math.floor(this.numTrain / this.numInferenceSteps);
    const a = this.alphaAt(t);
    const aPrev = this.alphaAt(prevT);
    const b = f32(1 - a);
    const bPrev = f32(1 - aPrev);
    const sa = f32(Math.sqrt(a));
    const sb = f32(Math.sqrt(b));
    const variance = f32(f32(bPrev / b) * f32(1 - f32(a / aPrev)));
    const std = f32(eta * f32(Math.sqrt(variance)));
    const dirCoef = f32(Math.sqrt(f32(f32(1 - aPrev) - f32(std * std))));
    const saPrev = f32(Math.sqrt(aPrev));
    const n = sample.length;
    const x0 = new Float32Array(n);
    const prev = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const x = sample[i];
      const m = modelOutput[i];
      let p0: number, eps: number;
      if (this.prediction === 'epsilon') {
        p0 = (x - sb * m) / sa;
        eps = m;
      } else if (this.prediction === 'sample') {
        p0 = m;
        eps = (x - sa * p0) / sb;
      } else {
        p0 = sa * x - sb * m;
        eps = sa * m + sb * x;
      }
      if (this.clipSample) p0 = Math.min(this.clipRange, Math.max(-this.clipRange, p0));
      x0[i] = p0;
      prev[i] = saPrev * x0[i] + dirCoef * eps;
    }
    if (eta > 0) {
      const z = this.noise.draw(n, opts);
      for (let i = 0; i < n; i++) prev[i] += std * z[i];
    }
    return { prevSample: prev, denoised: x0 };
  }

  addNoise(original: Float32Array, noise: Float32Array, t: number): Float32Array {
    return addNoiseAlpha(this.alphasCumprod, t, original, noise);
  }
}

/** sqrt(a_t) * x0 + sqrt(1 - a_t) * noise, as the alpha-based schedulers' add_noise (t an integer timestep). */
export function addNoiseAlpha(alphasCumprod: Float32Array, t: number, original: Float32Array, noise: Float32Array): Float32Array {
  checkLengths(noise, original, 'addNoise');
  if (!Number.isInteger(t) || t < 0 || t >= alphasCumprod.length) {
    throw new RangeError(`addNoise: timestep must be an integer in [0, ${alphasCumprod.length}), got ${t}`);
  }
  const a = alphasCumprod[t];
  const sa = f32(Math.sqrt(a));
  const sb = f32(Math.sqrt(f32(1 - a)));
  return original.map((x, i) => sa * x + sb * noise[i]);
}
