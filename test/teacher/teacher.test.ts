// The ONNX teacher against what diffusers computed (refs/pipelines.json), through `pairgen sample`,
// plus the VAE, fp16 and .npy pieces, and every bad input a user can give the sample verb.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import onnxProto from 'onnx-proto';
import sharp from 'sharp';
import { DEFAULT_RUNTIME } from '../../src/onnx/session.ts';
import { loadDiffusersModel } from '../../src/teacher/model.ts';
import { encodeNpy, readNpy, writeNpy } from '../../src/teacher/npy.ts';
import { OnnxModel } from '../../src/onnx/model.ts';
import { decode, encodeMean } from '../../src/teacher/vae.ts';
import { sampleToFile } from '../../src/teacher/sample.ts';
import { parseSampleOptions, type SampleOptions } from '../../src/cli/sample.ts';
import { UserError } from '../../src/errors.ts';

import { FIXTURES as FIX, tinySdExternal } from '../helpers/fixtures.ts';
const BIN = fileURLToPath(new URL('../../bin/pairgen.js', import.meta.url));
const refs = JSON.parse(readFileSync(join(FIX, 'refs/pipelines.json'), 'utf8'));
const tmp = mkdtempSync(join(tmpdir(), 'pairgen-teacher-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

interface Arr {
  shape: number[];
  data: number[];
}
const f32 = (a: Arr) => Float32Array.from(a.data);

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function pairgen(...args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
}

let n = 0;
function npyFile(a: Arr | { shape: number[]; data: Float32Array }): string {
  const path = join(tmp, `in-${n++}.npy`);
  writeNpy(path, { shape: a.shape, data: Float32Array.from(a.data) });
  return path;
}

/** `pairgen sample` flags → the options object commander hands to the verb. */
function options(args: string[], out: string): SampleOptions {
  const o: Record<string, string> = { out };
  for (let i = 0; i < args.length; i += 2) o[args[i].slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())] = args[i + 1];
  return o as unknown as SampleOptions;
}

/** `pairgen sample ... --out X.npy` in this process (the CLI's own code path); returns the image. */
async function sample(args: string[]): Promise<Float32Array> {
  const out = join(tmp, `out-${n++}.npy`);
  await sampleToFile(parseSampleOptions(options(args, out)));
  return readNpy(out).data;
}

function schedulerFile(config: Record<string, unknown>): string {
  const path = join(tmp, `sched-${n++}.json`);
  writeFileSync(path, JSON.stringify(config));
  return path;
}

test('.npy files round-trip and bad ones are user errors', () => {
  const a = { shape: [2, 3, 4], data: Float32Array.from({ length: 24 }, (_, i) => i / 7 - 1) };
  const path = npyFile(a);
  const back = readNpy(path);
  assert.deepEqual(back.shape, a.shape);
  assert.deepEqual(back.data, a.data);
  // The header is a multiple of 64 bytes long, as numpy writes it.
  const bytes = encodeNpy(a);
  assert.equal((bytes.readUInt16LE(8) + 10) % 64, 0);
  const bad = join(tmp, 'bad.npy');
  writeFileSync(bad, Buffer.from(bytes.toString('latin1').replace('<f4', '<f8'), 'latin1'));
  assert.throws(() => readNpy(bad), /dtype is <f8, expected <f4/);
  writeFileSync(bad, 'not numpy');
  assert.throws(() => readNpy(bad), /not a float32 \.npy file/);
});

test('VAE: encoder parameters, mean and decode match diffusers', async () => {
  const sd = refs.sd;
  const model = await loadDiffusersModel(join(FIX, 'tiny-sd'), DEFAULT_RUNTIME, { vaeEncoder: true, vaeDecoder: true });
  try {
    const image = { data: f32(sd.vae_image), dims: sd.vae_image.shape };
    const mean = await encodeMean(model, image);
    const params = sd.vae_encoder_parameters;
    assert.deepEqual(mean.dims, [1, 4, 32, 32]);
    assert.ok(maxAbs(mean.data, params.data.slice(0, 4096)) < 1e-4);
    // decode() takes scaled latents and returns diffusers' postprocessed [0, 1] image.
    const scaled = { data: mean.data.map((v) => v * model.vae.scalingFactor), dims: mean.dims };
    const out = await decode(model, scaled);
    const expected = (sd.vae_decoded.data as number[]).map((v) => Math.min(1, Math.max(0, v / 2 + 0.5)));
    assert.ok(maxAbs(out.data, expected) < 1e-4);
  } finally {
    await model.release();
  }
});

test('fp16 UNet: one call within float16 tolerance of diffusers', async () => {
  const f = refs.fp16_unet;
  const unet = await OnnxModel.open(join(FIX, f.model), DEFAULT_RUNTIME);
  try {
    assert.equal(unet.input('sample').type, 'float16');
    const [out] = await unet.run(
      { sample: { data: f32(f.input_sample), dims: f.input_sample.shape }, timestep: { data: [f.timestep], dims: [1] }, encoder_hidden_states: { data: f32(f.input_ehs), dims: f.input_ehs.shape } },
      ['out_sample'],
    );
    // A few float16 ulps: 2^-10 relative, on values of order 1.
    for (let i = 0; i < out.data.length; i++) assert.ok(Math.abs(out.data[i] - f.output.data[i]) <= 4e-3 * Math.max(1, Math.abs(f.output.data[i])), `element ${i}`);
  } finally {
    await unet.release();
  }
});

for (const [i, c] of (refs.sd.cases as Record<string, any>[]).entries()) {
  test(`pairgen sample reproduces diffusers: tiny-sd case ${i} (${c.scheduler}, ${c.steps} steps, negative ${JSON.stringify(c.negative_prompt)})`, async () => {
    const args = ['--model', join(FIX, 'tiny-sd'), '--prompt', c.prompt, '--scheduler-config', schedulerFile(c.scheduler_config), '--steps', String(c.steps)];
    args.push('--guidance', String(c.guidance_scale), '--height', String(c.height), '--width', String(c.width), '--latents', npyFile(refs.sd.latents));
    if (c.negative_prompt !== null) args.push('--negative-prompt', c.negative_prompt);
    const image = await sample(args);
    assert.ok(maxAbs(image, c.image.data) < 2e-3, `max abs ${maxAbs(image, c.image.data)}`);
  });
}

test('pairgen sample reproduces diffusers: InstructPix2Pix (tiny-sd-ip2p)', async () => {
  const ip = refs.ip2p;
  const c = ip.cases[0];
  // The source image as float HWC in [0, 1], from the recorded NCHW.
  const [, ch, h, w] = ip.source_image_0_1_nchw.shape;
  const hwc = new Float32Array(h * w * ch);
  for (let p = 0; p < h * w; p++) for (let k = 0; k < ch; k++) hwc[p * ch + k] = ip.source_image_0_1_nchw.data[k * h * w + p];
  const args = ['--model', join(FIX, ip.model), '--prompt', c.prompt, '--image', npyFile({ shape: [h, w, ch], data: hwc }), '--scheduler-config', schedulerFile(c.scheduler_config)];
  args.push('--steps', String(c.steps), '--guidance', String(c.guidance_scale), '--image-guidance', String(c.image_guidance_scale), '--height', String(h), '--width', String(w), '--latents', npyFile(ip.latents));
  const image = await sample(args);
  assert.ok(maxAbs(image, c.image.data) < 2e-3, `max abs ${maxAbs(image, c.image.data)}`);
});

test('pairgen sample reproduces diffusers: SDXL (tiny-sdxl, zero negative embeddings)', async () => {
  const x = refs.sdxl;
  const c = x.cases[0];
  assert.deepEqual([c.original_size, c.crops_coords_top_left, c.target_size], [[c.height, c.width], [0, 0], [c.height, c.width]]);
  const args = ['--model', join(FIX, x.model), '--prompt', c.prompt, '--scheduler-config', schedulerFile(c.scheduler_config), '--steps', String(c.steps)];
  args.push('--guidance', String(c.guidance_scale), '--height', String(c.height), '--width', String(c.width), '--latents', npyFile(x.latents));
  const image = await sample(args);
  assert.ok(maxAbs(image, c.image.data) < 2e-3, `max abs ${maxAbs(image, c.image.data)}`);
});

test('tiny-sd-external (weights in model.onnx_data) loads and renders like tiny-sd', async () => {
  const c = refs.sd.cases[0];
  const common = ['--prompt', c.prompt, '--negative-prompt', c.negative_prompt, '--scheduler-config', schedulerFile(c.scheduler_config), '--steps', '2', '--guidance', '7.5', '--height', '64', '--width', '64', '--seed', '3'];
  const ext = await sample(['--model', tinySdExternal(), ...common]);
  const own = await sample(['--model', join(FIX, 'tiny-sd'), ...common]);
  assert.ok(maxAbs(ext, own) < 1e-5);
});

test('the same seed gives the same bytes; --scheduler picks a class over the model config', async () => {
  const args = ['--model', join(FIX, 'tiny-sd'), '--prompt', 'a woman with red hair', '--scheduler', 'EulerAncestralDiscreteScheduler', '--steps', '3', '--guidance', '4', '--height', '64', '--width', '64', '--seed', '42'];
  const a = await sample(args);
  const b = await sample(args);
  assert.deepEqual(a, b);
  const c = await sample([...args.slice(0, -1), '43']);
  assert.ok(maxAbs(a, c) > 1e-3, 'another seed gives another image');
});

test('img2img: --image with --strength starts from the source image', async () => {
  const src = join(tmp, 'portrait.png');
  const raw = Buffer.alloc(64 * 64 * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 37) % 251;
  await sharp(raw, { raw: { width: 64, height: 64, channels: 3 } }).png().toFile(src);
  const base = ['--model', join(FIX, 'tiny-sd'), '--prompt', 'make her smile', '--image', src, '--steps', '10', '--guidance', '5', '--height', '64', '--width', '64', '--seed', '1'];
  const low = await sample([...base, '--strength', '0.3']);
  const high = await sample([...base, '--strength', '1']);
  assert.equal(low.length, 64 * 64 * 3);
  assert.ok(maxAbs(low, high) > 1e-3);
});

test('through the CLI: a prompt longer than the model length is truncated with a warning; png output', () => {
  const long = Array.from({ length: 120 }, () => 'smiling').join(' ');
  const png = join(tmp, 'long.png');
  const r = pairgen('sample', '--model', join(FIX, 'tiny-sd'), '--prompt', long, '--steps', '1', '--guidance', '1', '--height', '64', '--width', '64', '--out', png);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /warn.*truncated/);
  assert.equal(readFileSync(png).subarray(1, 4).toString(), 'PNG');
});

