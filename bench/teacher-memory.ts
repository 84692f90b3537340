/**
 * Teacher benchmark on a model folder (`bench/teacher.ts --model DIR`): load time, per-step time beside
 * the bare UNet `session.run`, time outside the UNet per pair, and peak resident memory (RSS) of a bare
 * session, of `pairgen sample`'s path and of a real `pairgen work` process on a 2-pair shard.
 *
 *   node --import tsx bench/teacher.ts --model DIR [--size 512] [--steps 2] [--max-batch 1] [--max-memory 12GB]
 *                                      [--before CODE_DIR] [--label NAME]
 *
 * Each measurement runs in its own child process, so each peak is that process's own (Linux VmHWM):
 * - bare:     onnxruntime-node alone with its default session options: create the UNet session, run it
 *             on random tensors at UNet batch 2 (one image with classifier-free guidance);
 * - pipeline: the teacher's loader and diffusion loop for one image (what `pairgen sample` runs), timed at
 *             `steps` and 1 step, so their difference per step sits beside the bare run;
 * - work:     `pairgen plan` + `pairgen work` (prompt-pair, one model, identity filter off,
 *             `--work-steps` steps, default 2) on one shard of `--pairs` pairs (default 2); its peak is read
 *             from /proc while it runs, and from its log.
 * `--before CODE_DIR` runs pipeline and work again with another checkout of pairgen (e.g. the commit
 * before a change; its node_modules may be a link to this one's), for before/after numbers in one run.
 * Results are merged into bench/results/teacher.json under `models.<label>` (label: the folder's name).
 * Guidance 7.5, 1 intra-op thread, DDIM (deterministic): the settings of a real run, few steps.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const ROOT = resolve(HERE, '..');
const { values } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: 'string' },
    size: { type: 'string' },
    steps: { type: 'string', default: '2' },
    'max-batch': { type: 'string', default: '1' },
    'max-memory': { type: 'string' },
    before: { type: 'string' },
    label: { type: 'string' },
    phase: { type: 'string' },
    code: { type: 'string', default: ROOT },
    repeat: { type: 'string', default: '3' },
    pairs: { type: 'string', default: '2' },
    'work-steps': { type: 'string', default: '2' },
    only: { type: 'string' },
    'no-pair': { type: 'boolean', default: false },
  },
});
const MODEL = resolve(values.model!);
const STEPS = Number(values.steps);
const CODE = resolve(values.code!);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const now = () => performance.now();
const mb = (kb: number) => Math.round(kb / 1024);

function statusKb(pid: number | 'self', field: string): number | null {
  try {
    const m = new RegExp(`^${field}:\\s*(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}
const selfPeakMb = () => mb(statusKb('self', 'VmHWM') ?? process.resourceUsage().maxRSS);
const selfRssMb = () => mb(statusKb('self', 'VmRSS') ?? process.memoryUsage.rss() / 1024);

/** Output size: --size, else the UNet's sample_size times the VAE factor. */
function outputSize(): number {
  if (values.size) return Number(values.size);
  const unet = JSON.parse(readFileSync(join(MODEL, 'unet/config.json'), 'utf8'));
  const vae = JSON.parse(readFileSync(join(MODEL, 'vae_decoder/config.json'), 'utf8'));
  return unet.sample_size * 2 ** (vae.block_out_channels.length - 1);
}

// ------------------------------------------------------------------ phases (child processes)

