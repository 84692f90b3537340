// The scorer models (src/scorers/models.ts) converted to ONNX and checked against the same models run by
// TF.js, on faces found by the packaged detector in @vladmandic/face-api's six demo photos, on the whole
// photos, and on seeded random inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs-core';
import type { GraphModel } from '@tensorflow/tfjs-converter';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { DEFAULT_IDENTITY } from '../../src/identity/config.ts';
import { openDetector } from '../../src/identity/models.ts';
import { packagePath } from '../../src/onnx/tfjs/cache.ts';
import { DEFAULT_RUNTIME } from '../../src/onnx/session.ts';
import { EMOTION_LABELS, ensureScorerModel, ensureScorerModels, GRAY_WEIGHTS, NSFW_LABELS, SCORER_MODELS, type ScorerModelKey } from '../../src/scorers/models.ts';
import type { RgbImage } from '../../src/types.ts';
import { decodeImage } from '../../src/image/index.ts';
import { loadTfjsGraph, loadTfjsLayersBundle, maxAbs, maxAbsDiff, useTfjsBackend } from '../helpers/tfjs.ts';
import { mulberry32 } from '../helpers/prng.ts';

const SAMPLES = [1, 2, 3, 4, 5, 6].map((i) => packagePath('@vladmandic/face-api', `demo/sample${i}.jpg`));
const sessionOptions: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1 };
const cacheDir = await mkdtemp(join(tmpdir(), 'pairgen-scorer-models-'));
// TF.js's WASM backend keeps this file to seconds; PAIRGEN_TFJS_BACKEND=cpu checks against the pure-JS one (~1 min).
await useTfjsBackend(process.env.PAIRGEN_TFJS_BACKEND === 'cpu' ? 'cpu' : 'wasm');

test('ensureScorerModels converts the five scorer models into the cache, then finds them fresh', async () => {
  const events: [string, boolean][] = [];
  await ensureScorerModels({ cacheDir, onModel: (e) => events.push([e.id, e.converted]) });
  assert.deepEqual(events, Object.values(SCORER_MODELS).map((s) => [s.id, true]));
  const again: boolean[] = [];
  await ensureScorerModels({ cacheDir, onModel: (e) => again.push(e.converted) });
  assert.deepEqual(again, [false, false, false, false, false]);
  const files = Object.values(SCORER_MODELS).flatMap((s) => [`${s.id}.onnx`, `${s.id}.onnx.json`]);
  assert.deepEqual((await readdir(cacheDir)).sort(), files.sort());
});

// ---- inputs ------------------------------------------------------------------------------------

const photos = await Promise.all(SAMPLES.map((p) => decodeImage(p)));

/** The best face of each demo photo, found by the default (packaged BlazeFace) detector. */
const faceBoxes = await (async () => {
  const detector = await openDetector(DEFAULT_IDENTITY, DEFAULT_RUNTIME);
  const boxes = [];
  for (const img of photos) boxes.push((await detector.detect(img))[0].box);
  await detector.close();
  return boxes;
})();

/** A region of `img` (clamped to it) resized to size×size, as NHWC floats / 255. */
async function region(img: RgbImage, left: number, top: number, width: number, height: number, size: number): Promise<Float32Array> {
  const l = Math.max(0, Math.round(left)), t = Math.max(0, Math.round(top));
  const w = Math.min(img.width - l, Math.round(width)), h = Math.min(img.height - t, Math.round(height));
  const rgb = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).extract({ left: l, top: t, width: w, height: h }).resize(size, size, { fit: 'fill' }).raw().toBuffer();
  return Float32Array.from(rgb, (v) => v / 255);
}

/** A square `scale` times the face box around its centre. */
function faceSquare(i: number, scale: number, size: number): Promise<Float32Array> {
  const [x1, y1, x2, y2] = faceBoxes[i];
  const side = scale * Math.max(x2 - x1, y2 - y1);
  return region(photos[i], (x1 + x2 - side) / 2, (y1 + y2 - side) / 2, side, side, size);
}

const wholePhoto = (i: number, size: number) => region(photos[i], 0, 0, photos[i].width, photos[i].height, size);

function toGray(rgb: Float32Array): Float32Array {
  const out = new Float32Array(rgb.length / 3);
  for (let i = 0; i < out.length; i++) out[i] = (GRAY_WEIGHTS[0] * rgb[3 * i] + GRAY_WEIGHTS[1] * rgb[3 * i + 1] + GRAY_WEIGHTS[2] * rgb[3 * i + 2] - 0.5) * 2;
  return out;
}

