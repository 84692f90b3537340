/**
 * GPU benchmark, for a machine with an NVIDIA GPU and the CUDA provider installed (docs/gpu.md):
 *
 *   node --import tsx bench/gpu/run.ts --model /models/sd15 [--steps 20] [--pairs 32] [--repeat 5]
 *
 * --model: a diffusers ONNX text-to-image folder (SD 1.x/2.x or SDXL; pipelines/sd15-prompt-pair.yaml
 * says how to export one). It measures, in one process, on runtime.execution_providers [cuda, cpu]:
 *  1. per denoising step at 512² (--size), batch 1 and 4: the whole pipeline step (scheduler, guidance,
 *     dtype conversion, UNet) as pairgen runs it, beside a bare `session.run` of the same UNet on the
 *     same inputs (the feeds the pipeline made, captured), as bench/teacher.ts does on the CPU;
 *  2. pairs per second for one whole shard (--pairs candidates, prompt-pair mode, identity scoring on,
 *     JPEG, a local folder): `pairgen plan` + `pairgen work` as a worker runs them, with the seconds
 *     per stage from the shard's timings.
 * Writes bench/results/gpu.json and gpu.md (--out DIR to write elsewhere). Where the CUDA provider
 * cannot load it says why and exits 2 without measuring anything. `--providers cpu` runs the same
 * code on the CPU (with a tiny model and --size 64: a smoke test of the script, not a GPU result).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { isUserError } from '../../src/errors.ts';
import { DEFAULT_RUNTIME, sessionOptions, toOrtTensor, type RuntimeConfig } from '../../src/onnx/index.ts';
import { requireProviders } from '../../src/onnx/providers.ts';
import { planRun, workRun } from '../../src/run/index.ts';
import { loadDiffusersModel } from '../../src/teacher/model.ts';
import { DiffusionPipeline, type SampleItem } from '../../src/teacher/pipeline.ts';
import { normalStream } from '../../src/teacher/random.ts';
import { PromptEncoder } from '../../src/teacher/text.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const arg = (name: string, dflt?: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const modelArg = arg('model');
if (!modelArg) {
  console.error('usage: node --import tsx bench/gpu/run.ts --model <diffusers ONNX folder> [--steps 20] [--pairs 32] [--repeat 5] [--size 512] [--providers cuda,cpu] [--out bench/results]');
  process.exit(2);
}
const MODEL = resolve(modelArg);
const PROVIDERS = arg('providers', 'cuda,cpu')!.split(',');
const SIZE = Number(arg('size', '512'));
const STEPS = Number(arg('steps', '20'));
const PAIRS = Number(arg('pairs', '32'));
const REPEAT = Number(arg('repeat', '5'));
const OUT = resolve(arg('out', join(REPO, 'bench/results'))!);
const runtime: RuntimeConfig = { ...DEFAULT_RUNTIME, execution_providers: PROVIDERS };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const now = () => performance.now();

let device: string;
try {
  device = (await requireProviders(PROVIDERS, 'bench/gpu')).label;
} catch (e) {
  if (!isUserError(e)) throw e;
  console.error(`no ${PROVIDERS.filter((p) => p !== 'cpu').join('/') || 'requested'} provider available on this machine, nothing measured:\n${e.message}`);
  process.exit(2);
}
console.log(`device: ${device}`);

// ---------------------------------------------------------------- 1. per-step UNet time, pipeline vs bare session.run
const model = await loadDiffusersModel(MODEL, runtime, { vaeEncoder: false, vaeDecoder: true });
const pipeline = new DiffusionPipeline(model, new PromptEncoder(model));
const bare = await ort.InferenceSession.create(join(MODEL, 'unet/model.onnx'), sessionOptions(runtime));
const steps = [];
for (const batch of [1, 4]) {
  const settings = { steps: 0, guidanceScale: 7.5, imageGuidanceScale: 1.5, height: SIZE, width: SIZE, schedulerConfig: { ...model.schedulerConfig, _class_name: 'EulerDiscreteScheduler' }, eta: 0 };
  const [c, h, w] = pipeline.latentShape(settings);
  const items = (): SampleItem[] =>
    Array.from({ length: batch }, (_, i) => {
      const stream = normalStream(i + 1);
      return { prompt: `a portrait photo of person ${i}`, negativePrompt: null, noise: stream.next(c * h * w), stream };
    });
  // The pipeline's own UNet calls: timed, and their first feeds captured for the bare session.
  let inUnet = 0;
  let feeds: Record<string, ort.Tensor> | null = null;
  const unetRun = model.unet.run.bind(model.unet);
  model.unet.run = async (...a: Parameters<typeof unetRun>) => {
    feeds ??= Object.fromEntries(Object.entries(a[0]).map(([name, f]) => [name, toOrtTensor(model.unet.input(name).type, f.data, f.dims, 'unet', name)]));
    const t = now();
    const r = await unetRun(...a);
    inUnet += now() - t;
    return r;
  };
  const run = async (n: number) => {
    const t = now();
    await pipeline.sample(items(), { ...settings, steps: n });
    return now() - t;
  };
  const [n1, n2] = [2, 10];
  await run(n1); // warm-up: CUDA kernels, cuDNN algorithm search, arena growth
  await bare.run(feeds!);
  const perStep: number[] = [];
  const unet: number[] = [];
  const share: number[] = [];
  for (let r = 0; r < REPEAT; r++) {
    inUnet = 0;
    const long = await run(n2);
    share.push((long - inUnet) / inUnet);
    perStep.push((long - (await run(n1))) / (n2 - n1));
    for (let k = 0; k < n2 - n1; k++) {
      const t = now();
      await bare.run(feeds!);
      unet.push(now() - t);
    }
  }
  model.unet.run = unetRun;
  const unetBatch = Number(feeds!.sample.dims[0]);
  const row = { size: SIZE, batch, unet_batch: unetBatch, pipeline_ms_per_step: +median(perStep).toFixed(2), bare_unet_ms: +median(unet).toFixed(2), overhead_pct: +((median(perStep) / median(unet) - 1) * 100).toFixed(1), outside_unet_pct_of_run: +(median(share) * 100).toFixed(1) };
  steps.push(row);
  console.log(JSON.stringify(row));
}
await model.release();
await bare.release();

// ---------------------------------------------------------------- 2. one whole shard through plan + work
const dir = mkdtempSync(join(tmpdir(), 'pairgen-gpu-bench-'));
let shard;
try {
  const config = join(dir, 'pipeline.yaml');
  writeFileSync(
    config,
    [
      'name: gpu-bench',
      'seed: 0',
      `pairs: ${PAIRS}`,
      `shard_size: ${PAIRS}`,
      `prompts: { set: ${join(REPO, 'prompts/portrait.yaml')} }`,
      `teacher: { model: ${MODEL}, mode: prompt-pair, scheduler: DDIMScheduler, steps: ${STEPS}, guidance_scale: 7.5, height: ${SIZE}, width: ${SIZE}, max_batch: 4 }`,
      'identity: { enabled: true }',
      'output: { image_format: jpeg, quality: 95 }',
      `runtime: { execution_providers: [${PROVIDERS.join(', ')}], batch_size: 4, concurrency: 4 }`,
      '',
    ].join('\n'),
  );
  const out = join(dir, 'run');
  await planRun(config, out);
  const t = now();
  const summary = await workRun(out, { shards: [0] });
  const seconds = (now() - t) / 1000;
  if (summary.committed.length !== 1) throw new Error(`the shard was not committed: ${JSON.stringify(summary)}`);
  shard = { pairs: PAIRS, steps: STEPS, size: SIZE, batch_size: 4, seconds: +seconds.toFixed(2), pairs_per_second: +(PAIRS / seconds).toFixed(3), accepted: summary.accepted, rejected: summary.rejected, stage_seconds: Object.fromEntries(Object.entries(summary.timings).map(([k, v]) => [k, +v.toFixed(2)])) };
  console.log(JSON.stringify(shard));
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------- results
const gpu = (() => {
  try {
    return execFileSync('nvidia-smi', ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'], { encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
})();
const result = { bench: 'gpu', when: new Date().toISOString(), model: MODEL, providers: PROVIDERS, device, gpu, node: process.version, onnxruntime: ort.env.versions.node, repeat: REPEAT, scheduler_for_steps: 'EulerDiscreteScheduler', guidance: 7.5, steps_per_step_timing: [2, 10], unet_steps: steps, shard };
mkdirSync(OUT, { recursive: true });
writeFileSync(join(OUT, 'gpu.json'), JSON.stringify(result, null, 2) + '\n');
writeFileSync(
  join(OUT, 'gpu.md'),
  [
    `# GPU benchmark (bench/gpu/run.ts)`,
    '',
    `${result.when}: ${gpu ?? 'no nvidia-smi'}, ${device}, onnxruntime-node ${result.onnxruntime}, model ${MODEL}.`,
    '',
    '| size | batch | UNet batch | pipeline ms/step | bare session.run ms | overhead % | outside UNet % of a run |',
    '|---|---|---|---|---|---|---|',
    ...steps.map((r) => `| ${r.size}² | ${r.batch} | ${r.unet_batch} | ${r.pipeline_ms_per_step} | ${r.bare_unet_ms} | ${r.overhead_pct} | ${r.outside_unet_pct_of_run} |`),
    '',
    `Whole shard: ${shard!.pairs} pairs, ${shard!.steps} steps, ${shard!.size}², identity on: ${shard!.seconds} s, **${shard!.pairs_per_second} pairs/s** (stage seconds ${JSON.stringify(shard!.stage_seconds)}).`,
    '',
  ].join('\n'),
);
console.log(`wrote ${join(OUT, 'gpu.json')} and gpu.md`);
