import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createScheduler, readSchedulerConfig, timestepsForStrength, SCHEDULER_CLASSES, type Scheduler,
} from '../../src/teacher/schedulers/index.ts';
import { normalStream, randn } from '../../src/teacher/random.ts';
import { UserError } from '../../src/errors.ts';

import { FIXTURES } from '../helpers/fixtures.ts';
const refs = JSON.parse(readFileSync(join(FIXTURES, 'refs/schedulers.json'), 'utf8'));

interface Arr { shape: number[]; data: number[] }
interface Case {
  name: string; class: string; config: Record<string, unknown>; num_inference_steps: number;
  step_kwargs: Record<string, number>; init_noise_sigma: number; timesteps: number[]; sigmas: number[] | null;
  x_init: Arr; trajectory: Arr[]; final: Arr; noise: number[][] | null;
}

/** The synthetic model of refs/schedulers.json (x is the scaled model input, t the timestep). */
function syntheticModel(x: Float32Array, t: number): Float32Array {
  const s = t / 1000;
  return x.map((v) => Math.tanh(0.5 * v) * (1 - s) + 0.2 * v * s + 0.05);
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** The loop of the refs: x = x_init * init_noise_sigma; for t: x = step(f(scale(x, t), t), t, x). */
function run(s: Scheduler, x0: Float32Array, noise?: number[][], eta?: number): Float32Array[] {
  let x: Float32Array = x0.map((v) => v * s.initNoiseSigma);
  const out: Float32Array[] = [];
  let k = 0;
  for (const t of [...s.timesteps]) {
    const eps = syntheticModel(s.scaleModelInput(x, t), t);
    x = s.step(eps, t, x, { eta, noise: noise ? (n) => { const z = Float32Array.from(noise[k++]); assert.equal(z.length, n); return z; } : undefined }).prevSample;
    out.push(x);
  }
  if (noise) assert.equal(k, noise.length, 'every recorded noise tensor is used');
  return out;
}

for (const c of refs.cases as Case[]) {
  test(`refs: ${c.name} matches diffusers`, { skip: !SCHEDULER_CLASSES.includes(c.class) && 'not implemented yet' }, () => {
    const s = createScheduler(c.config);
    s.setTimesteps(c.num_inference_steps);
    assert.deepEqual(s.timesteps, c.timesteps);
    if (c.sigmas) {
      assert.ok(s.sigmas);
      assert.ok(maxAbs(s.sigmas, c.sigmas) <= 1e-6 * Math.max(...c.sigmas), `sigmas ${s.sigmas} vs ${c.sigmas}`);
    }
    assert.ok(Math.abs(s.initNoiseSigma - c.init_noise_sigma) <= 1e-6, `init_noise_sigma ${s.initNoiseSigma}`);
    const traj = run(s, Float32Array.from(c.x_init.data), c.noise ?? undefined, c.step_kwargs.eta);
    assert.equal(traj.length, c.trajectory.length);
    traj.forEach((x, i) => {
      const d = maxAbs(x, c.trajectory[i].data);
      assert.ok(d <= 1e-4, `step ${i}: max abs diff ${d}`);
    });
    const worst = Math.max(...traj.map((x, i) => maxAbs(x, c.trajectory[i].data)));
    if (process.env.SCHED_VERBOSE) console.log(c.name, "max abs diff", worst);
    assert.ok(maxAbs(traj[traj.length - 1], c.final.data) <= 1e-4);
  });
}

// ---------------------------------------------------------------------------------------------------
// Beyond the refs: properties every correct scheduler has, over configurations the refs do not cover.

const SD = { beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', num_train_timesteps: 1000 };
const N = 256;
const c = Float32Array.from(randn(11, N), (v) => 0.8 * Math.tanh(v)); // the clean sample, inside [-1, 1]
const e = randn(12, N); // the noise

/** Least-squares fit x ≈ A c + B e (the sample stays in this plane when the model is the exact denoiser). */
function fitPlane(x: ArrayLike<number>): { A: number; B: number; residual: number } {
  let cc = 0, ee = 0, ce = 0, xc = 0, xe = 0;
  for (let i = 0; i < N; i++) {
    cc += c[i] * c[i]; ee += e[i] * e[i]; ce += c[i] * e[i]; xc += x[i] * c[i]; xe += x[i] * e[i];
  }
  const det = cc * ee - ce * ce;
  const A = (xc * ee - xe * ce) / det;
  const B = (xe * cc - xc * ce) / det;
  let residual = 0;
  for (let i = 0; i < N; i++) residual = Math.max(residual, Math.abs(x[i] - A * c[i] - B * e[i]));
  return { A, B, residual };
}

/**
 * Runs a deterministic scheduler with the exact denoiser of a point mass at c, starting from
 * addNoise(c, e, t0). Such a model's x0 estimate is c at every step, so the sample must end at c
 * (plus the final noise level times e) whatever the spacing, sigmas, prediction type or solver order.
 */
function runOracle(config: Record<string, unknown>, steps: number) {
  const s = createScheduler(config);
  s.setTimesteps(steps);
  const prediction = (config.prediction_type as string) ?? 'epsilon';
  let x = s.addNoise(c, e, s.timesteps[0]);
  const denoised: Float32Array[] = [];
  for (const t of [...s.timesteps]) {
    const xin = s.scaleModelInput(x, t);
    const { A, B, residual } = fitPlane(xin);
    assert.ok(residual < 1e-4, `sample left the (c, e) plane: ${residual}`);
    // The model input is alpha c + sigma e with alpha^2 + sigma^2 = 1 (variance preserving).
    assert.ok(Math.abs(A * A + B * B - 1) < 1e-4, `model input is not variance preserving: A=${A} B=${B} at t=${t}`);
    const out = prediction === 'epsilon' ? Float32Array.from(e)
      : prediction === 'sample' ? Float32Array.from(c)
      : Float32Array.from(e, (v, i) => A * v - B * c[i]);
    const r = s.step(out, t, x);
    if (r.denoised) denoised.push(r.denoised);
    x = r.prevSample;
  }
  return { s, x, denoised };
}

const deterministicCases: [string, Record<string, unknown>, number][] = [
  ['DDIM leading eps', { _class_name: 'DDIMScheduler', ...SD, steps_offset: 1, set_alpha_to_one: true, clip_sample: false }, 10],
  // DDIM and PNDM step to t - T // n, which is the next timestep only for leading spacing, or trailing
  // spacing with n dividing T (diffusers behaves the same); these cases keep to those.
  ['DDIM trailing v_prediction', { _class_name: 'DDIMScheduler', ...SD, timestep_spacing: 'trailing', prediction_type: 'v_prediction', clip_sample: false }, 8],
  ['DDIM sample-prediction, linear betas', { _class_name: 'DDIMScheduler', beta_schedule: 'linear', prediction_type: 'sample' }, 5],
  ['DDIM squaredcos_cap_v2 clip_sample', { _class_name: 'DDIMScheduler', beta_schedule: 'squaredcos_cap_v2', clip_sample: true }, 8],
  ['DDIM rescale_betas_zero_snr trailing v', { _class_name: 'DDIMScheduler', ...SD, rescale_betas_zero_snr: true, timestep_spacing: 'trailing', prediction_type: 'v_prediction', clip_sample: false }, 5],
  ['Euler linspace', { _class_name: 'EulerDiscreteScheduler', ...SD }, 9],
  ['Euler trailing v_prediction', { _class_name: 'EulerDiscreteScheduler', ...SD, timestep_spacing: 'trailing', prediction_type: 'v_prediction' }, 6],
  ['Euler Karras', { _class_name: 'EulerDiscreteScheduler', ...SD, use_karras_sigmas: true }, 12],
  ['Euler exponential sigmas', { _class_name: 'EulerDiscreteScheduler', ...SD, use_exponential_sigmas: true }, 12],
  ['Euler log_linear', { _class_name: 'EulerDiscreteScheduler', ...SD, interpolation_type: 'log_linear' }, 8],
  ['Euler continuous v', { _class_name: 'EulerDiscreteScheduler', ...SD, timestep_type: 'continuous', prediction_type: 'v_prediction', use_karras_sigmas: true }, 8],
  ['Euler rescale zero SNR v trailing', { _class_name: 'EulerDiscreteScheduler', ...SD, rescale_betas_zero_snr: true, timestep_spacing: 'trailing', prediction_type: 'v_prediction' }, 6],
  ['DPM++ 2M linspace', { _class_name: 'DPMSolverMultistepScheduler', ...SD }, 15],
  ['DPM++ 2M Karras v_prediction', { _class_name: 'DPMSolverMultistepScheduler', ...SD, use_karras_sigmas: true, prediction_type: 'v_prediction' }, 25],
  ['DPM++ 3M leading heun', { _class_name: 'DPMSolverMultistepScheduler', ...SD, solver_order: 3, solver_type: 'heun', timestep_spacing: 'leading', steps_offset: 1 }, 20],
  ['DPM++ 2M trailing sample-prediction', { _class_name: 'DPMSolverMultistepScheduler', ...SD, timestep_spacing: 'trailing', prediction_type: 'sample' }, 10],
  ['DPM++ 1S exponential', { _class_name: 'DPMSolverMultistepScheduler', ...SD, solver_order: 1, use_exponential_sigmas: true }, 10],
  ['PNDM leading set_alpha_to_one', { _class_name: 'PNDMScheduler', ...SD, skip_prk_steps: true, steps_offset: 1, set_alpha_to_one: true }, 12],
  // (PNDM averages v-predictions of two timesteps at its second step, so an exact v-model is not exact there.)
  ['PNDM trailing, linear betas', { _class_name: 'PNDMScheduler', beta_schedule: 'linear', skip_prk_steps: true, timestep_spacing: 'trailing', set_alpha_to_one: true }, 10],
];

for (const [name, config, steps] of deterministicCases) {
  test(`exact denoiser reaches the clean sample: ${name}`, () => {
    const { s, x, denoised } = runOracle(config, steps);
    for (const d of denoised) assert.ok(maxAbs(d, c) < 2e-4, `denoised estimate off by ${maxAbs(d, c)}`);
    // The noise level after the last step (log_linear Euler has one sigma more than steps, as in diffusers).
    const last = s.sigmas ? s.sigmas[s.timesteps.length] : 0;
    const expected = Float32Array.from(c, (v, i) => v + last * e[i]);
    assert.ok(maxAbs(x, expected) < 2e-4, `final sample off by ${maxAbs(x, expected)}`);
  });
}

test('DPM-Solver (noise-prediction form) with final sigma_min ends at the smallest training noise level', () => {
  const { s, x } = runOracle({ _class_name: 'DPMSolverMultistepScheduler', ...SD, algorithm_type: 'dpmsolver', final_sigmas_type: 'sigma_min' }, 12);
  const sig = s.sigmas![s.sigmas!.length - 1];
  const alpha = 1 / Math.sqrt(1 + sig * sig);
  assert.ok(maxAbs(x, Float32Array.from(c, (v, i) => alpha * v + alpha * sig * e[i])) < 2e-4);
});

test('Euler final_sigmas_type sigma_min keeps the smallest training sigma last', () => {
  const s = createScheduler({ _class_name: 'EulerDiscreteScheduler', ...SD, final_sigmas_type: 'sigma_min' });
  s.setTimesteps(10);
  assert.ok(Math.abs(s.sigmas![10] - 0.029167532920837402) < 1e-7);
});

test('timestep spacings: trailing starts at 999, leading ends at steps_offset, linspace spans 999..0', () => {
  for (const cls of ['DDIMScheduler', 'EulerDiscreteScheduler', 'DPMSolverMultistepScheduler']) {
    const mk = (extra: Record<string, unknown>) => {
      const s = createScheduler({ _class_name: cls, ...SD, ...extra });
      s.setTimesteps(10);
      return s.timesteps;
    };
    const trailing = mk({ timestep_spacing: 'trailing' });
    assert.equal(trailing[0], 999, cls);
    assert.equal(trailing.length, 10);
    const leading = mk({ timestep_spacing: 'leading', steps_offset: 1 });
    // DPM-Solver's leading spacing divides by n + 1 and drops the 0: its last timestep is T // 11 + offset.
    assert.equal(leading[leading.length - 1], cls === 'DPMSolverMultistepScheduler' ? 91 : 1, cls);
    const linspace = mk({ timestep_spacing: 'linspace' });
    assert.equal(linspace[0], 999, cls);
    for (const ts of [trailing, leading, linspace]) for (let i = 1; i < ts.length; i++) assert.ok(ts[i] < ts[i - 1], `${cls} descending`);
  }
  const d = createScheduler({ _class_name: 'DDIMScheduler', ...SD, timestep_spacing: 'linspace' });
  d.setTimesteps(10);
  assert.deepEqual(d.timesteps, [999, 888, 777, 666, 555, 444, 333, 222, 111, 0]);
});

test('Karras sigmas: endpoints are the training sigma range and sigma^(1/7) is linear', () => {
  const s = createScheduler({ _class_name: 'EulerDiscreteScheduler', ...SD, use_karras_sigmas: true });
  s.setTimesteps(30);
  const sig = s.sigmas!;
  assert.equal(sig.length, 31);
  assert.equal(sig[30], 0);
  assert.ok(Math.abs(sig[0] - 14.614646911621094) < 1e-5, `sigma_max ${sig[0]}`);
  // Euler interpolates the last *spaced* sigma (t = 0) as sigma_min.
  assert.ok(Math.abs(sig[29] - 0.029167532920837402) < 1e-6, `sigma_min ${sig[29]}`);
  const r = sig.slice(0, 30).map((v) => v ** (1 / 7));
  for (let i = 2; i < 30; i++) assert.ok(Math.abs(r[i] - r[i - 1] - (r[1] - r[0])) < 1e-5);
  assert.ok(Math.abs(s.timesteps[0] - 999) < 1e-3 && Math.abs(s.timesteps[29]) < 1e-3);
  assert.equal(s.initNoiseSigma, sig[0], 'linspace spacing: init noise sigma is sigma_max');
  // sigma_min / sigma_max in the config override the range.
  const o = createScheduler({ _class_name: 'EulerDiscreteScheduler', ...SD, use_karras_sigmas: true, sigma_min: 0.1, sigma_max: 10 });
  o.setTimesteps(5);
  assert.ok(Math.abs(o.sigmas![0] - 10) < 1e-5 && Math.abs(o.sigmas![4] - 0.1) < 1e-6);
});

test('rescale_betas_zero_snr drives the terminal SNR to zero', () => {
  const ddim = createScheduler({ _class_name: 'DDIMScheduler', ...SD, rescale_betas_zero_snr: true });
  // add_noise at t = 999 keeps no signal at all.
  const z = ddim.addNoise(c, e, 999);
  assert.ok(maxAbs(z, e) < 1e-6);
  const euler = createScheduler({ _class_name: 'EulerDiscreteScheduler', ...SD, rescale_betas_zero_snr: true, timestep_spacing: 'trailing' });
  euler.setTimesteps(4);
  assert.ok(Math.abs(euler.initNoiseSigma - 4096) < 1, `sigma_max ${euler.initNoiseSigma} (alphas_cumprod[-1] = 2^-24)`);
});

test('DDIM: eta = 0 draws no noise and is deterministic; eta > 0 draws one tensor per step', () => {
  const cfg = { _class_name: 'DDIMScheduler', ...SD, steps_offset: 1, clip_sample: false, set_alpha_to_one: false };
  const go = (eta: number) => {
    const s = createScheduler(cfg);
    s.setTimesteps(6);
    let draws = 0;
    const traj = run(s, randn(3, N), undefined, eta);
    const s2 = createScheduler(cfg);
    s2.setTimesteps(6);
    let x: Float32Array = randn(3, N);
    for (const t of s2.timesteps) x = s2.step(syntheticModel(x, t), t, x, { eta, noise: (n) => { draws++; return new Float32Array(n); } }).prevSample;
    return { traj, draws, x };
  };
  const a = go(0);
  const b = go(0);
  assert.equal(a.draws, 0);
  assert.deepEqual(a.traj, b.traj);
  const noisy = go(1);
  assert.equal(noisy.draws, 6);
  assert.ok(maxAbs(noisy.x, a.x) > 1e-3, 'eta changes the deterministic part too (smaller direction term)');
});

test('stochastic schedulers: own seeded noise is reproducible, differs by seed, and matches supplied noise', () => {
  const configs = [
    { _class_name: 'EulerAncestralDiscreteScheduler', ...SD, steps_offset: 1, timestep_spacing: 'leading' },
    { _class_name: 'LCMScheduler', ...SD, steps_offset: 1, original_inference_steps: 50, set_alpha_to_one: true },
    { _class_name: 'DPMSolverMultistepScheduler', ...SD, algorithm_type: 'sde-dpmsolver++', use_karras_sigmas: true },
  ];
  for (const cfg of configs) {
    const go = (seed: number, supplied?: boolean) => {
      const s = createScheduler(cfg, { seed });
      s.setTimesteps(4);
      let x: Float32Array = randn(5, N).map((v) => v * s.initNoiseSigma);
      const own = normalStream(seed);
      const stream = supplied ? (n: number) => own.next(n) : undefined;
      let draws = 0;
      for (const t of [...s.timesteps]) {
        const eps = syntheticModel(s.scaleModelInput(x, t), t);
        x = s.step(eps, t, x, stream ? { noise: (n) => { draws++; return stream(n); } } : undefined).prevSample;
      }
      return { x, draws };
    };
    const a = go(1);
    assert.deepEqual(a.x, go(1).x, `${cfg._class_name}: same seed, same bytes`);
    assert.ok(maxAbs(a.x, go(2).x) > 1e-3, `${cfg._class_name}: another seed, another sample`);
    const viaOpts = go(1, true);
    assert.deepEqual(viaOpts.x, a.x, `${cfg._class_name}: opts.noise from the same stream gives the same result`);
    assert.equal(viaOpts.draws, cfg._class_name === 'LCMScheduler' ? 3 : 4, `${cfg._class_name}: draws per run`);
  }
});


test('img2img: timestepsForStrength skips the first steps and addNoise starts there', () => {
  for (const cls of ['DDIMScheduler', 'EulerDiscreteScheduler', 'DPMSolverMultistepScheduler', 'LCMScheduler', 'EulerAncestralDiscreteScheduler']) {
    const s = createScheduler({ _class_name: cls, ...SD, steps_offset: 1 });
    const steps = cls === 'LCMScheduler' ? 8 : 10;
    s.setTimesteps(steps);
    const all = [...s.timesteps];
    const ts = timestepsForStrength(s, steps, 0.75);
    assert.deepEqual(ts, all.slice(steps - Math.trunc(steps * 0.75)), cls);
    assert.deepEqual(timestepsForStrength(s, steps, 1), all, `${cls} strength 1 keeps every step`);
  }
  // Euler: after setBeginIndex, stepping starts at that index even for the first call.
  const s = createScheduler({ _class_name: 'EulerDiscreteScheduler', ...SD });
  s.setTimesteps(10);
  const ts = timestepsForStrength(s, 10, 0.5);
  assert.equal(ts.length, 5);
  const x = s.addNoise(c, e, ts[0]);
  const sigma = s.sigmas![5];
  assert.ok(maxAbs(x, Float32Array.from(c, (v, i) => v + sigma * e[i])) < 1e-6);
  assert.ok(Math.abs(s.inputScale(ts[0]) - 1 / Math.sqrt(sigma * sigma + 1)) < 1e-6);
  assert.throws(() => timestepsForStrength(s, 10, 0.05), UserError);
  assert.throws(() => timestepsForStrength(s, 10, 0), UserError);
});

test('PNDM repeats its second timestep as diffusers does', () => {
  const s = createScheduler({ _class_name: 'PNDMScheduler', ...SD, skip_prk_steps: true, steps_offset: 1 });
  s.setTimesteps(5);
  assert.deepEqual(s.timesteps, [801, 601, 601, 401, 201, 1]);
});

test('LCM picks its timesteps from the original_inference_steps skeleton', () => {
  const s = createScheduler({ _class_name: 'LCMScheduler', ...SD, original_inference_steps: 50 });
  s.setTimesteps(8);
  assert.deepEqual(s.timesteps, [999, 879, 759, 639, 499, 379, 259, 139]);
  assert.throws(() => s.setTimesteps(51), UserError);
});

test('bad configs and inputs: UserErrors naming the key', () => {
  const err = (f: () => unknown, re: RegExp) => assert.throws(f, (x: unknown) => x instanceof UserError && re.test(x.message), String(re));
  err(() => createScheduler({ _class_name: 'UniPCMultistepScheduler' }), /unknown scheduler class "UniPCMultistepScheduler"; known: DDIMScheduler, EulerDiscreteScheduler/);
  err(() => createScheduler({}), /unknown scheduler class null/);
  err(() => createScheduler({ _class_name: 'DDIMScheduler', timestep_spacing: 'middle' }), /"timestep_spacing" must be one of leading, trailing, linspace, got "middle"/);
  err(() => createScheduler({ _class_name: 'EulerDiscreteScheduler', beta_schedule: 'cubic' }), /"beta_schedule" must be one of linear, scaled_linear, squaredcos_cap_v2/);
  err(() => createScheduler({ _class_name: 'DDIMScheduler', steps_offset: -1 }), /"steps_offset" must be an integer >= 0/);
  err(() => createScheduler({ _class_name: 'DDIMScheduler', beta_start: '0.1' }), /"beta_start" must be a number, got "0.1"/);
  err(() => createScheduler({ _class_name: 'DDIMScheduler', thresholding: true }), /"thresholding" must be false \(dynamic thresholding is not implemented\)/);
  err(() => createScheduler({ _class_name: 'PNDMScheduler', skip_prk_steps: false }), /"skip_prk_steps" must be true/);
  err(() => createScheduler({ _class_name: 'DPMSolverMultistepScheduler', algorithm_type: 'dpmsolver' }), /final_sigmas_type/);
  err(() => createScheduler({ _class_name: 'EulerDiscreteScheduler', use_karras_sigmas: true, use_exponential_sigmas: true }), /only one of/);
  err(() => createScheduler({ _class_name: 'DDIMScheduler', trained_betas: [0.1, 0.2] }), /"trained_betas" has 2 values, expected num_train_timesteps = 1000/);
  err(() => createScheduler({ _class_name: 'DDIMScheduler' }, { source: '/m/scheduler_config.json' }).setTimesteps(0), /inference steps/);
  err(() => createScheduler({ _class_name: 'Nope' }, { source: '/m/scheduler_config.json' }), /scheduler config \/m\/scheduler_config\.json: unknown/);
});

test('readSchedulerConfig accepts Python JSON literals and rejects bad files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pairgen-sched-'));
  try {
    const p = join(dir, 'scheduler_config.json');
    writeFileSync(p, '{"_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": -Infinity, "sigma_max": Infinity, "x": NaN, "note": "NaN and -Infinity inside a string", "arr": [1, -Infinity]}');
    const cfg = readSchedulerConfig(p);
    assert.equal(cfg.lambda_min_clipped, -Infinity);
    assert.equal(cfg.sigma_max, Infinity);
    assert.ok(Number.isNaN(cfg.x));
    assert.equal(cfg.note, 'NaN and -Infinity inside a string');
    assert.deepEqual(cfg.arr, [1, -Infinity]);
    const s = createScheduler({ ...cfg, sigma_max: null, x: undefined }, { source: p });
    s.setTimesteps(5);
    assert.equal(s.timesteps.length, 5);
    // A finite lambda_min_clipped cuts off the noisiest timesteps (diffusers uses -5.1 for cosine models).
    const clipped = createScheduler({ _class_name: 'DPMSolverMultistepScheduler', beta_schedule: 'squaredcos_cap_v2', lambda_min_clipped: -5.1 });
    clipped.setTimesteps(5);
    assert.ok(clipped.timesteps[0] < 999, `first timestep ${clipped.timesteps[0]}`);
    writeFileSync(p, '{"_class_name": ');
    assert.throws(() => readSchedulerConfig(p), (x: unknown) => x instanceof UserError && /is not valid JSON/.test(x.message));
    writeFileSync(p, '[1, 2]');
    assert.throws(() => readSchedulerConfig(p), (x: unknown) => x instanceof UserError && /must be a JSON object/.test(x.message));
    assert.throws(() => readSchedulerConfig(join(dir, 'missing.json')), (x: unknown) => x instanceof UserError && /cannot read scheduler config/.test(x.message));
    // Every fixture model's own scheduler config loads.
    for (const m of ['tiny-sd', 'tiny-sd-ip2p', 'tiny-sdxl']) {
      const f = join(FIXTURES, m, 'scheduler/scheduler_config.json');
      createScheduler(readSchedulerConfig(f), { source: f }).setTimesteps(20);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
