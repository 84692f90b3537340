/**
 * float32 <-> float16 and the model-boundary tensors (src/onnx/dtypes.ts), against onnxruntime's own Cast:
 * every one of the 65536 half bit patterns, and float32 values of every kind (random bit patterns, ties,
 * subnormals, overflow, infinities, NaN, signed zeros) rounded to half.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { OnnxBuilder } from '../../src/onnx/builder.ts';
import { fromHalf, fromOrtTensor, toHalf, toOrtTensor } from '../../src/onnx/dtypes.ts';
import { isUserError } from '../../src/errors.ts';
import { mulberry32 } from '../helpers/prng.ts';

const FLOAT = 1;
const FLOAT16 = 10;

/** onnxruntime's Cast of a 1-D tensor. */
async function cast(input: ort.Tensor, to: typeof FLOAT | typeof FLOAT16): Promise<ort.Tensor> {
  const b = new OnnxBuilder({ opset: 17 });
  const x = b.input('x', input.type === 'float16' ? 'float16' : 'float32', ['n']);
  b.output(b.op('Cast', [x], { to }, 'y'), to === FLOAT16 ? 'float16' : 'float32', ['n']);
  const session = await ort.InferenceSession.create(b.toBytes());
  try {
    return (await session.run({ x: input })).y;
  } finally {
    await session.release();
  }
}

const isNanHalf = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;

test('fromHalf reads every half bit pattern as onnxruntime does', async () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const expected = (await cast(new ort.Tensor('float16', all, [all.length]), FLOAT)).data as Float32Array;
  const got = fromHalf(all);
  for (let i = 0; i < all.length; i++) {
    if (isNanHalf(i)) assert.ok(Number.isNaN(got[i]) && Number.isNaN(expected[i]), `0x${i.toString(16)}`);
    else assert.ok(Object.is(got[i], expected[i]), `0x${i.toString(16)}: ${got[i]} vs ${expected[i]}`);
  }
});

test('toHalf rounds float32 to the nearest half (ties to even) as onnxruntime does', async () => {
  const values: number[] = [0, -0, 1, -1, 65504, 65519.99, 65520, -65520, 1e6, Infinity, -Infinity, NaN, 2 ** -24, 2 ** -25, 2 ** -25 * 1.0001, 2 ** -14, 2 ** -14 * (1 - 2 ** -11)];
  // Exactly half-way between two halves, in the normal and subnormal ranges: ties go to the even one.
  for (let m = 0; m < 64; m++) values.push(1 + (2 * m + 1) * 2 ** -11, -(2 + (2 * m + 1) * 2 ** -10), (2 * m + 1) * 2 ** -25);
  const random = mulberry32(11);
  const bits = new Uint32Array(20000).map(() => Math.floor(random() * 2 ** 32));
  values.push(...new Float32Array(bits.buffer));
  // And values inside the half range, where most model inputs are.
  for (let i = 0; i < 20000; i++) values.push((random() - 0.5) * 2 ** Math.floor(random() * 40 - 26));
  const data = Float32Array.from(values);
  const expected = (await cast(new ort.Tensor('float32', data, [data.length]), FLOAT16)).data as Uint16Array;
  const got = toHalf(data);
  for (let i = 0; i < data.length; i++) {
    if (Number.isNaN(data[i])) assert.ok(isNanHalf(got[i]) && isNanHalf(expected[i]), `NaN ${i}`);
    else assert.equal(got[i], expected[i], `${data[i]}: 0x${got[i].toString(16)} vs 0x${expected[i].toString(16)}`);
  }
});

test('model-boundary tensors: float32 feeds become the input\'s type; float16 outputs come back as float32', () => {
  const feed = [1.5, -2, 3.25];
  assert.deepEqual([...(toOrtTensor('float32', feed, [3], 'm.onnx', 'x').data as Float32Array)], feed);
  assert.deepEqual([...(toOrtTensor('int32', feed, [3], 'm.onnx', 'x').data as Int32Array)], [1, -2, 3]);
  assert.deepEqual([...(toOrtTensor('int64', feed, [3], 'm.onnx', 'x').data as BigInt64Array)], [1n, -2n, 3n]);
  const half = toOrtTensor('float16', feed, [3], 'm.onnx', 'x');
  assert.equal(half.type, 'float16');
  assert.deepEqual(fromOrtTensor(half, 'm.onnx', 'y'), { data: Float32Array.from(feed), dims: [3] });
  assert.throws(() => toOrtTensor('string', feed, [3], 'm.onnx', 'x'), (e) => isUserError(e) && e.message === 'ONNX model m.onnx: input x has type string; expected float32, float16, int32 or int64');
  assert.throws(() => fromOrtTensor(new ort.Tensor('int32', Int32Array.from(feed), [3]), 'm.onnx', 'y'), (e) => isUserError(e) && /output y has type int32; expected float32 or float16/.test(e.message));
  assert.throws(() => fromOrtTensor(undefined, 'm.onnx', 'y'), (e) => isUserError(e) && e.message === 'ONNX model m.onnx returned no output y');
});
