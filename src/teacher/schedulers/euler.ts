/**
 * EulerDiscreteScheduler and EulerAncestralDiscreteScheduler (Karras et al. 2022, k-diffusion), as
 * diffusers' scheduling_euler_discrete.py / scheduling_euler_ancestral_discrete.py. The ancestral
 * variant reads fewer keys (no Karras/exponential sigmas, no final_sigmas_type) and adds noise each step.
 */
import {
  ConfigReader, NoiseSource, StepIndex, checkLengths, checkSteps, exponentialSigmas, f32, interpIndex,
  karrasSigmas, linspace, linspaceF32, sigmaToT, spacedTimesteps, trainingSchedule, trainingSigmas,
  type PredictionType, type Scheduler, type Spacing, type StepOptions, type StepResult,
} from './common.ts';

export class EulerDiscreteScheduler implements Scheduler {
  readonly className: string;
  readonly config: Record<string, unknown>;
  timesteps: number[] = [];
  sigmas: number[];
  numInferenceSteps = 0;
  protected readonly ancestral: boolean;
  protected readonly alphasCumprod: Float32Array;
  protected readonly numTrain: number;
  protected readonly prediction: PredictionType;
  private readonly spacing: Spacing;
  private readonly stepsOffset: number;
  private readonly interpolation: 'linear' | 'log_linear';
  private readonly sigmaKind: 'interp' | 'karras' | 'exponential';
  private readonly sigmaMin: number | null;
  private readonly sigmaMax: number | null;
  private readonly finalSigmas: 'zero' | 'sigma_min';
  private readonly continuousV: boolean;
  protected readonly noise: NoiseSource;
  private readonly index = new StepIndex();

  constructor(raw: Record<string, unknown>, where: string, seed: number, ancestral = false) {
    this.ancestral = ancestral;
    this.className = ancestral ? 'EulerAncestralDiscreteScheduler' : 'EulerDiscreteScheduler';
    const r = new ConfigReader(raw, where);
    ({ alphasCumprod: this.alphasCumprod, numTrain: this.numTrain } = trainingSchedule(r, { rescale: true, sigmaFloor: true }));
    this.prediction = r.choice<PredictionType>('prediction_type', 'epsilon', ['epsilon', 'v_prediction', 'sample']);
    this.spacing = r.choice<Spacing>('timestep_spacing', 'linspace', ['leading', 'trailing', 'linspace']);
    this.stepsOffset = r.int('steps_offset', 0);
    if (ancestral) {
      this.interpolation = 'linear';
      this.sigmaKind = 'interp';
      this.sigmaMin = this.sigmaMax = null;
      this.finalSigmas = 'zero';
      this.continuousV = false;
    } else {
      this.interpolation = r.choice('interpolation_type', 'linear', ['linear', 'log_linear'] as const);
      const karras = r.bool('use_karras_sigmas', false);
      const exponential = r.bool('use_exponential_sigmas', false);
      r.only('use_beta_sigmas', false, 'beta sigmas are not implemented');
      if (karras && exponential) {
        r.only('use_exponential_sigmas', false, 'only one of use_karras_sigmas and use_exponential_sigmas can be true');
      }
      this.sigmaKind = karras ? 'karras' : exponential ? 'exponential' : 'interp';
      this.sigmaMin = r.numberOrNull('sigma_min');
      this.sigmaMax = r.numberOrNull('sigma_max');
      this.finalSigmas = r.choice('final_sigmas_type', 'zero', ['zero', 'sigma_min'] as const);
      const timestepType = r.choice('timestep_type', 'discrete', ['discrete', 'continuous'] as const);
      this.continuousV = timestepType === 'continuous' && this.prediction === 'v_prediction';
    }
    this.config = r.used;
    this.noise = new NoiseSource(seed);
    // Before setTimesteps: the full training schedule, as diffusers' constructor.
    const train = Array.from(trainingSigmas(this.alphasCumprod)).reverse();
    this.sigmas = [...train, 0];
    this.timesteps = this.continuousV
      ? train.map((s) => f32(0.25 * Math.log(s)))
      : linspace(0, this.numTrain - 1, this.numTrain).reverse().map(f32);
  }

  get initNoiseSigma(): number {
    const max = Math.max(...this.sigmas);
    if (this.spacing === 'linspace' || this.spacing === 'trailing') return max;
    return f32(Math.sqrt(f32(f32(max * max) + 1)));
  }

