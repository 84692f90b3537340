import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { denoiserGraph, textEncoderGraph, vaeDecoderGraph, vaeEncoderGraph, type DenoiserSpec } from '../../src/reference/graphs.ts';
import { mulberry32 as rng } from '../helpers/prng.ts';

const gauss = (r: () => number) => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());

function sdAlphas(): Float32Array {
  const a = new Float32Array(1000);
  let acc = 1;
  for (let i = 0; i < 1000; i++) {
    const beta = (Math.sqrt(0.00085) + ((Math.sqrt(0.012) - Math.sqrt(0.00085)) * i) / 999) ** 2;
    acc *= 1 - beta;
    a[i] = acc;
  }
  return a;
}

/** The same formula in float64, written directly from the definition ‖x_t − √ᾱ x_i‖². */
function reference(spec: DenoiserSpec, x: Float64Array, cond: Float64Array | null, t: number, bank: number): Float64Array {
  const T = spec.alphasCumprod.length;
  const a = spec.alphasCumprod;
  const tc = Math.min(T - 1, Math.max(0, t));
  const i0 = Math.floor(tc);
  const abar = a[i0] + (tc - i0) * (a[Math.min(i0 + 1, T - 1)] - a[i0]);
  // With a bank prior, the items of every bank, each with its bank's log prior; else the chosen bank's.
  const K = spec.banks.length;
  const N = spec.banks[0].length;
  const banks = spec.bankPrior ? spec.banks.map((_, k) => k) : [bank];
  const items = banks.flatMap((k) => spec.banks[k]);
  const D = x.length;
  const logits = items.map((xi, n) => {
    const i = n % N;
    let d = 0;
    for (let j = 0; j < D; j++) d += (x[j] - Math.sqrt(abar) * xi[j]) ** 2;
    let lp = -d / (2 * (1 - abar));
    if (spec.bankPrior) lp += spec.bankPrior[bank * K + banks[Math.floor(n / N)]];
    if (spec.image && cond) {
      const src = spec.banks[spec.image.sourceBank][i];
      let e = 0, n = 0;
      for (let j = 0; j < D; j++) {
        e += (cond[j] - src[j]) ** 2;
        n += cond[j] ** 2;
      }
      if (n > 0) lp += (-spec.image.strength * e) / D;
    }
    return lp;
  });
  const m = Math.max(...logits);
  const w = logits.map((l) => Math.exp(l - m));
  const z = w.reduce((a, b) => a + b, 0);
  const x0 = new Float64Array(D);
  items.forEach((xi, i) => {
    for (let j = 0; j < D; j++) x0[j] += (w[i] / z) * xi[j];
  });
  const eps = x.map((v, j) => (v - Math.sqrt(abar) * x0[j]) / Math.sqrt(1 - abar));
  return spec.prediction === 'epsilon' ? eps : eps.map((e, j) => Math.sqrt(abar) * e - Math.sqrt(1 - abar) * x0[j]);
}

function randomSpec(seed: number, image: DenoiserSpec['image'], prediction: DenoiserSpec['prediction']): DenoiserSpec {
  const r = rng(seed);
  const [C, H, W, K, N] = [3, 4, 5, 3, 6];
  const banks = Array.from({ length: K }, () => Array.from({ length: N }, () => Float32Array.from({ length: C * H * W }, () => r() * 2 - 1)));
  return { banks, channels: C, height: H, width: W, alphasCumprod: sdAlphas(), prediction, image };
}

async function runDenoiser(spec: DenoiserSpec, sample: Float32Array, batch: number, t: number[], ehs: Float32Array, seq: number) {
  const session = await ort.InferenceSession.create(denoiserGraph(spec));
  const inC = spec.image ? 2 * spec.channels : spec.channels;
  const out = await session.run({
    sample: new ort.Tensor('float32', sample, [batch, inC, spec.height, spec.width]),
    timestep: new ort.Tensor('float32', Float32Array.from(t), [batch]),
    encoder_hidden_states: new ort.Tensor('float32', ehs, [batch, seq, spec.banks.length]),
  });
  await session.release();
  return out.out_sample;
}

/** Token scores that select `bank` for each batch item. */
function selecting(banks: number[], K: number, seq: number): Float32Array {
  const ehs = new Float32Array(banks.length * seq * K);
  banks.forEach((k, i) => (ehs[(i * seq + 1) * K + k] = 2.5));
  return ehs;
}

