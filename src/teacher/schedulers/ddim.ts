/** DDIMScheduler (Song et al. 2020), as diffusers' scheduling_ddim.py: eta, clip_sample, set_alpha_to_one. */
import {
  AlphaScheduler, NoiseSource, checkLengths, checkSteps, f32, roundHalfEven, spacedTimesteps,
  type PredictionType, type Spacing, type StepOptions, type StepResult,
} from './common.ts';

export class DDIMScheduler extends AlphaScheduler {
  readonly className = 'DDIMScheduler';
  private readonly prediction: PredictionType;
  private readonly spacing: Spacing;
  private readonly stepsOffset: number;
  private readonly clipSample: boolean;
  private readonly clipRange: number;
  private readonly noise: NoiseSource;

  constructor(raw: Record<string, unknown>, where: string, seed: number) {
    super(raw, where, { rescale: true, alphaToOne: true });
    const r = this.reader;
    this.prediction = r.choice<PredictionType>('prediction_type', 'epsilon', ['epsilon', 'v_prediction', 'sample']);
    this.spacing = r.choice<Spacing>('timestep_spacing', 'leading', ['leading', 'trailing', 'linspace']);
    this.stepsOffset = r.int('steps_offset', 0);
    this.clipSample = r.bool('clip_sample', true);
    this.clipRange = r.number('clip_sample_range', 1);
    r.only('thresholding', false, 'dynamic thresholding is not implemented');
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
}