  setTimesteps(n: number): void {
    checkSteps(n, this.numTrain);
    this.numInferenceSteps = n;
    let ts: number[];
    if (this.spacing === 'linspace') ts = spacedTimesteps('linspace', n, this.numTrain, 0).map(f32);
    else if (this.spacing === 'leading') ts = spacedTimesteps('leading', n, this.numTrain, this.stepsOffset).map(f32);
    else ts = spacedTimesteps('trailing', n, this.numTrain, 0).map(f32);
    const train = trainingSigmas(this.alphasCumprod);
    const logSigmas = train.map(Math.log); // float32, like np.log on a float32 array
    let sigmas: number[];
    if (this.interpolation === 'log_linear') {
      // diffusers: torch.linspace(log(sigma_max), log(sigma_min), n + 1).exp()
      sigmas = Array.from(linspaceF32(Math.log(train[train.length - 1]), Math.log(train[0]), n + 1)).map((x) => f32(Math.exp(x)));
    } else {
      sigmas = ts.map((t) => interpIndex(t, train));
    }
    if (this.sigmaKind !== 'interp') {
      const lo = this.sigmaMin ?? sigmas[sigmas.length - 1];
      const hi = this.sigmaMax ?? sigmas[0];
      sigmas = this.sigmaKind === 'karras' ? karrasSigmas(lo, hi, n) : exponentialSigmas(lo, hi, n);
      ts = sigmas.map((s) => f32(sigmaToT(s, logSigmas)));
    }
    const last = this.finalSigmas === 'sigma_min' ? train[0] : 0;
    this.sigmas = [...sigmas, last].map(f32);
    this.timesteps = this.continuousV ? this.sigmas.slice(0, -1).map((s) => f32(0.25 * Math.log(s))) : ts;
    this.index.reset();
  }

  setBeginIndex(index: number): void {
    this.index.setBegin(index);
  }

  inputScale(t: number): number {
    const sigma = this.sigmas[this.index.current(this.timesteps, t)];
    return 1 / f32(Math.sqrt(f32(f32(sigma * sigma) + 1)));
  }

  scaleModelInput(sample: Float32Array, t: number): Float32Array {
    const sigma = this.sigmas[this.index.current(this.timesteps, t)];
    const d = f32(Math.sqrt(f32(f32(sigma * sigma) + 1)));
    return sample.map((x) => x / d);
  }

  /** The model's x0 estimate at noise level sigma. */
  protected predictX0(m: number, x: number, sigma: number, vA: number, vB: number): number {
    if (this.prediction === 'epsilon') return x - sigma * m;
    if (this.prediction === 'sample') return m;
    return m * vA + x * vB;
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, opts?: StepOptions): StepResult {
    if (this.numInferenceSteps === 0) throw new Error(`${this.className}: call setTimesteps before step`);
    checkLengths(modelOutput, sample, `${this.className}.step`);
    const i = this.index.current(this.timesteps, t);
    const sigma = this.sigmas[i];
    const sigmaNext = this.sigmas[i + 1];
    const s2 = f32(f32(sigma * sigma) + 1);
    const vA = f32(-sigma / f32(Math.sqrt(s2)));
    const vB = 1 / s2;
    const n = sample.length;
    const x0 = new Float32Array(n);
    const prev = new Float32Array(n);
    if (!this.ancestral) {
      const dt = f32(sigmaNext - sigma);
      for (let k = 0; k < n; k++) {
        const x = sample[k];
        x0[k] = this.predictX0(modelOutput[k], x, sigma, vA, vB);
        prev[k] = x + ((x - x0[k]) / sigma) * dt;
      }
    } else {
      const sigmaUp = f32(Math.sqrt(f32(f32(f32(sigmaNext * sigmaNext) * f32(f32(sigma * sigma) - f32(sigmaNext * sigmaNext))) / f32(sigma * sigma))));
      const sigmaDown = f32(Math.sqrt(f32(f32(sigmaNext * sigmaNext) - f32(sigmaUp * sigmaUp))));
      const dt = f32(sigmaDown - sigma);
      for (let k = 0; k < n; k++) {
        const x = sample[k];
        x0[k] = this.predictX0(modelOutput[k], x, sigma, vA, vB);
        prev[k] = x + ((x - x0[k]) / sigma) * dt;
      }
      const z = this.noise.draw(n, opts);
      for (let k = 0; k < n; k++) prev[k] += z[k] * sigmaUp;
    }
    this.index.advance(i);
    return { prevSample: prev, denoised: x0 };
  }

  addNoise(original: Float32Array, noise: Float32Array, t: number): Float32Array {
    checkLengths(noise, original, 'addNoise');
    const i = this.index.forNoise(this.timesteps, t);
    const sigma = this.sigmas[i];
    return original.map((x, k) => x + noise[k] * sigma);
  }
}

export class EulerAncestralDiscreteScheduler extends EulerDiscreteScheduler {
  constructor(raw: Record<string, unknown>, where: string, seed: number) {
    super(raw, where, seed, true);
  }
}