function random(seed: number, n: number, [lo, hi]: [number, number]): Float32Array {
  const next = mulberry32(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * next());
}

// ---- TF.js against ONNX --------------------------------------------------------------------------

type Original = GraphModel | LayersModel;

function runOriginal(model: Original, x: Float32Array, dims: number[], names: string[]): Float32Array[] {
  const input = tf.tensor(x, dims);
  const out = 'layers' in model ? model.predict(input) : model.execute(input, names);
  const outs = Array.isArray(out) ? out : [out];
  const data = outs.map((t) => t.dataSync() as Float32Array);
  tf.dispose([input, ...outs]);
  return data;
}

interface Compared {
  /**
   * Per output over all batches: `absolute` = max|onnx − tfjs|, `relative` = that over max|tfjs| (the
   * output's own scale on these inputs, so a mask that is near 0 on noise is judged on the photos' scale).
   */
  errors: Record<string, { relative: number; absolute: number }>;
  /** The ONNX outputs of each batch, by output name. */
  onnx: Record<string, Float32Array>[];
}

/** Run each batch through TF.js and the converted model and keep the worst error per output. */
async function compare(key: ScorerModelKey, original: Original, batches: Float32Array[][]): Promise<Compared> {
  const spec = SCORER_MODELS[key];
  // Fresh (a digest check) once the first test has converted it.
  const session = await ort.InferenceSession.create(await ensureScorerModel(key, { cacheDir }), sessionOptions);
  const names = Object.keys(spec.outputs);
  assert.deepEqual([...session.outputNames].sort(), [...names].sort(), 'the spec names every output');
  assert.deepEqual(session.inputNames, [spec.input]);
  const absolute: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  const scale: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  const onnx: Compared['onnx'] = [];
  for (const batch of batches) {
    const x = new Float32Array(batch.reduce((n, b) => n + b.length, 0));
    batch.forEach((b, i) => x.set(b, i * b.length));
    const dims = [batch.length, ...spec.inputShape.slice(1)];
    const expected = runOriginal(original, x, dims, names);
    const got = await session.run({ [spec.input]: new ort.Tensor('float32', x, dims) });
    names.forEach((name, i) => {
      absolute[name] = Math.max(absolute[name], maxAbsDiff(got[name].data as Float32Array, expected[i]));
      scale[name] = Math.max(scale[name], maxAbs(expected[i]));
    });
    onnx.push(Object.fromEntries(names.map((n) => [n, got[n].data as Float32Array])));
  }
  await session.release();
  for (const n of names) assert.ok(scale[n] > 0, `${key} ${n}: an all-zero reference output proves nothing`);
  const errors = Object.fromEntries(names.map((n) => [n, { relative: absolute[n] / scale[n], absolute: absolute[n] }]));
  console.log(`# ${key}: worst error vs TF.js ${JSON.stringify(errors, (_, v) => (typeof v === 'number' ? Number(v.toPrecision(2)) : v))}`);
  return { errors, onnx };
}

/** The bound every output must meet: max|onnx − tfjs| ≤ 1e-4 × the output's largest magnitude. */
function assertClose(key: string, errors: Compared['errors']): void {
  for (const [name, e] of Object.entries(errors)) assert.ok(e.relative < 1e-4, `${key} ${name}: relative error ${e.relative}`);
}

const humanModel = (key: ScorerModelKey) => loadTfjsGraph(packagePath(SCORER_MODELS[key].package, SCORER_MODELS[key].file));

test('emotion: ONNX matches TF.js on six faces and two random inputs; rows are probabilities', async () => {
  const faces = await Promise.all(photos.map((_, i) => faceSquare(i, 1, 64).then(toGray)));
  const noise = [1, 2].map((s) => random(s, 64 * 64, [-1, 1]));
  const original = await humanModel('emotion');
  const { errors, onnx } = await compare('emotion', original, [[...faces, ...noise]]);
  assertClose('emotion', errors);
  const p = onnx[0].Identity;
  for (let r = 0; r < 8; r++) assert.ok(Math.abs(p.subarray(r * 7, r * 7 + 7).reduce((a, b) => a + b) - 1) < 1e-5);
  const top = (r: number) => EMOTION_LABELS[p.subarray(r * 7, r * 7 + 7).reduce((best, v, i, a) => (v > a[best] ? i : best), 0)];
  console.log(`# emotion: top class per demo face ${photos.map((_, r) => top(r)).join(', ')}`);
  original.dispose();
});

