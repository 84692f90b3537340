/**
 * Teacher micro-benchmarks: the numerics around the UNet that run on the JS thread.
 *
 *   node --import tsx bench/teacher-micro.ts [--repeat 20]
 *
 * Measures
 *   tokenizer   ClipTokenizer.encode per prompt (padded to 77), over 200 varied prompts, cold cache
 *               (a fresh tokenizer) and warm (second pass over the same prompts)
 *   step        one scheduler step (scaleModelInput + step) on a [4, 4, 64, 64] latent (batch 4 at 512 px),
 *               for each scheduler class, median of --repeat steps in the middle of a 20-step schedule
 *   randn       the initial latents for that shape from a seed
 * and writes bench/results/teacher-micro.json.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FIXTURES } from '../test/helpers/fixtures.ts';
import { ClipTokenizer } from '../src/text/clip-tokenizer.ts';
import { createScheduler, SCHEDULER_CLASSES } from '../src/teacher/schedulers/index.ts';
import { randn } from '../src/teacher/random.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const REPEAT = arg('repeat', 20);
const here = dirname(fileURLToPath(import.meta.url));
const TOKENIZER = join(FIXTURES, 'tiny-sd/tokenizer');

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const now = () => performance.now();

// --- tokenizer
const subjects = ['her', 'him', 'the person', 'this man', 'the woman', 'the child'];
const edits = ['into a marble statue', 'look like a Pixar character', 'wear a red hat', 'have curly hair',
  'smile broadly', 'look 30 years older', 'into a pencil sketch', 'have blue eyes, 4k, highly detailed'];
const prompts = Array.from({ length: 200 }, (_, i) => `Turn ${subjects[i % 6]} ${edits[(i * 7) % 8]}, photo #${i}, naïve café — déjà vu`);
const coldTok = await ClipTokenizer.fromDir(TOKENIZER);
let t0 = now();
for (const p of prompts) coldTok.encode(p, { padding: 'max_length', truncation: true });
const coldUs = ((now() - t0) * 1000) / prompts.length;
const warmRuns: number[] = [];
for (let r = 0; r < 5; r++) {
  t0 = now();
  for (const p of prompts) coldTok.encode(p, { padding: 'max_length', truncation: true });
  warmRuns.push(((now() - t0) * 1000) / prompts.length);
}

// --- scheduler steps
const SHAPE = [4, 4, 64, 64];
const n = SHAPE.reduce((a, b) => a * b, 1);
const base = { beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', num_train_timesteps: 1000, steps_offset: 1 };
const extra: Record<string, Record<string, unknown>> = {
  DDIMScheduler: { clip_sample: false, set_alpha_to_one: false },
  PNDMScheduler: { skip_prk_steps: true },
  DPMSolverMultistepScheduler: { use_karras_sigmas: true },
  LCMScheduler: {},
  EulerDiscreteScheduler: {},
  EulerAncestralDiscreteScheduler: {},
};
const steps: Record<string, { ms_median: number; ms_min: number; mb_per_s: number }> = {};
const x0 = randn(1, n);
const eps = randn(2, n);
for (const cls of SCHEDULER_CLASSES) {
  const s = createScheduler({ _class_name: cls, ...base, ...extra[cls] }, { seed: 3 });
  const numSteps = cls === 'LCMScheduler' ? 8 : 20;
  const times: number[] = [];
  for (let r = 0; r < REPEAT; r++) {
    s.setTimesteps(numSteps);
    let x = x0;
    // Run up to the middle of the schedule, timing the middle step (multistep schedulers have history then).
    const mid = Math.floor(s.timesteps.length / 2);
    for (let i = 0; i <= mid; i++) {
      const t = s.timesteps[i];
      const start = now();
      const inp = s.scaleModelInput(x, t);
      x = s.step(eps, t, x, { eta: 0 }).prevSample;
      if (i === mid) times.push(now() - start);
      if (inp.length !== n) throw new Error('shape');
    }
  }
  const ms = median(times);
  steps[cls] = { ms_median: +ms.toFixed(3), ms_min: +Math.min(...times).toFixed(3), mb_per_s: +((n * 4 * 3) / 1e3 / ms).toFixed(1) };
}

// --- initial latents
const randnTimes: number[] = [];
for (let r = 0; r < 5; r++) {
  t0 = now();
  randn(12345 + r, n);
  randnTimes.push(now() - t0);
}

const result = {
  date: new Date().toISOString(),
  node: process.version,
  note: 'single run on a shared 2-core machine; tokenizer on the 861-entry fixture vocabulary (CLIP has 49,408)',
  tokenizer: { prompts: prompts.length, us_per_prompt_cold: +coldUs.toFixed(1), us_per_prompt_warm: +median(warmRuns).toFixed(1) },
  scheduler_step: { shape: SHAPE, repeat: REPEAT, per_class: steps },
  randn: { shape: SHAPE, ms_median: +median(randnTimes).toFixed(2) },
};
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(join(here, 'results/teacher-micro.json'), JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify(result, null, 2));
