/**
 * Scorer benchmark (issue 11): what each pair scorer costs per pair, and what the scoring pool gains.
 *
 *   node --import tsx bench/scorers.ts [--pairs 32] [--repeat 3] [--size 512]
 *
 * Pairs: the face crops of @vladmandic/face-api's demo photos (as bench/identity.ts), each resized to
 * --size px square and paired with an edit of itself (turned 10°, blurred, mirrored or brightened, in
 * turn), up to --pairs pairs. The identity stage runs once per pair first, so every scorer gets its faces.
 *
 * 1. Per scorer, alone, one thread: ms per pair through scorePair, beside a bare onnxruntime
 *    session.run of its model on input tensors of the shapes the scorer feeds per pair (pose: facemesh
 *    [2,192,192,3] once; expression: emotion [2,64,64,1] once; background: selfie [1,256,256,3] twice;
 *    safety: nsfwjs [2,224,224,3] once). The difference is the scorer's own work: crops, resizes, colour
 *    maths. The closed-form scorers (edit, quality, duplicates, age) have no model. Median over --repeat
 *    passes of the mean over the pairs. Also: the identity stage and every scorer together, per pair.
 * 2. The scoring pool (identity + every scorer) on all the pairs submitted at once: on the calling thread,
 *    on 1 thread, on defaultScoringThreads and on one thread per core; pairs per second, after one
 *    warm-up pair per thread. Also the copy of a pair's images that goes to a thread.
 *
 * Writes bench/results/scorers.json and scorers.md.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import sharp, { type Sharp } from 'sharp';
import { cropFaces } from '../src/identity/calibrate.ts';
import { DEFAULT_IDENTITY } from '../src/identity/config.ts';
import { createIdentityScorer } from '../src/identity/index.ts';
import { openDetector } from '../src/identity/models.ts';
import { decodeImage } from '../src/image/index.ts';
import { DEFAULT_RUNTIME, openSession } from '../src/onnx/session.ts';
import { packagePath } from '../src/onnx/tfjs/cache.ts';
import { createScorers, DEFAULT_SCORERS, ensureScorerModel, scorePair, type PairInput, type ScorerModelKey, type ScorerName } from '../src/scorers/index.ts';
import { createScoringPool, defaultScoringThreads } from '../src/candidates/scoring.ts';
import type { CandidateSpec, RgbImage } from '../src/types.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const PAIRS = arg('pairs', 32);
const REPEAT = arg('repeat', 3);
const SIZE = arg('size', 512);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const runtime = DEFAULT_RUNTIME;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (v: number) => Math.round(v * 100) / 100;

/** What each model scorer feeds its model per pair: [model, dims of one run, runs per pair]. */
const BARE: Partial<Record<ScorerName, { model: ScorerModelKey; input: string; outputs: string[]; dims: number[]; runs: number }>> = {
  pose: { model: 'facemesh', input: 'input_1', outputs: ['output_mesh', 'output_faceflag'], dims: [2, 192, 192, 3], runs: 1 },
  expression: { model: 'emotion', input: 'input_1', outputs: ['Identity'], dims: [2, 64, 64, 1], runs: 1 },
  background: { model: 'selfie', input: 'input_1', outputs: ['activation_10:0'], dims: [1, 256, 256, 3], runs: 2 },
  safety: { model: 'nsfw', input: 'input_1', outputs: ['dense_3'], dims: [2, 224, 224, 3], runs: 1 },
};

