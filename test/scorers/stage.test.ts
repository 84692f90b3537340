// The scorer stage's plumbing and its closed-form measures: config checking, only enabled scorers open
// (or even convert) a model, the merged names, and the formulas of edit, quality and duplicates on images
// whose answer is known by construction (flat colours, seeded noise of a known σ, a re-encoded photo).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { Ajv } from 'ajv';
import { DEFAULT_RUNTIME } from '../../src/onnx/session.ts';
import { packagePath } from '../../src/onnx/tfjs/cache.ts';
import { decodeImage } from '../../src/image/index.ts';
import { isUserError } from '../../src/errors.ts';
import {
  createScorers, dHash, DEFAULT_SCORERS, hammingDistance, imageQuality, parseScorersConfig, scorePair, scorerOf, scorersConfigSchema, SCORE_NAMES, SCORER_NAMES, TEXT_NAMES,
  type PairInput,
} from '../../src/scorers/index.ts';
import { deltaE, toLab } from '../../src/scorers/pixels.ts';
import type { RgbImage } from '../../src/types.ts';
import { mulberry32 } from '../helpers/prng.ts';

const cacheDir = await mkdtemp(join(tmpdir(), 'pairgen-scorers-'));
test.after(() => rm(cacheDir, { recursive: true, force: true }));

const photo = await decodeImage(packagePath('@vladmandic/face-api', 'demo/sample1.jpg'));

function flat(width: number, height: number, rgb: [number, number, number]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(rgb, 3 * i);
  return { width, height, data };
}

/** Seeded Gaussian noise of standard deviation sigma on a flat grey (Box–Muller), rounded to 8 bits. */
function noisyGrey(width: number, height: number, grey: number, sigma: number, seed: number): RgbImage {
  const random = mulberry32(seed);
  const img = flat(width, height, [0, 0, 0]);
  for (let i = 0; i < width * height; i++) {
    const n = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    img.data.fill(Math.max(0, Math.min(255, Math.round(grey + sigma * n))), 3 * i, 3 * i + 3);
  }
  return img;
}

const pair = (source: RgbImage, edited: RgbImage): PairInput => ({ source, edited, faces: { sourceFace: null, editedFace: null }, instruction: 'make it brighter', category: 'light' });

