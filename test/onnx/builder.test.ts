import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { OnnxBuilder, float, floats, int64, tensorAttr } from '../../src/onnx/builder.ts';

const options: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1 };

async function run(b: OnnxBuilder, feeds: Record<string, ort.Tensor>): Promise<ort.InferenceSession.ReturnType> {
  const session = await ort.InferenceSession.create(b.toBytes(), options);
  return session.run(feeds);
}

/** A deterministic pseudo-random sequence in [-1, 1). */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol * Math.max(1, Math.abs(expected[i])), `index ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

test('MatMul + Add + LeakyRelu with a symbolic batch dim match JS', async () => {
  const b = new OnnxBuilder();
  const x = b.input('x', 'float32', ['batch', 3]);
  const w = b.initializer('w', values(6, 1), [3, 2]);
  const bias = b.constant(new Float32Array([0.25, -0.5]), [2], 'bias');
  const y = b.op('Add', [b.op('MatMul', [x, w]), bias]);
  b.output(b.op('LeakyRelu', [y], { alpha: float(0.5) }, 'y'), 'float32', ['batch', 2]);
  const xs = values(12, 2);
  const r = await run(b, { x: new ort.Tensor('float32', xs, [4, 3]) });
  const W = values(6, 1);
  const expected: number[] = [];
  for (let n = 0; n < 4; n++) {
    for (let j = 0; j < 2; j++) {
      let s = [0.25, -0.5][j];
      for (let k = 0; k < 3; k++) s += xs[n * 3 + k] * W[k * 2 + j];
      expected.push(s >= 0 ? s : 0.5 * s);
    }
  }
  assert.deepEqual(r.y.dims, [4, 2]);
  assertClose(r.y.data as Float32Array, expected);
});

test('Conv with explicit asymmetric pads, strides and group match a direct JS convolution', async () => {
  const [N, C, H, W, K] = [1, 2, 5, 6, 3];
  const pads = [0, 1, 1, 0]; // top, left, bottom, right
  const b = new OnnxBuilder();
  const x = b.input('x', 'float32', [N, C, H, W]);
  const weight = values(C * K * K, 3); // depthwise: [C, 1, K, K]
  const w = b.initializer('w', weight, [C, 1, K, K]);
  b.node('Conv', [x, w], ['y'], { group: C, kernel_shape: [K, K], strides: [2, 2], pads, dilations: [1, 1] });
  b.output('y', 'float32', null);
  const xs = values(N * C * H * W, 4);
  const r = await run(b, { x: new ort.Tensor('float32', xs, [N, C, H, W]) });
  const OH = Math.floor((H + pads[0] + pads[2] - K) / 2) + 1;
  const OW = Math.floor((W + pads[1] + pads[3] - K) / 2) + 1;
  assert.deepEqual(r.y.dims, [N, C, OH, OW]);
  const expected: number[] = [];
  for (let c = 0; c < C; c++) {
    for (let oy = 0; oy < OH; oy++) {
      for (let ox = 0; ox < OW; ox++) {
        let s = 0;
        for (let ky = 0; ky < K; ky++) {
          for (let kx = 0; kx < K; kx++) {
            const iy = oy * 2 + ky - pads[0];
            const ix = ox * 2 + kx - pads[1];
            if (iy < 0 || ix < 0 || iy >= H || ix >= W) continue;
            s += xs[(c * H + iy) * W + ix] * weight[(c * K + ky) * K + kx];
          }
        }
        expected.push(s);
      }
    }
  }
  assertClose(r.y.data as Float32Array, expected);
});

test('int64 initializers, Constant tensors and float16 bits', async () => {
  const b = new OnnxBuilder({ name: 'misc', metadata: { source: 'test' } });
  const x = b.input('x', 'float32', [2, 3]);
  const shape = b.constant(int64([3, 2]), [2], 'shape');
  const reshaped = b.op('Reshape', [x, shape]);
  const scale = b.op('Constant', [], { value_floats: floats([2, 3]) });
  const scaled = b.op('Mul', [reshaped, scale]);
  const lo = b.constant(new Float32Array([-1]), [], 'lo');
  const hi = b.op('Constant', [], { value: tensorAttr(new Float32Array([4]), []) });
  const clipped = b.op('Clip', [scaled, lo, hi]);
  // float16 bit patterns: 0x3c00 = 1.0, 0x4000 = 2.0
  const half = b.constant(new Uint16Array([0x3c00, 0x4000]), [2], 'half', 'float16');
  const halfAsFloat = b.op('Cast', [half], { to: 1 });
  const withHalf = b.op('Add', [clipped, halfAsFloat]);
  b.output(b.op('Transpose', [withHalf], { perm: [1, 0] }, 'y'), 'float32', [2, 3]);
  b.node('ReduceSum', [withHalf], ['total'], { keepdims: 0, noop_with_empty_axes: 0 });
  b.output('total', 'float32', []);
  b.node('Identity', [lo], ['lo_copy'], {});
  b.output('lo_copy', 'float32', []);
  const xs = new Float32Array([0.5, -2, 1, 3, 0.1, -0.3]);
  const r = await run(b, { x: new ort.Tensor('float32', xs, [2, 3]) });
  const expected = [0, 0, 0, 0, 0, 0];
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 2; j++) {
      const v = Math.min(4, Math.max(-1, xs[i * 2 + j] * [2, 3][j])) + [1, 2][j];
      expected[j * 3 + i] = v;
    }
  }
  assertClose(r.y.data as Float32Array, expected);
  assertClose(r.total.data as Float32Array, [expected.reduce((a, v) => a + v, 0)]);
});

test('multi-output nodes, an extra opset domain and dynamic dims', async () => {
  const b = new OnnxBuilder();
  b.useOpset('com.microsoft', 1);
  const x = b.input('x', 'float32', ['batch', 'n']);
  const k = b.constant(int64([2]), [1], 'k');
  b.node('TopK', [x, k], ['top_values', 'top_indices'], { axis: -1, largest: 1 });
  b.output('top_values', 'float32', ['batch', 2]);
  b.output('top_indices', 'int64', ['batch', 2]);
  // com.microsoft's Gelu: x * Φ(x), an op outside the default domain.
  b.node('Gelu', [x], ['gelu'], {}, { domain: 'com.microsoft' });
  b.output('gelu', 'float32', ['batch', 'n']);
  const xs = new Float32Array([0.5, 3, -1, 2, 7, 0, 1, 1]);
  const r = await run(b, { x: new ort.Tensor('float32', xs, [2, 4]) });
  assert.deepEqual(Array.from(r.top_values.data as Float32Array), [3, 2, 7, 1]);
  assert.deepEqual(Array.from(r.top_indices.data as BigInt64Array, Number), [1, 3, 0, 2]);
  const erf = (v: number) => {
    // Abramowitz–Stegun 7.1.26, |error| < 1.5e-7
    const t = 1 / (1 + 0.3275911 * Math.abs(v));
    const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-v * v);
    return v >= 0 ? y : -y;
  };
  assertClose(r.gelu.data as Float32Array, Array.from(xs, (v) => 0.5 * v * (1 + erf(v / Math.SQRT2))), 1e-5);
});

test('the same calls give the same bytes', () => {
  const build = () => {
    const b = new OnnxBuilder({ metadata: { a: '1' } });
    const x = b.input('x', 'float32', [1, 4]);
    b.output(b.op('Relu', [b.op('Add', [x, b.constant(values(4, 9), [1, 4])])], {}, 'y'), 'float32', [1, 4]);
    return b.toBytes();
  };
  assert.deepEqual(build(), build());
});

test('mistakes are reported at build time, naming the value', () => {
  const b = new OnnxBuilder();
  b.input('x', 'float32', [1]);
  assert.throws(() => b.input('x', 'float32', [1]), /used twice: x/);
  assert.throws(() => b.initializer('w', new Float32Array(3), [2, 2]), /tensor w: 3 values do not fill dims \[2, 2\]/);
  assert.throws(() => b.op('Relu', ['x'], { bad: [] }), /attribute bad: an empty list is ambiguous/);
  assert.throws(() => b.node('Foo', ['x'], ['y'], {}, { domain: 'com.example' }), /domain "com.example" has no opset/);
});

test('ONNX Runtime rejects a graph whose node is wrong, and the message names the node', async () => {
  const b = new OnnxBuilder();
  const x = b.input('x', 'float32', [2, 3]);
  b.output(b.op('MatMul', [x, b.constant(values(4, 1), [2, 2])], {}, 'bad_matmul'), 'float32', null);
  await assert.rejects(ort.InferenceSession.create(b.toBytes(), options).then((s) => s.run({ x: new ort.Tensor('float32', new Float32Array(6), [2, 3]) })), /bad_matmul/);
});