for (const prediction of ['epsilon', 'v_prediction'] as const) {
  test(`denoiser graph matches the float64 formula (${prediction}, text-to-image)`, async () => {
    const spec = randomSpec(1, undefined, prediction);
    const r = rng(2);
    const D = 3 * 4 * 5;
    // Timesteps from very noisy to nearly clean, fractional ones included; each item its own bank.
    const ts = [999, 731.25, 400, 120.5, 20, 1];
    const banks = [0, 1, 2, 1, 0, 2];
    const B = ts.length;
    const x = new Float32Array(B * D);
    for (let i = 0; i < B; i++) {
      const ab = spec.alphasCumprod[Math.floor(ts[i])];
      const target = spec.banks[banks[i]][i % 6];
      for (let j = 0; j < D; j++) x[i * D + j] = Math.sqrt(ab) * target[j] + Math.sqrt(1 - ab) * gauss(r) * (i === 5 ? 3 : 1);
    }
    const out = await runDenoiser(spec, x, B, ts, selecting(banks, 3, 7), 7);
    assert.deepEqual(out.dims, [B, 3, 4, 5]);
    for (let i = 0; i < B; i++) {
      const want = reference(spec, Float64Array.from(x.subarray(i * D, (i + 1) * D)), null, ts[i], banks[i]);
      const got = (out.data as Float32Array).subarray(i * D, (i + 1) * D);
      const scale = Math.max(1, ...want.map(Math.abs));
      for (let j = 0; j < D; j++) assert.ok(Math.abs(got[j] - want[j]) <= 2e-4 * scale, `item ${i} (t=${ts[i]}) value ${j}: ${got[j]} vs ${want[j]}`);
    }
  });
}

test('denoiser graph with image conditioning: prior from the source bank, uniform for zero image latents', async () => {
  const spec = randomSpec(3, { strength: 40, sourceBank: 0 }, 'epsilon');
  const r = rng(4);
  const D = 60;
  const B = 4;
  const ts = [900, 500, 500, 250.75];
  const banks = [2, 1, 1, 2];
  const sample = new Float32Array(B * 2 * D);
  const conds: (Float64Array | null)[] = [];
  for (let i = 0; i < B; i++) {
    for (let j = 0; j < D; j++) sample[i * 2 * D + j] = gauss(r);
    // item 2 is the unconditional branch: zero image latents
    const cond = i === 2 ? new Float64Array(D) : Float64Array.from(spec.banks[0][i], (v) => v + 0.05 * gauss(r));
    sample.set(Float32Array.from(cond), i * 2 * D + D);
    conds.push(cond);
  }
  const out = await runDenoiser(spec, sample, B, ts, selecting(banks, 3, 5), 5);
  for (let i = 0; i < B; i++) {
    const x = Float64Array.from(sample.subarray(i * 2 * D, i * 2 * D + D));
    const want = reference(spec, x, conds[i], ts[i], banks[i]);
    const got = (out.data as Float32Array).subarray(i * D, (i + 1) * D);
    for (let j = 0; j < D; j++) assert.ok(Math.abs(got[j] - want[j]) <= 2e-4 * Math.max(1, Math.abs(want[j])), `item ${i} value ${j}: ${got[j]} vs ${want[j]}`);
  }
  // The prior matters: the same input with and without the image condition gives different outputs.
  const a = (out.data as Float32Array).subarray(1 * D, 2 * D);
  const b = (out.data as Float32Array).subarray(2 * D, 3 * D);
  assert.ok(a.some((v, j) => Math.abs(v - b[j]) > 1e-3));
});

test('denoiser graph with a bank prior (failed edits): the mixture of every bank, weighted by the chosen bank row', async () => {
  const K = 3;
  // Chosen bank 1 draws bank 0 (no edit) at 0.2 and bank 2 (another edit) at 0.1; chosen bank 2 never draws bank 0.
  const p = [[1, 0, 0], [0.2, 0.7, 0.1], [0, 0.3, 0.7]];
  const bankPrior = Float32Array.from(p.flat(), (v) => (v > 0 ? Math.log(v) : -1e30));
  // Zero terminal SNR, as the reference scheduler: at t = 999 only the prior speaks.
  const alphasCumprod = sdAlphas();
  alphasCumprod[999] = 0;
  const spec = { ...randomSpec(7, { strength: 40, sourceBank: 0 }, 'v_prediction'), alphasCumprod, bankPrior };
  const r = rng(8);
  const D = 60;
  const ts = [999, 700, 300.5, 40, 2];
  const banks = [1, 1, 2, 1, 2];
  const B = ts.length;
  const sample = new Float32Array(B * 2 * D);
  const conds: Float64Array[] = [];
  for (let i = 0; i < B; i++) {
    for (let j = 0; j < D; j++) sample[i * 2 * D + j] = gauss(r);
    const cond = Float64Array.from(spec.banks[0][i], (v) => v + 0.05 * gauss(r));
    sample.set(Float32Array.from(cond), i * 2 * D + D);
    conds.push(cond);
  }
  const out = await runDenoiser(spec, sample, B, ts, selecting(banks, K, 5), 5);
  for (let i = 0; i < B; i++) {
    const x = Float64Array.from(sample.subarray(i * 2 * D, i * 2 * D + D));
    const want = reference(spec, x, conds[i], ts[i], banks[i]);
    const got = (out.data as Float32Array).subarray(i * D, (i + 1) * D);
    for (let j = 0; j < D; j++) assert.ok(Math.abs(got[j] - want[j]) <= 2e-4 * Math.max(1, Math.abs(want[j])), `item ${i} (t=${ts[i]}) value ${j}: ${got[j]} vs ${want[j]}`);
  }
  // At pure noise (ᾱ = 0, v = −x̂0) the estimate is the prior mean: bank weights p[c] times the person prior.
  const personPrior = spec.banks[0].map((s) => Math.exp((-40 * s.reduce((acc, v, j) => acc + (conds[0][j] - v) ** 2, 0)) / D));
  const z = personPrior.reduce((a, b) => a + b, 0);
  const mean = Array.from({ length: D }, (_, j) => p[1].reduce((acc, pk, k) => acc + pk * spec.banks[k].reduce((m, item, n) => m + (personPrior[n] / z) * item[j], 0), 0));
  const v0 = (out.data as Float32Array).subarray(0, D);
  assert.ok(mean.every((m, j) => Math.abs(-v0[j] - m) < 1e-4), 'x̂0 at t = 999 is the prior-weighted mean of the three banks');
});