async function bare(): Promise<Record<string, number>> {
  const ort = await import('onnxruntime-node');
  const size = outputSize();
  const vae = JSON.parse(readFileSync(join(MODEL, 'vae_decoder/config.json'), 'utf8'));
  const h = size / 2 ** (vae.block_out_channels.length - 1);
  let t = now();
  // onnxruntime's defaults (CPU arena and memory pattern on), the thread count of the teacher.
  const session = await ort.InferenceSession.create(join(MODEL, 'unet/model.onnx'), { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const loadS = (now() - t) / 1000;
  const loadRss = selfRssMb();
  const meta = (name: string) => session.inputMetadata.find((m) => m.name === name) as { type: string; shape: (number | string)[] } | undefined;
  const hidden = meta('encoder_hidden_states')!.shape[2];
  const dim = typeof hidden === 'number' ? hidden : 768;
  const b = 2;
  const tMeta = meta('timestep')!;
  const tDims = tMeta.shape.length === 0 ? [] : tMeta.shape[0] === 1 ? [1] : [b];
  const tCount = tDims.length ? tDims[0] : 1;
  const timestep = tMeta.type === 'int64' ? new ort.Tensor('int64', new BigInt64Array(tCount).fill(500n), tDims) : new ort.Tensor('float32', new Float32Array(tCount).fill(500), tDims);
  const feeds = {
    sample: new ort.Tensor('float32', new Float32Array(b * 4 * h * h).fill(0.1), [b, 4, h, h]),
    timestep,
    encoder_hidden_states: new ort.Tensor('float32', new Float32Array(b * 77 * dim).fill(0.1), [b, 77, dim]),
  };
  const times = [];
  for (let r = 0; r < Number(values.repeat); r++) {
    t = now();
    await session.run(feeds);
    times.push(now() - t);
  }
  return { load_s: +loadS.toFixed(2), rss_after_load_mb: loadRss, unet_ms: Math.round(median(times)), first_run_ms: Math.round(times[0]), peak_rss_mb: selfPeakMb() };
}

async function pipeline(): Promise<Record<string, number>> {
  const { loadDiffusersModel } = await import(join(CODE, 'src/teacher/model.ts'));
  const { DiffusionPipeline } = await import(join(CODE, 'src/teacher/pipeline.ts'));
  const { PromptEncoder } = await import(join(CODE, 'src/teacher/text.ts'));
  const { normalStream } = await import(join(CODE, 'src/teacher/random.ts'));
  const size = outputSize();
  let t = now();
  const model = await loadDiffusersModel(MODEL, { execution_providers: ['cpu'], intra_op_threads: 1, inter_op_threads: 1, graph_optimization: 'all' }, { vaeEncoder: false, vaeDecoder: true });
  const loadS = (now() - t) / 1000;
  const loadRss = selfRssMb();
  const pipe = new DiffusionPipeline(model, new PromptEncoder(model));
  const settings = { steps: STEPS, guidanceScale: 7.5, imageGuidanceScale: 1.5, height: size, width: size, schedulerConfig: { ...model.schedulerConfig, _class_name: 'DDIMScheduler' }, eta: 0 };
  const [c, h, w] = pipe.latentShape(settings);
  let inUnet = 0;
  const unetRun = model.unet.run.bind(model.unet);
  model.unet.run = async (...a: Parameters<typeof unetRun>) => {
    const t0 = now();
    const r = await unetRun(...a);
    inUnet += now() - t0;
    return r;
  };
  const run = async (steps: number, prompts: string[]) => {
    inUnet = 0;
    const t0 = now();
    const items = prompts.map((prompt, i) => {
      const stream = normalStream(i + 1);
      return { prompt, negativePrompt: null, noise: stream.next(c * h * w), stream };
    });
    await pipe.sample(items, { ...settings, steps });
    return { total: now() - t0, unet: inUnet };
  };
  const one = ['a portrait photo of a woman'];
  // A 1-step run first: the first run of a session pays one-time costs (onnxruntime's memory pattern is
  // planned on the second run of a shape, kernels warm up), which would otherwise land in the difference.
  const warm = await run(1, one);
  const long = await run(STEPS, one);
  const short = await run(1, one);
  // A pair as prompt-pair draws it: source and edit in one batched call (1 step: what lies outside the UNet does not depend on the steps).
  const pair = values['no-pair'] ? null : await run(1, ['a portrait photo of a woman', 'a marble statue of a woman']);
  await model.release();
  return {
    load_s: +loadS.toFixed(2),
    rss_after_load_mb: loadRss,
    ms_per_step: Math.round((long.total - short.total) / (STEPS - 1)),
    first_run_1_step_ms: Math.round(warm.total),
    warm_run_1_step_ms: Math.round(short.total),
    unet_ms_per_step: Math.round(long.unet / STEPS),
    outside_unet_ms_per_image: Math.round(long.total - long.unet),
    ...(pair ? { outside_unet_ms_per_pair: Math.round(pair.total - pair.unet) } : {}),
    peak_rss_mb: selfPeakMb(),
  };
}

/** `pairgen plan` + `pairgen work` on one 2-pair shard; the worker's peak read from /proc while it runs. */
async function work(): Promise<Record<string, number | string | null>> {
  const tmp = mkdtempSync(join(tmpdir(), 'pairgen-bench-work-'));
  try {
    const size = outputSize();
    const config = [
      'name: bench-memory',
      'seed: 1',
      `pairs: ${values.pairs}`,
      `shard_size: ${values.pairs}`,
      `prompts: { set: ${JSON.stringify(join(ROOT, 'prompts/portrait.yaml'))} }`,
      'teacher:',
      `  model: ${JSON.stringify(MODEL)}`,
      '  mode: prompt-pair',
      '  scheduler: DDIMScheduler',
      // Two steps at least: onnxruntime's memory pattern (on by default) allocates its block from the second run of a shape on.
      `  steps: ${values['work-steps']}`,
      '  guidance_scale: 7.5',
      `  height: ${size}`,
      `  width: ${size}`,
      `  max_batch: ${values['max-batch']}`,
      'identity: { enabled: false }',
      'output: { image_format: png }',
      'runtime:',
      '  intra_op_threads: 1',
      '  batch_size: 4',
      ...(values['max-memory'] && CODE === ROOT ? [`  max_memory: ${values['max-memory']}`] : []),
    ].join('\n');
    writeFileSync(join(tmp, 'pipeline.yaml'), config + '\n');
    const cli = join(CODE, 'bin/pairgen.js');
    const plan = spawnSync(process.execPath, [cli, 'plan', join(tmp, 'pipeline.yaml'), '--out', join(tmp, 'run')], { encoding: 'utf8' });
    if (plan.status !== 0) throw new Error(`pairgen plan failed: ${plan.stderr}`);
    const t0 = now();
    const child = spawn(process.execPath, [cli, '--log-format', 'json', 'work', join(tmp, 'run')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    let peakKb = 0;
    const poll = setInterval(() => (peakKb = Math.max(peakKb, statusKb(child.pid!, 'VmHWM') ?? 0)), 100);
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    clearInterval(poll);
    if (code !== 0) throw new Error(`pairgen work exited ${code}: ${stderr}`);
    // The teacher's worker thread logs in the human format; the JSON lines are the main thread's.
    const lines = stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const logged = lines.find((l) => typeof l.peak_rss_mb === 'number')?.peak_rss_mb as number | undefined;
    const loaded = lines.find((l) => String(l.msg).startsWith('teacher loaded'));
    return { wall_s: +((now() - t0) / 1000).toFixed(1), peak_rss_mb: mb(peakKb), logged_shard_peak_rss_mb: logged ?? null, teacher_batch: (loaded?.batch as number | undefined) ?? null };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ driver

function child(phase: string, code = ROOT): Record<string, unknown> {
  const args = [join(HERE, 'teacher.ts'), ...process.argv.slice(2).filter((a, i, all) => a !== '--before' && all[i - 1] !== '--before'), '--phase', phase, '--code', code];
  process.stderr.write(`-- ${phase}${code !== ROOT ? ` (${code})` : ''}\n`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !last.startsWith('{')) return { error: `exit ${r.status ?? r.signal}` };
  const row = JSON.parse(last);
  process.stderr.write(`   ${last}\n`);
  return row;
}

export async function modelBench(): Promise<void> {
  if (!values.model || !existsSync(join(MODEL, 'unet/model.onnx'))) throw new Error(`--model: ${values.model} is not a diffusers ONNX folder (no unet/model.onnx)`);
  if (values.phase) {
    const row = values.phase === 'bare' ? await bare() : values.phase === 'pipeline' ? await pipeline() : await work();
    process.stdout.write(JSON.stringify(row) + '\n');
    return;
  }
  const label = values.label ?? basename(MODEL);
  // --only bare,pipeline,work,before-pipeline,before-work: run some phases, keeping the others' last results.
  const only = values.only?.split(',') ?? ['bare', 'pipeline', 'work', ...(values.before ? ['before-pipeline', 'before-work'] : [])];
  const out = join(HERE, 'results/teacher.json');
  const all = existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) : { bench: 'teacher' };
  const result: Record<string, any> = { ...(all.models?.[label] ?? {}), model: label, size: outputSize() };
  const settings = { steps: STEPS, pairs: Number(values.pairs), max_batch: Number(values['max-batch']), max_memory: values['max-memory'] ?? null, when: new Date().toISOString() };
  const of = (phase: string) => (phase === 'work' ? { ...settings, steps: Number(values['work-steps']) } : phase === 'bare' ? { repeat: Number(values.repeat), when: settings.when } : settings);
  for (const phase of ['bare', 'pipeline', 'work'] as const) if (only.includes(phase)) result[phase] = { ...child(phase), ...of(phase) };
  for (const phase of ['pipeline', 'work'] as const) {
    if (!only.includes(`before-${phase}`)) continue;
    if (!values.before) throw new Error(`--only before-${phase} needs --before CODE_DIR`);
    result.before = { ...(result.before ?? {}), code: values.before, [phase]: { ...child(phase, resolve(values.before)), ...of(phase) } };
  }
  // Like for like: one image with guidance (UNet batch 2) per pipeline step and per bare call.
  if (result.bare?.unet_ms && result.pipeline?.ms_per_step) result.per_step_ratio = +(result.pipeline.ms_per_step / result.bare.unet_ms).toFixed(3);
  if (result.bare?.unet_ms && result.pipeline?.unet_ms_per_step) result.unet_call_ratio = +(result.pipeline.unet_ms_per_step / result.bare.unet_ms).toFixed(3);
  const latest = existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) : all; // the phases take long: merge into what is there now
  latest.models = { ...(latest.models ?? {}), [label]: result };
  mkdirSync(join(HERE, 'results'), { recursive: true });
  writeFileSync(out, JSON.stringify(latest, null, 2) + '\n');
  writeFileSync(join(HERE, 'results/teacher.md'), markdown(latest.models));
  console.log(JSON.stringify(result, null, 2));
  console.log(`wrote ${out} (models.${label})`);
}

/** bench/results/teacher.md: the memory table of every measured model folder. */
function markdown(models: Record<string, Record<string, any>>): string {
  const gb = (m: number | undefined) => (typeof m === 'number' ? `${(m / 1024).toFixed(2)} GB` : '—');
  const s = (ms: number | undefined) => (typeof ms === 'number' ? `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 0)} s` : '—');
  const lines = [
    '# Teacher: memory and time per model folder',
    '',
    '`node --import tsx bench/teacher.ts --model DIR` (bench/teacher-memory.ts; docs/memory.md). Peak = the process\'s',
    'peak resident memory (Linux VmHWM). bare: onnxruntime-node with its default session options, UNet only, UNet batch 2;',
    'sample: the `pairgen sample` path, one 512 px (or native size) image with guidance; work: `pairgen work` on one shard,',
    'prompt-pair with guidance. before: the same with the previous pairgen (`--before`). Times on the shared 2-core',
    'machine are noisy; compare the memory, and times only within one row.',
    '',
    '| model | bare load | bare UNet run | bare peak | sample load | sample peak | sample UNet / step | outside UNet / image | work peak | work shard peak (logged) | before: sample peak | before: work peak |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const [name, r] of Object.entries(models)) {
    lines.push(
      `| ${name} (${r.size} px) | ${s(r.bare?.load_s * 1000)} | ${s(r.bare?.unet_ms)} | ${gb(r.bare?.peak_rss_mb)} | ${s(r.pipeline?.load_s * 1000)} | ${gb(r.pipeline?.peak_rss_mb)} | ${s(r.pipeline?.unet_ms_per_step)} | ` +
        `${s(r.pipeline?.outside_unet_ms_per_image)} | ${gb(r.work?.peak_rss_mb)} (${r.work?.pairs ?? '?'} pairs, batch ${r.work?.teacher_batch ?? '?'}) | ${gb(r.work?.logged_shard_peak_rss_mb)} | ${gb(r.before?.pipeline?.peak_rss_mb)} | ${gb(r.before?.work?.peak_rss_mb)} |`,
    );
  }
  return lines.join('\n') + '\n';
}
