import { test } from 'node:test';
import assert from 'node:assert/strict';
import { philox4x32, randn, normalStream } from '../../src/teacher/random.ts';

const hex = (w: Uint32Array) => Array.from(w, (x) => x.toString(16).padStart(8, '0'));

test('Philox4x32-10 reproduces the Random123 known-answer vectors', () => {
  const out = new Uint32Array(4);
  philox4x32([0, 0, 0, 0], [0, 0], out);
  assert.deepEqual(hex(out), ['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']);
  philox4x32([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], out);
  assert.deepEqual(hex(out), ['408f276d', '41c83b0e', 'a20bc7c6', '6d5451fd']);
  philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0], out);
  assert.deepEqual(hex(out), ['d16cfe09', '94fdcceb', '5001e420', '24126ea1']);
});

test('pinned values (regression guard: changing these changes every dataset)', () => {
  assert.deepEqual(Array.from(randn(0, 6)), [-0.12151796370744705, -1.3500326871871948, -0.08187421411275864, -0.2227090448141098, 1.7764242887496948, 2.173520803451538]);
  assert.deepEqual(Array.from(randn(2 ** 53 - 1, 3)), [0.7064021229743958, -1.3273342847824097, -1.0330994129180908]);
  assert.deepEqual(Array.from(randn(123456789, 4)), [0.9327852725982666, -1.751457929611206, -0.4770983159542084, 1.0815178155899048]);
});

test('a stream continues exactly where the previous call stopped, odd counts included', () => {
  const whole = randn(7, 1001);
  const s = normalStream(7);
  const parts = [s.next(1), s.next(0), s.next(3), s.next(500), s.next(497)];
  const joined = new Float32Array(1001);
  let k = 0;
  for (const p of parts) {
    joined.set(p, k);
    k += p.length;
  }
  assert.deepEqual(joined, whole);
  assert.deepEqual(randn(7, 10), randn(7, 10), 'same seed, same values');
});

test('1e6 draws have mean 0, variance 1 and normal tails', () => {
  const n = 1_000_000;
  const z = randn(20240601, n);
  let sum = 0, sq = 0, tail = 0, finite = true;
  for (const v of z) {
    sum += v;
    sq += v * v;
    if (Math.abs(v) > 1.959964) tail++;
    if (!Number.isFinite(v)) finite = false;
  }
  const mean = sum / n;
  const variance = sq / n - mean * mean;
  assert.ok(finite);
  // 5 standard errors: mean se = 1e-3, variance se = sqrt(2)e-3, tail fraction se = 2.2e-4.
  assert.ok(Math.abs(mean) < 5e-3, `mean ${mean}`);
  assert.ok(Math.abs(variance - 1) < 7.1e-3, `variance ${variance}`);
  assert.ok(Math.abs(tail / n - 0.05) < 1.1e-3, `tail fraction ${tail / n}`);
});

test('different seeds give uncorrelated streams', () => {
  const n = 100_000;
  const seeds = [0, 1, 2, 2 ** 32, 2 ** 32 + 1, 2 ** 53 - 1];
  const streams = seeds.map((s) => randn(s, n));
  for (let i = 0; i < seeds.length; i++) {
    for (let j = i + 1; j < seeds.length; j++) {
      let dot = 0;
      for (let k = 0; k < n; k++) dot += streams[i][k] * streams[j][k];
      // correlation se = 1/sqrt(n) = 3.2e-3; allow 5 se.
      assert.ok(Math.abs(dot / n) < 0.016, `seeds ${seeds[i]} and ${seeds[j]}: correlation ${dot / n}`);
    }
  }
  // Consecutive values within one stream are uncorrelated too (lag 1).
  let lag = 0;
  for (let k = 1; k < n; k++) lag += streams[0][k] * streams[0][k - 1];
  assert.ok(Math.abs(lag / n) < 0.016, `lag-1 correlation ${lag / n}`);
});

test('seeds outside [0, 2^53) are rejected', () => {
  for (const bad of [-1, 1.5, 2 ** 53, NaN, Infinity]) assert.throws(() => randn(bad, 1), RangeError);
});