test('the scorers section: defaults, and unknown, repeated or malformed names are user errors naming the key', () => {
  assert.deepEqual(parseScorersConfig(undefined), DEFAULT_SCORERS);
  assert.deepEqual(DEFAULT_SCORERS.enabled, SCORER_NAMES.filter((n) => n !== 'clip'), 'every scorer whose model ships with pairgen');
  assert.deepEqual(parseScorersConfig({ enabled: ['clip'], clip_model: '/m' }), { enabled: ['clip'], clip_model: '/m' });
  assert.deepEqual(parseScorersConfig({ enabled: ['edit', 'pose'] }), { enabled: ['edit', 'pose'] });
  const cases: [unknown, RegExp][] = [
    [{ enabled: ['edit', 'dino'] }, /^scorers\.enabled: unknown scorer dino \(known: pose, expression/],
    [{ enabled: ['edit', 'clip'] }, /^scorers\.clip_model: required when clip is enabled/],
    [{ enabled: ['edit', 'edit'] }, /^scorers\.enabled: edit is listed twice/],
    [{ enabled: 'edit' }, /^scorers\.enabled: expected a list/],
    [{ enable: ['edit'] }, /^scorers: unknown key enable/],
    [['edit'], /^scorers: expected an object/],
  ];
  for (const [value, message] of cases) assert.throws(() => parseScorersConfig(value), (e) => isUserError(e) && message.test(e.message), JSON.stringify(value));
  assert.equal(scorerOf('pose.roll_delta'), 'pose');
  assert.equal(scorerOf('expression.happy_gain'), 'expression');
  assert.equal(scorerOf('duplicates.source_dhash'), 'duplicates');
  assert.equal(scorerOf('pose.nose_length'), null);
  const all = SCORER_NAMES.flatMap((s) => [...SCORE_NAMES[s], ...TEXT_NAMES[s]]);
  assert.equal(new Set(all).size, all.length, 'no name is returned by two scorers');
  assert.ok(all.every((n) => /^[a-z]+\.[a-z_]+$/.test(n)), 'names are <scorer>.<snake_case>, usable as column names');
});

test('closed-form scorers open no session and convert no model; an enabled model scorer converts only its own', async () => {
  const closed = await createScorers({ enabled: ['edit', 'quality', 'age', 'duplicates'] }, DEFAULT_RUNTIME, { cacheDir });
  assert.deepEqual(closed.models, []);
  assert.equal(closed.info.modelDigest, '');
  assert.deepEqual(await readdir(cacheDir), []);
  const scored = await scorePair(closed, pair(photo, photo));
  assert.deepEqual(Object.keys(scored.scores), [...SCORE_NAMES.edit, ...SCORE_NAMES.quality, ...SCORE_NAMES.age]);
  assert.deepEqual(Object.keys(scored.texts), ['duplicates.source_dhash']);
  assert.deepEqual(Object.keys(scored.seconds), ['edit', 'quality', 'age', 'duplicates']);
  await closed.close();

  const one = await createScorers({ enabled: ['expression'] }, DEFAULT_RUNTIME, { cacheDir });
  assert.deepEqual(one.models, [join(cacheDir, 'emotion.onnx')]);
  assert.deepEqual((await readdir(cacheDir)).sort(), ['emotion.onnx', 'emotion.onnx.json']);
  assert.match(one.info.modelDigest, /^[0-9a-f]{64}$/);
  // No face on either side: every expression number is null, none is missing.
  const none = await scorePair(one, pair(photo, photo));
  assert.deepEqual(Object.entries(none.scores), SCORE_NAMES.expression.map((n) => [n, null]));
  await one.close();
});

test('CIELAB and ΔE: white is L* 100, black 0, mid grey neutral; black vs white is ΔE 100', () => {
  const lab = toLab([255, 255, 255, 0, 0, 0, 119, 119, 119], 3);
  assert.ok(Math.abs(lab[0] - 100) < 1e-3 && Math.abs(lab[1]) < 1e-2 && Math.abs(lab[2]) < 1e-2, `white ${lab.slice(0, 3)}`);
  assert.deepEqual([...lab.slice(3, 6)].map((v) => Math.abs(v) < 1e-6), [true, true, true]);
  assert.ok(Math.abs(lab[6] - 50) < 0.5 && Math.abs(lab[7]) < 1e-2, `grey ${lab.slice(6)}`);
  assert.ok(Math.abs(deltaE(lab.slice(0, 3), lab.slice(3, 6))[0] - 100) < 1e-3);
});

test('edit: 0 for an image and itself, the ΔE/100 of a flat colour change, and a local edit counts only its area', async () => {
  const edit = await createScorers({ enabled: ['edit'] }, DEFAULT_RUNTIME, { cacheDir });
  const same = await scorePair(edit, pair(photo, photo));
  assert.deepEqual(same.scores, { 'edit.magnitude': 0, 'edit.changed_fraction': 0, 'edit.face_magnitude': null });

  const black = flat(320, 200, [0, 0, 0]);
  const whole = await scorePair(edit, pair(black, flat(640, 400, [255, 255, 255])));
  assert.ok(Math.abs(whole.scores['edit.magnitude']! - 1) < 1e-3, `black → white: ${whole.scores['edit.magnitude']}`);
  assert.equal(whole.scores['edit.changed_fraction'], 1);

  // A white square over the left quarter of a black image: about a quarter changed, by ΔE 100.
  const quarter = flat(320, 200, [0, 0, 0]);
  for (let y = 0; y < 200; y++) quarter.data.fill(255, y * 320 * 3, (y * 320 + 80) * 3);
  const local = await scorePair(edit, pair(black, quarter));
  assert.ok(Math.abs(local.scores['edit.changed_fraction']! - 0.25) < 0.02, `${local.scores['edit.changed_fraction']}`);
  assert.ok(Math.abs(local.scores['edit.magnitude']! - 0.25) < 0.02, `${local.scores['edit.magnitude']}`);
  await edit.close();
});

test('quality: Immerkær noise recovers a known σ, noise has Laplacian variance 20σ², a flat image scores 0, clipping counts pixels', () => {
  for (const sigma of [2, 5, 10]) {
    const q = imageQuality(noisyGrey(400, 300, 128, sigma, sigma));
    assert.ok(Math.abs(q.noise - sigma) < 0.1 * sigma, `σ ${sigma}: estimated ${q.noise}`);
    // The Laplacian of white noise has variance 20σ² (weights 4, −1 ×4).
    assert.ok(Math.abs(q.sharpness / (20 * sigma * sigma) - 1) < 0.1, `σ ${sigma}: Laplacian variance ${q.sharpness}`);
  }
  assert.deepEqual(imageQuality(flat(50, 40, [90, 90, 90])), { sharpness: 0, noise: 0, clipped: 0 });
  const half = flat(100, 100, [255, 255, 255]);
  half.data.fill(128, 0, 100 * 30 * 3);
  half.data.fill(0, 100 * 30 * 3, 100 * 40 * 3);
  assert.equal(imageQuality(half).clipped, 0.7); // 60% white + 10% black
});

test('dHash: 16 hex digits, stable under re-encoding and resizing, far apart for different photos', async () => {
  const h = dHash(photo);
  assert.match(h, /^[0-9a-f]{16}$/);
  assert.equal(dHash(photo), h);
  const reencoded = await sharp(photo.data, { raw: { width: photo.width, height: photo.height, channels: 3 } }).resize(960).jpeg({ quality: 70 }).raw().toBuffer({ resolveWithObject: true });
  const copy = dHash({ width: reencoded.info.width, height: reencoded.info.height, data: new Uint8Array(reencoded.data) });
  assert.ok(hammingDistance(h, copy) <= 4, `re-encoded at half size: ${hammingDistance(h, copy)} bits`);
  for (const i of [2, 3, 4]) {
    const other = dHash(await decodeImage(packagePath('@vladmandic/face-api', `demo/sample${i}.jpg`)));
    assert.ok(hammingDistance(h, other) >= 16, `sample1 vs sample${i}: ${hammingDistance(h, other)} bits`);
  }
  assert.equal(hammingDistance('00ff', '0f0f'), 8);
});

test('the section schema accepts what parseScorersConfig accepts and fills the same default', () => {
  const validate = new Ajv({ useDefaults: true, strict: false }).compile(scorersConfigSchema);
  const empty: Record<string, unknown> = {};
  assert.ok(validate(empty));
  assert.deepEqual(empty, DEFAULT_SCORERS);
  assert.ok(validate({ enabled: ['edit', 'pose'] }));
  assert.ok(validate({ enabled: ['clip'], clip_model: 'clip-folder' }));
  for (const bad of [{ enabled: ['clip'] }, { enabled: ['dino'] }, { enabled: ['edit', 'edit'] }, { enable: [] }]) assert.equal(validate(bad), false, JSON.stringify(bad));
});
