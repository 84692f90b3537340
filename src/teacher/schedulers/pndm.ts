/**
 * PNDMScheduler in its PLMS form (skip_prk_steps: true, as Stable Diffusion ships it), as diffusers'
 * scheduling_pndm.py: a linear multistep method over the last four model outputs. The Runge-Kutta
 * warm-up (skip_prk_steps: false) is not implemented.
 */
import {
  AlphaScheduler, checkLengths, checkSteps, f32, roundHalfEven, spacedTimesteps,
  type Spacing, type StepResult,
} from './common.ts';

export class PNDMScheduler extends AlphaScheduler {
  readonly className = 'PNDMScheduler';
  private readonly prediction: 'epsilon' | 'v_prediction';
  private readonly spacing: Spacing;
  private readonly stepsOffset: number;
  private ets: Float32Array[] = [];
  private counter = 0;
  private curSample: Float32Array | null = null;

  constructor(raw: Record<string, unknown>, where: string) {
    super(raw, where, { rescale: false, alphaToOne: false });
    const r = this.reader;
    r.only('skip_prk_steps', true, 'only the PLMS form is implemented');
    this.prediction = r.choice('prediction_type', 'epsilon', ['epsilon', 'v_prediction'] as const);
    this.spacing = r.choice<Spacing>('timestep_spacing', 'leading', ['leading', 'trailing', 'linspace']);
    this.stepsOffset = r.int('steps_offset', 0);
  }

  setTimesteps(n: number): void {
    checkSteps(n, this.numTrain);
    this.numInferenceSteps = n;
    // Ascending training timesteps, then PLMS repeats the second one: [.., t1, t1, t0] reversed.
    const asc = spacedTimesteps(this.spacing, n, this.numTrain, this.stepsOffset).map(roundHalfEven).reverse();
    const plms = [...asc.slice(0, -1), ...asc.slice(-2, -1), ...asc.slice(-1)].reverse();
    this.timesteps = plms;
    this.ets = [];
    this.counter = 0;
    this.curSample = null;
  }

  setBeginIndex(): void {
    // PLMS keys its history on the call count, as diffusers does.
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array): StepResult {
    if (this.numInferenceSteps === 0) throw new Error('PNDMScheduler: call setTimesteps before step');
    checkLengths(modelOutput, sample, 'PNDMScheduler.step');
    const ratio = Math.floor(this.numTrain / this.numInferenceSteps);
    let prevT = t - ratio;
    let cur = t;
    if (this.counter !== 1) {
      this.ets = this.ets.slice(-3);
      this.ets.push(Float32Array.from(modelOutput)); // kept across calls: copy, callers may reuse buffers
    } else {
      prevT = t;
      cur = t + ratio;
    }
    const e = this.ets;
    const L = e.length;
    let m: Float32Array;
    let x = sample;
    if (L === 1 && this.counter === 0) {
      m = modelOutput;
      this.curSample = Float32Array.from(sample);
    } else if (L === 1 && this.counter === 1) {
      m = modelOutput.map((v, i) => (v + e[0][i]) / 2);
      x = this.curSample ?? sample;
      this.curSample = null;
    } else if (L === 2) {
      m = e[1].map((v, i) => (3 * v - e[0][i]) / 2);
    } else if (L === 3) {
      m = e[2].map((v, i) => (23 * v - 16 * e[1][i] + 5 * e[0][i]) / 12);
    } else {
      m = e[3].map((v, i) => (1 / 24) * (55 * v - 59 * e[2][i] + 37 * e[1][i] - 9 * e[0][i]));
    }
    const prev = this.prevSample(x, cur, prevT, m);
    this.counter++;
    return { prevSample: prev };
  }

  private prevSample(x: Float32Array, t: number, prevT: number, m: Float32Array): Float32Array {
    const a = this.alphasCumprod[t];
    const aPrev = this.alphaAt(prevT);
    const b = f32(1 - a);
    const bPrev = f32(1 - aPrev);
    const sa = f32(Math.sqrt(a));
    const sb = f32(Math.sqrt(b));
    const sampleCoeff = f32(Math.sqrt(f32(aPrev / a)));
    const denom = f32(f32(a * f32(Math.sqrt(bPrev))) + f32(Math.sqrt(f32(f32(a * b) * aPrev))));
    const diff = f32(aPrev - a);
    return x.map((v, i) => {
      const eps = this.prediction === 'v_prediction' ? sa * m[i] + sb * v : m[i];
      return sampleCoeff * v - (diff * eps) / denom;
    });
  }
}
