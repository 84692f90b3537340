/**
 * Teacher benchmark: time per denoising step of the whole pipeline (scheduler, guidance, batching,
 * dtype conversion, UNet) beside the bare UNet session.run on the same shapes, in the same process.
 *
 *   node --import tsx bench/teacher.ts [--repeat 5] [--all]   (--all: also 256 px batch 4, ~8 GB)
 *
 * Model: the tiny-sd fixture (text-to-image, classifier-free guidance, so the UNet batch is 2 x items),
 * Euler scheduler, onnxruntime CPU with 1 intra-op thread (the deterministic default).
 * Per-step pipeline time = (T(n2 steps) − T(n1 steps)) / (n2 − n1), which cancels text encoding and the
 * VAE decode; the bare UNet time is the median of session.run calls on prebuilt tensors. Because the
 * machine is shared, the difference of two runs is noisy; `outside_unet_pct_of_run` is the steadier
 * figure: time of a whole n2-step run spent outside the UNet calls (text encoding, VAE, scheduler,
 * guidance, copies), as a share of the time inside them.
 * Writes bench/results/teacher.json (keeping its `models` section).
 *
 * With `--model DIR`: load time, per-step time beside the bare session.run, time outside the UNet and
 * peak memory of a bare session, `pairgen sample`'s path and a `pairgen work` process, on any diffusers
 * ONNX folder (bench/teacher-memory.ts; docs/memory.md), merged into teacher.json under `models`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { FIXTURES } from '../test/helpers/fixtures.ts';
import { DEFAULT_RUNTIME, sessionOptions } from '../src/onnx/session.ts';
import { loadDiffusersModel } from '../src/teacher/model.ts';
import { DiffusionPipeline, type SampleItem } from '../src/teacher/pipeline.ts';
import { normalStream } from '../src/teacher/random.ts';
import { PromptEncoder } from '../src/teacher/text.ts';

if (process.argv.includes('--model')) {
  const { modelBench } = await import('./teacher-memory.ts');
  await modelBench();
  process.exit(0);
}

const MODEL = join(FIXTURES, 'tiny-sd');
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const REPEAT = arg('repeat', 5);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const now = () => performance.now();

const model = await loadDiffusersModel(MODEL, DEFAULT_RUNTIME, { vaeEncoder: false, vaeDecoder: true });
const pipeline = new DiffusionPipeline(model, new PromptEncoder(model));
const bare = await ort.InferenceSession.create(join(MODEL, 'unet/model.onnx'), sessionOptions(DEFAULT_RUNTIME));

const results = [];
const SKIP: Record<string, string> = {
  // The tiny UNet attends over every latent cell at full resolution: 128x128 latents make a
  // 16384 x 16384 attention matrix per head and batch row, ~8 GB for UNet batch 8. The OOM killer
  // stopped it on the 2-core, shared benchmark machine; run it where memory allows by removing this line.
  '256x4': 'skipped: attention over 128x128 latents needs ~8 GB per UNet call at batch 8 (OOM here)',
};
for (const size of [64, 256]) {
  for (const batch of [1, 4]) {
    if (SKIP[`${size}x${batch}`] && !process.argv.includes('--all')) {
      results.push({ size, batch, note: SKIP[`${size}x${batch}`] });
      continue;
    }
    const settings = {
      steps: 0,
      guidanceScale: 7.5,
      imageGuidanceScale: 1.5,
      height: size,
      width: size,
      schedulerConfig: { ...model.schedulerConfig, _class_name: 'EulerDiscreteScheduler' },
      eta: 0,
    };
    const [c, h, w] = pipeline.latentShape(settings);
    const items = (): SampleItem[] =>
      Array.from({ length: batch }, (_, i) => {
        const stream = normalStream(i + 1);
        return { prompt: `a portrait photo of person ${i}`, negativePrompt: null, noise: stream.next(c * h * w), stream };
      });
    const [n1, n2] = size <= 64 ? [2, 10] : [1, 2];
    const run = async (steps: number) => {
      const t = now();
      await pipeline.sample(items(), { ...settings, steps });
      return now() - t;
    };
    // Time spent inside the pipeline's own UNet calls (the bench wraps the session; product code is untouched).
    let inUnet = 0;
    const unetRun = model.unet.run.bind(model.unet);
    model.unet.run = async (...a: Parameters<typeof unetRun>) => {
      const t = now();
      const r = await unetRun(...a);
      if (a[0].encoder_hidden_states) inUnet += now() - t;
      return r;
    };
    const feeds = {
      sample: new ort.Tensor('float32', new Float32Array(2 * batch * c * h * w).fill(0.1), [2 * batch, c, h, w]),
      timestep: new ort.Tensor('int64', new BigInt64Array(2 * batch).fill(500n), [2 * batch]),
      encoder_hidden_states: new ort.Tensor('float32', new Float32Array(2 * batch * 77 * 32).fill(0.1), [2 * batch, 77, 32]),
    };
    await run(n1); // warm up both paths
    await bare.run(feeds);
    const perStep: number[] = [];
    const unet: number[] = [];
    // Interleave the two measurements so machine noise hits both alike.
    const share: number[] = [];
    for (let r = 0; r < (size > 64 ? Math.min(REPEAT, 2) : REPEAT); r++) {
      inUnet = 0;
      const long = await run(n2);
      share.push((long - inUnet) / inUnet);
      perStep.push((long - (await run(n1))) / (n2 - n1));
      for (let k = 0; k < n2 - n1; k++) {
        const t = now();
        await bare.run(feeds);
        unet.push(now() - t);
      }
    }
    const pipelineMs = median(perStep);
    const unetMs = median(unet);
    const row = { size, batch, unet_batch: 2 * batch, pipeline_ms_per_step: +pipelineMs.toFixed(2), bare_unet_ms: +unetMs.toFixed(2), overhead_pct: +((pipelineMs / unetMs - 1) * 100).toFixed(1), outside_unet_pct_of_run: +(median(share) * 100).toFixed(1) };
    results.push(row);
    console.log(JSON.stringify(row));
  }
}
await model.release();
await bare.release();

const out = join(dirname(fileURLToPath(import.meta.url)), 'results/teacher.json');
mkdirSync(dirname(out), { recursive: true });
const models = existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')).models : undefined;
writeFileSync(
  out,
  JSON.stringify(
    { bench: 'teacher', model: 'tiny-sd fixture', scheduler: 'EulerDiscreteScheduler', guidance: 7.5, threads: DEFAULT_RUNTIME.intra_op_threads, repeat: REPEAT, results, when: new Date().toISOString(), models },
    null,
    2,
  ) + '\n',
);
console.log(`wrote ${out}`);
