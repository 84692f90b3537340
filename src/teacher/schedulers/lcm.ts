/**
 * LCMScheduler (latent consistency models), as diffusers' scheduling_lcm.py: timesteps picked from the
 * original_inference_steps skeleton, a consistency boundary condition (c_skip, c_out), and fresh noise
 * between steps.
 */
import {
  AlphaScheduler, NoiseSource, StepIndex, checkLengths, f32,
  type PredictionType, type StepOptions, type StepResult,
} from './common.ts';
import { UserError } from '../../errors.ts';

export class LCMScheduler extends AlphaScheduler {
  readonly className = 'LCMScheduler';
  private readonly prediction: PredictionType;
  private readonly originalSteps: number;
  private readonly timestepScaling: number;
  private readonly clipSample: boolean;
  private readonly clipRange: number;
  private readonly noise: NoiseSource;
  private readonly index = new StepIndex();

  constructor(raw: Record<string, unknown>, where: string, seed: number) {
    super(raw, where, { rescale: true, alphaToOne: true });
    const r = this.reader;
    this.prediction = r.choice<PredictionType>('prediction_type', 'epsilon', ['epsilon', 'v_prediction', 'sample']);
    this.originalSteps = r.int('original_inference_steps', 50, 1);
    this.timestepScaling = r.number('timestep_scaling', 10);
    this.clipSample = r.bool('clip_sample', false);
    this.clipRange = r.number('clip_sample_range', 1);
    r.only('thresholding', false, 'dynamic thresholding is not implemented');
    // LCM ignores timestep_spacing / steps_offset; read them so a run records them as given.
    r.choice('timestep_spacing', 'leading', ['leading', 'trailing', 'linspace'] as const);
    r.int('steps_offset', 0);
    this.noise = new NoiseSource(seed);
    if (this.originalSteps > this.numTrain) {
      throw new UserError(`${where}: "original_inference_steps" (${this.originalSteps}) cannot exceed num_train_timesteps (${this.numTrain})`);
    }
  }

  setTimesteps(n: number): void {
    const k = Math.floor(this.numTrain / this.originalSteps);
    if (!Number.isInteger(n) || n < 1 || n > this.originalSteps) {
      throw new UserError(`LCMScheduler: number of inference steps must be an integer in [1, original_inference_steps = ${this.originalSteps}], got ${n}`);
    }
    // The skeleton k-1, 2k-1, ..., reversed; take n evenly spaced entries (np.linspace(0, len, n, endpoint=False), floored).
    const skeleton = Array.from({ length: this.originalSteps }, (_, i) => (i + 1) * k - 1).reverse();
    const len = skeleton.length;
    this.timesteps = Array.from({ length: n }, (_, i) => skeleton[Math.floor(i * (len / n))]);
    this.numInferenceSteps = n;
    this.index.reset();
  }

  setBeginIndex(index: number): void {
    this.index.setBegin(index);
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, opts?: StepOptions): StepResult {
    if (this.numInferenceSteps === 0) throw new Error('LCMScheduler: call setTimesteps before step');
    checkLengths(modelOutput, sample, 'LCMScheduler.step');
    const i = this.index.current(this.timesteps, t);
    const prevT = i + 1 < this.timesteps.length ? this.timesteps[i + 1] : t;
    const a = this.alphasCumprod[t];
    const aPrev = this.alphaAt(prevT);
    const sa = f32(Math.sqrt(a));
    const sb = f32(Math.sqrt(f32(1 - a)));
    const saPrev = f32(Math.sqrt(aPrev));
    const sbPrev = f32(Math.sqrt(f32(1 - aPrev)));
    const scaled = f32(t * this.timestepScaling);
    const cSkip = f32(0.25 / f32(f32(scaled * scaled) + 0.25));
    const cOut = f32(scaled / f32(Math.sqrt(f32(f32(scaled * scaled) + 0.25))));
    const n = sample.length;
    const denoised = new Float32Array(n);
    for (let k = 0; k < n; k++) {
      const x = sample[k];
      const m = modelOutput[k];
      let p0 = this.prediction === 'epsilon' ? (x - sb * m) / sa : this.prediction === 'sample' ? m : sa * x - sb * m;
      if (this.clipSample) p0 = Math.min(this.clipRange, Math.max(-this.clipRange, p0));
      denoised[k] = cOut * f32(p0) + cSkip * x;
    }
    let prev = denoised;
    if (i !== this.numInferenceSteps - 1) {
      const z = this.noise.draw(n, opts);
      prev = denoised.map((d, k) => saPrev * d + sbPrev * z[k]);
    }
    this.index.advance(i);
    return { prevSample: prev, denoised };
  }
}