test('through the CLI: tiny-sd case 0 (--negative-prompt "", .npy in and out) matches diffusers', () => {
  const c = refs.sd.cases[0];
  const out = join(tmp, 'cli-case0.npy');
  const r = pairgen('sample', '--model', join(FIX, 'tiny-sd'), '--prompt', c.prompt, '--negative-prompt', c.negative_prompt, '--scheduler-config', schedulerFile(c.scheduler_config),
    '--steps', String(c.steps), '--guidance', String(c.guidance_scale), '--height', '64', '--width', '64', '--latents', npyFile(refs.sd.latents), '--out', out);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(maxAbs(readNpy(out).data, c.image.data) < 2e-3);
});

test('through the CLI: a user error is one line on stderr and exit 2', () => {
  const out = join(tmp, 'never.png');
  const r = pairgen('sample', '--model', join(tmp, 'nowhere'), '--prompt', 'x', '--steps', '1', '--guidance', '1', '--height', '64', '--width', '64', '--out', out);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /lacks model_index\.json/);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line, no stack: ${r.stderr}`);
  assert.equal(existsSync(out), false);
});

async function expectUserError(args: string[], pattern: RegExp, out = join(tmp, `never-${n++}.png`)): Promise<void> {
  await assert.rejects(async () => sampleToFile(parseSampleOptions(options(args, out))), (e: unknown) => {
    assert.ok(e instanceof UserError, `a UserError, got ${(e as Error).stack}`);
    assert.match(e.message, pattern);
    return true;
  });
  assert.equal(existsSync(out), false, 'nothing written');
}

const basic = ['--prompt', 'a face', '--steps', '2', '--guidance', '3', '--height', '64', '--width', '64'];

test('bad input: a model folder missing a file names it and lists what was found', async () => {
  const dir = join(tmp, 'no-unet');
  cpSync(join(FIX, 'tiny-sd'), dir, { recursive: true });
  rmSync(join(dir, 'unet/model.onnx'));
  await expectUserError(['--model', dir, ...basic], /lacks unet\/model\.onnx \(found in .*unet: config\.json\)/);
  await expectUserError(['--model', join(tmp, 'nowhere'), ...basic], /lacks model_index\.json/);
});

test('bad input: an ONNX UNet with a wrong input name says what it has', async () => {
  const dir = join(tmp, 'renamed');
  cpSync(join(FIX, 'tiny-sd'), dir, { recursive: true });
  const { onnx } = onnxProto;
  const path = join(dir, 'unet/model.onnx');
  const m = onnx.ModelProto.decode(readFileSync(path));
  for (const i of m.graph!.input!) if (i.name === 'sample') i.name = 'latent';
  for (const node of m.graph!.node!) node.input = node.input!.map((x) => (x === 'sample' ? 'latent' : x));
  rmSync(path);
  writeFileSync(path, onnx.ModelProto.encode(m).finish());
  await expectUserError(['--model', dir, ...basic], /unet\/model\.onnx lacks input\(s\) sample \(it has: latent, timestep, encoder_hidden_states\)/);
});

test('bad input: scheduler, numbers, latents, images, output', async () => {
  const model = ['--model', join(FIX, 'tiny-sd')];
  await expectUserError([...model, ...basic, '--scheduler', 'FancyScheduler'], /unknown scheduler class "FancyScheduler"; known: .*DDIMScheduler/);
  await expectUserError([...model, ...basic, '--scheduler-config', join(tmp, 'none.json')], /cannot read scheduler config/);
  await expectUserError([...model, ...basic.slice(0, -1), '65'], /multiples of the VAE scale factor 2/);
  await expectUserError([...model, '--prompt', 'x', '--steps', 'many', '--guidance', '3', '--height', '64', '--width', '64'], /--steps: expected an integer >= 1, got "many"/);
  await expectUserError([...model, ...basic, '--latents', npyFile({ shape: [1, 4, 8, 8], data: new Float32Array(256) })], /--latents: .* has shape \(1, 4, 8, 8\); expected \(1, 4, 32, 32\)/);
  const corrupt = join(tmp, 'corrupt.png');
  writeFileSync(corrupt, Buffer.from('\x89PNG\r\n\x1a\n this is not really a png'));
  await expectUserError([...model, ...basic, '--image', corrupt, '--strength', '0.5'], /cannot read image .*corrupt\.png/);
  await expectUserError([...model, ...basic, '--strength', '0.5'], /--strength needs --image/);
  await expectUserError(['--model', join(FIX, 'tiny-sd-ip2p'), ...basic], /InstructPix2Pix model; it edits a source image/);
  await expectUserError([...model, ...basic], /--out: expected a \.png or \.npy/, join(tmp, 'x.jpg'));
});