test('bank choice: tokens vote, the bias breaks ties toward the lowest bank', async () => {
  const spec = { ...randomSpec(5, undefined, 'epsilon'), bankBias: new Float32Array([0.5, 0, 0]) };
  const D = 60;
  const B = 3;
  // At t = 1 the denoiser returns (almost exactly) the nearest item of the chosen bank: x = bank[k][0].
  const x = new Float32Array(B * D);
  for (let i = 0; i < B; i++) x.set(spec.banks[2][0], i * D);
  const ehs = new Float32Array(B * 4 * 3);
  ehs[(0 * 4 + 1) * 3 + 2] = 1; // item 0: bank 2 scores 1 > bias 0.5 → bank 2
  ehs[(1 * 4 + 1) * 3 + 2] = 0.25; // item 1: 0.25 < 0.5 → bank 0
  // item 2: no votes → bank 0
  const out = await runDenoiser(spec, x, B, [1, 1, 1], ehs, 4);
  const abar = spec.alphasCumprod[1];
  const x0 = (i: number) => Array.from({ length: D }, (_, j) => (x[i * D + j] - Math.sqrt(1 - abar) * (out.data as Float32Array)[i * D + j]) / Math.sqrt(abar));
  const nearest = (v: number[], k: number) => spec.banks[k].map((it) => it.reduce((s, y, j) => s + (y - v[j]) ** 2, 0)).reduce((best, d, i, all) => (d < all[best] ? i : best), 0);
  const d0 = x0(0).reduce((s, v, j) => s + (v - spec.banks[2][0][j]) ** 2, 0);
  assert.ok(d0 < 1e-6, `item 0 should reconstruct bank 2 item 0 (distance ${d0})`);
  const rec1 = x0(1);
  const i1 = nearest(rec1, 0);
  assert.ok(rec1.reduce((s, v, j) => s + (v - spec.banks[0][i1][j]) ** 2, 0) < 1e-3, 'item 1 reconstructs an item of bank 0');
});

test('text encoder, VAE encoder and decoder graphs', async () => {
  const table = Float32Array.from({ length: 5 * 2 }, (_, i) => i / 10);
  const te = await ort.InferenceSession.create(textEncoderGraph(table, 5, 2, 4));
  const h = await te.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from([0n, 3n, 4n, 4n]), [1, 4]) });
  assert.deepEqual(Array.from(h.last_hidden_state.data as Float32Array).map((v) => Math.round(v * 10)), [0, 1, 6, 7, 8, 9, 8, 9]);
  const img = Float32Array.from({ length: 2 * 3 * 2 * 2 }, (_, i) => i / 24 - 0.5);
  const enc = await ort.InferenceSession.create(vaeEncoderGraph(3));
  const p = await enc.run({ sample: new ort.Tensor('float32', img, [2, 3, 2, 2]) });
  assert.deepEqual(p.latent_parameters.dims, [2, 6, 2, 2]);
  const lp = p.latent_parameters.data as Float32Array;
  assert.deepEqual(Array.from(lp.subarray(0, 12)), Array.from(img.subarray(0, 12)));
  assert.ok(lp.subarray(12, 24).every((v) => v === -30));
  const dec = await ort.InferenceSession.create(vaeDecoderGraph(3));
  const d = await dec.run({ latent_sample: new ort.Tensor('float32', img, [2, 3, 2, 2]) });
  assert.deepEqual(Array.from(d.sample.data as Float32Array), Array.from(img));
});