test('gear: ONNX matches TF.js on three faces and one random input', async () => {
  // @vladmandic/human's crop: top 0, left 0.10, bottom 0.90, right 0.90 of the face box. (GEAR is a
  // VGG-style network, ~0.2 s a face: three faces keep the test short.)
  const faces = await Promise.all(faceBoxes.slice(0, 3).map(([x1, y1, x2, y2], i) => region(photos[i], x1 + 0.1 * (x2 - x1), y1, 0.8 * (x2 - x1), 0.9 * (y2 - y1), 198)));
  const noise = [3].map((s) => random(s, 198 * 198 * 3, [0, 1]));
  const original = await humanModel('gear');
  const { errors } = await compare('gear', original, [[...faces, ...noise]]);
  assertClose('gear', errors);
  original.dispose();
});

test('facemesh: ONNX matches TF.js on six faces and two random inputs; it sees the faces and not the noise', async () => {
  const faces = await Promise.all(photos.map((_, i) => faceSquare(i, 1.5, 192)));
  const noise = [5, 6].map((s) => random(s, 192 * 192 * 3, [0, 1]));
  const original = await humanModel('facemesh');
  const { errors, onnx } = await compare('facemesh', original, [[...faces, ...noise]]);
  assertClose('facemesh', errors);
  const flag = onnx[0].output_faceflag;
  assert.ok(flag.subarray(0, 6).every((v) => v > 0.9), `face flags on faces: ${Array.from(flag.subarray(0, 6))}`);
  assert.ok(flag.subarray(6).every((v) => v < 0.5), `face flags on noise: ${Array.from(flag.subarray(6))}`);
  // On a face the 468 landmarks' (x, y) lie inside the 192×192 crop, around its centre.
  const mesh = onnx[0].output_mesh;
  for (let r = 0; r < 6; r++) {
    const xs = [], ys = [];
    for (let k = 0; k < 468; k++) xs.push(mesh[r * 1404 + 3 * k]), ys.push(mesh[r * 1404 + 3 * k + 1]);
    const mean = (v: number[]) => v.reduce((a, b) => a + b) / v.length;
    assert.ok([...xs, ...ys].every((v) => v > 0 && v < 192) && Math.abs(mean(xs) - 96) < 30 && Math.abs(mean(ys) - 96) < 30, `face ${r + 1}: landmarks off the crop`);
  }
  original.dispose();
});

test('selfie: ONNX matches TF.js on three photos and one random input; people are in the mask', async () => {
  const images = await Promise.all([0, 1, 2].map((i) => wholePhoto(i, 256)));
  const original = await humanModel('selfie');
  const { errors, onnx } = await compare('selfie', original, [...images, random(7, 256 * 256 * 3, [0, 1])].map((x) => [x]));
  assertClose('selfie', errors);
  // The mask at each photo's detected face centre says "person".
  for (const i of [0, 1, 2]) {
    const [x1, y1, x2, y2] = faceBoxes[i];
    const px = Math.floor(((x1 + x2) / 2 / photos[i].width) * 256), py = Math.floor(((y1 + y2) / 2 / photos[i].height) * 256);
    const p = onnx[i]['activation_10:0'][py * 256 + px];
    assert.ok(p > 0.5, `photo ${i + 1}: person probability ${p} at the face centre`);
  }
  original.dispose();
});

test('nsfw (nsfwjs MobileNetV2, a layers model): ONNX matches TF.js on six photos and two random inputs', async () => {
  const images = await Promise.all(photos.map((_, i) => wholePhoto(i, 224)));
  const noise = [8, 9].map((s) => random(s, 224 * 224 * 3, [0, 1]));
  const spec = SCORER_MODELS.nsfw;
  const original = await loadTfjsLayersBundle(packagePath(spec.package, spec.file));
  const { errors, onnx } = await compare('nsfw', original, [[...images, ...noise]]);
  assertClose('nsfw', errors);
  const rows = Array.from({ length: 8 }, (_, r) => Array.from(onnx[0].dense_3.subarray(r * 5, r * 5 + 5)));
  for (const row of rows) assert.ok(Math.abs(row.reduce((a, b) => a + b) - 1) < 1e-5);
  const top = (row: number[]) => NSFW_LABELS[row.indexOf(Math.max(...row))];
  assert.deepEqual(rows.slice(6).map(top), ['neutral', 'neutral'], 'noise is neutral');
  // (The demo's party photos are not all "neutral" to this model: see docs/models.md.)
  console.log(`# nsfw on the demo photos: ${rows.slice(0, 6).map((row) => `${top(row)} ${Math.max(...row).toFixed(2)}`).join(', ')}`);
  original.dispose();
});

test('cleanup', async () => {
  await rm(cacheDir, { recursive: true, force: true });
});