async function makePairs(): Promise<{ source: RgbImage; edited: RgbImage; spec: CandidateSpec }[]> {
  const raw = async (s: Sharp): Promise<RgbImage> => {
    const { data, info } = await s.removeAlpha().raw().toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, data: new Uint8Array(data) };
  };
  const detector = await openDetector(DEFAULT_IDENTITY, runtime);
  const crops: RgbImage[] = [];
  for (let i = 1; i <= 6; i++) {
    for (const c of await cropFaces(`sample${i}`, await decodeImage(packagePath('@vladmandic/face-api', `demo/sample${i}.jpg`)), detector, DEFAULT_IDENTITY.min_face_size)) {
      crops.push(await raw(sharp(c.image.data, { raw: { width: c.image.width, height: c.image.height, channels: 3 } }).resize(SIZE, SIZE, { fit: 'fill' })));
    }
  }
  await detector.close();
  const edits: [string, (s: Sharp) => Sharp][] = [
    ['turn the head', (s) => s.rotate(10, { background: '#000' }).resize(SIZE, SIZE)],
    ['soften the photo', (s) => s.blur(2)],
    ['mirror it', (s) => s.flop()],
    ['make it brighter', (s) => s.modulate({ brightness: 1.2 })],
  ];
  const pairs = [];
  for (let n = 0; n < PAIRS; n++) {
    const source = crops[n % crops.length];
    const [instruction, edit] = edits[n % edits.length];
    const edited = await raw(edit(sharp(source.data, { raw: { width: SIZE, height: SIZE, channels: 3 } })));
    const spec: CandidateSpec = { pairId: `pair-${n}`, index: n, seed: n, promptId: 'bench', sampleIndex: n, category: 'portrait', sourcePrompt: '', instruction, targetPrompt: '', identityThreshold: null, attributes: {} };
    pairs.push({ source, edited, spec });
  }
  return pairs;
}

/** Median over REPEAT passes of the mean ms per item of `run` over `items` (after one warm-up call). */
async function msPer<T>(items: T[], run: (item: T) => Promise<unknown>): Promise<number> {
  await run(items[0]);
  const passes: number[] = [];
  for (let r = 0; r < REPEAT; r++) {
    const t = performance.now();
    for (const item of items) await run(item);
    passes.push((performance.now() - t) / items.length);
  }
  return median(passes);
}

