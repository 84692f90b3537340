import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createScheduler, readSchedulerConfig, timestepsForStrength, SCHEDULER_CLASSES, type Scheduler,
} from '../src/teacher/schedulers/index.ts';
import { randn } from '../src/teacher/random.ts';
import { UserError } from '../src/errors.ts';

const FIXTURES = '/work/shared/fixtures/diffusers';
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