async function main(): Promise<void> {
  const pairs = await makePairs();
  console.log(`${pairs.length} pairs of ${SIZE}×${SIZE} px, ${cpus().length} cores, load ${loadavg()[0].toFixed(2)}`);

  // The identity stage once per pair: its time, and the faces every scorer gets.
  const identity = await createIdentityScorer(DEFAULT_IDENTITY, runtime);
  const identityMs = await msPer(pairs, (p) => identity.score(p.source, p.edited, p.spec));
  const inputs: PairInput[] = [];
  for (const p of pairs) inputs.push({ source: p.source, edited: p.edited, faces: await identity.score(p.source, p.edited, p.spec), instruction: p.spec.instruction, category: p.spec.category });
  await identity.close();
  const bothFaces = inputs.filter((i) => i.faces.sourceFace && i.faces.editedFace).length;
  console.log(`identity stage: ${identityMs.toFixed(2)} ms/pair (faces on both sides in ${bothFaces} of ${pairs.length} pairs)`);

  // Each scorer alone through scorePair, beside its model's bare session.run. A fresh PairInput per call:
  // edit and background cache their shared grid per pair object, and alone each must pay for it.
  const scorers: Record<string, { scorePairMs: number; bareRunMs: number | null; model: string | null }> = {};
  for (const name of DEFAULT_SCORERS.enabled) {
    const stage = await createScorers({ enabled: [name] }, runtime);
    const viaScorePair = await msPer(inputs, (i) => scorePair(stage, { ...i }));
    await stage.close();
    const bare = BARE[name];
    let bareMs: number | null = null;
    if (bare) {
      const session = await openSession(await ensureScorerModel(bare.model), runtime);
      const size = bare.dims.reduce((a, b) => a * b, 1);
      const tensor = new ort.Tensor('float32', Float32Array.from({ length: size }, (_, k) => ((k * 7919) % 256) / 255), bare.dims);
      bareMs = await msPer(inputs, async () => {
        for (let r = 0; r < bare.runs; r++) await session.run({ [bare.input]: tensor }, bare.outputs);
      });
      await session.release();
    }
    scorers[name] = { scorePairMs: round(viaScorePair), bareRunMs: bareMs === null ? null : round(bareMs), model: bare ? `${bare.model} ${bare.runs}× [${bare.dims.join(',')}]` : null };
    console.log(`${name.padEnd(11)} scorePair ${viaScorePair.toFixed(2).padStart(7)} ms/pair   bare session.run ${bareMs === null ? '      —' : bareMs.toFixed(2).padStart(7)} ms/pair`);
  }
  const all = await createScorers(DEFAULT_SCORERS, runtime);
  const allMs = await msPer(inputs, (i) => scorePair(all, { ...i }));
  await all.close();
  console.log(`every scorer together: ${allMs.toFixed(2)} ms/pair; with identity ${(allMs + identityMs).toFixed(2)} ms/pair`);

  const copyMs = await msPer(pairs, async (p) => [new Uint8Array(p.source.data), new Uint8Array(p.edited.data)]);

  // The pool: identity + every scorer, all the pairs submitted at once.
  const configs = [...new Set([0, 1, defaultScoringThreads(runtime), availableParallelism()])];
  const pool: { threads: number; label: string; readySeconds: number; seconds: number; pairsPerSecond: number }[] = [];
  for (const threads of configs) {
    let t = performance.now();
    const p = await createScoringPool({ identity: DEFAULT_IDENTITY, scorers: DEFAULT_SCORERS, runtime, threads });
    const readySeconds = (performance.now() - t) / 1000;
    await Promise.all(pairs.slice(0, Math.max(1, threads)).map((q) => p.score(q.source, q.edited, q.spec)));
    t = performance.now();
    await Promise.all(pairs.map((q) => p.score(q.source, q.edited, q.spec)));
    const seconds = (performance.now() - t) / 1000;
    await p.close();
    const label = threads === 0 ? 'calling thread' : [threads === 1 && '1 thread', threads === defaultScoringThreads(runtime) && 'defaultScoringThreads', threads === availableParallelism() && 'one per core'].filter(Boolean).join(', ') || `${threads} threads`;
    pool.push({ threads, label, readySeconds: round(readySeconds), seconds: round(seconds), pairsPerSecond: round(pairs.length / seconds) });
    console.log(`pool ${String(threads).padStart(2)} threads (${label}): ${pairs.length} pairs in ${seconds.toFixed(2)} s = ${(pairs.length / seconds).toFixed(2)} pairs/s (ready in ${readySeconds.toFixed(1)} s)`);
  }
  const one = pool.find((r) => r.threads === 1)!;
  const speedup = Object.fromEntries(pool.map((r) => [r.threads, round(r.pairsPerSecond / one.pairsPerSecond)]));

  const report = {
    bench: 'scorers', date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, cores: cpus().length, load: round(loadavg()[0]),
    pairs: pairs.length, size: SIZE, repeat: REPEAT, runtime: { intra_op_threads: runtime.intra_op_threads, inter_op_threads: runtime.inter_op_threads },
    identityMsPerPair: round(identityMs), pairsWithBothFaces: bothFaces, scorers, allScorersMsPerPair: round(allMs), copyImagesMsPerPair: round(copyMs),
    pool, defaultScoringThreads: defaultScoringThreads(runtime), speedupOverOneThread: speedup,
  };
  await mkdir(join(root, 'bench/results'), { recursive: true });
  await writeFile(join(root, 'bench/results/scorers.json'), JSON.stringify(report, null, 2) + '\n');
  await writeFile(join(root, 'bench/results/scorers.md'), [
    `# scorers bench (${report.date}, ${report.cpu}, ${report.cores} cores, load ${report.load})`, '',
    `${pairs.length} pairs of ${SIZE}×${SIZE} px face crops and their edits; onnxruntime intra-op threads ${runtime.intra_op_threads}. Per scorer: alone, one thread, median of ${REPEAT} passes.`, '',
    '| scorer | scorePair ms/pair | bare session.run ms/pair | runs of the model per pair |', '|---|---|---|---|',
    ...Object.entries(scorers).map(([n, s]) => `| ${n} | ${s.scorePairMs} | ${s.bareRunMs ?? '— (closed form)'} | ${s.model ?? '—'} |`),
    `| every scorer together | ${report.allScorersMsPerPair} | | |`,
    `| identity stage (detector + embedder) | ${report.identityMsPerPair} | | |`, '',
    `Copying a pair's two images for a thread: ${report.copyImagesMsPerPair} ms.`, '',
    '| scoring pool (identity + every scorer) | threads | ready in s | s for the pairs | pairs/s | × 1 thread |', '|---|---|---|---|---|---|',
    ...pool.map((r) => `| ${r.label} | ${r.threads} | ${r.readySeconds} | ${r.seconds} | ${r.pairsPerSecond} | ${speedup[r.threads]} |`), '',
  ].join('\n'));
  console.log('wrote bench/results/scorers.json and scorers.md');
}

await main();
