// The packaged models (BlazeFace + faceres, converted to ONNX) on @vladmandic/face-api's six demo
// photos read from node_modules, the CLI verbs, and bad images made here with sharp.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { DuckDBInstance } from '@duckdb/node-api';
import { DEFAULT_RUNTIME } from '../../src/onnx/session.ts';
import { DEFAULT_IDENTITY } from '../../src/identity/config.ts';
import { createIdentityScorer } from '../../src/identity/index.ts';
import { openDetector, openEmbedder } from '../../src/identity/models.ts';
import { decodeImage } from '../../src/image/index.ts';
import { calibrate, cropFaces, type FaceCrop } from '../../src/identity/calibrate.ts';
import { isUserError } from '../../src/errors.ts';
import type { CandidateSpec, FaceDetection, RgbImage } from '../../src/types.ts';

const run = promisify(execFile);
const root = new URL('../..', import.meta.url).pathname;
const DEMO = join(root, 'node_modules/@vladmandic/face-api/demo');
const samples = [1, 2, 3, 4, 5, 6].map((i) => join(DEMO, `sample${i}.jpg`));
const dir = mkdtempSync(join(tmpdir(), 'pairgen-faces-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

// The CLI verbs registered on a bare program (the full src/cli/main.ts imports every other stage).
const HARNESS = `import { Command, CommanderError } from 'commander';
import { registerFaces } from './src/cli/faces.ts';
import { registerIdentity } from './src/cli/identity.ts';
const p = new Command().name('pairgen').exitOverride();
registerFaces(p); registerIdentity(p);
try { await p.parseAsync(process.argv.slice(1), { from: 'user' }); }
catch (e) { if (e instanceof CommanderError) process.exitCode = e.exitCode === 0 ? 0 : 2; else throw e; }`;

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', HARNESS, ...args], { cwd: root, maxBuffer: 1 << 26 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const spec: CandidateSpec = { pairId: 'p', index: 0, seed: 1, promptId: 'x', sampleIndex: 0, category: 'portrait', sourcePrompt: '', instruction: '', targetPrompt: '', identityThreshold: null, attributes: {} };

/** Hand-checked face centres on the demo photos (pixels), to tell true faces from false positives. */
const FACES: [number, number][][] = [
  [[517, 499], [941, 559], [1568, 333]],
  [[1554, 293], [987, 361], [460, 293]],
  [[1188, 386], [692, 488], [1578, 456]],
  [[758, 211], [1084, 320], [324, 336], [1364, 290]],
  [[1521, 545], [471, 1046], [860, 244], [672, 553], [1206, 348]],
  [[353, 647], [1593, 432], [1267, 466], [784, 501]],
];

const inside = (f: FaceDetection, [x, y]: [number, number]) => f.box[0] < x && x < f.box[2] && f.box[1] < y && y < f.box[3];

test('detection: all 22 faces of the six demo photos, no false positives; a face-filling 512 portrait too', async () => {
  const detector = await openDetector(DEFAULT_IDENTITY, DEFAULT_RUNTIME);
  try {
    for (const [i, file] of samples.entries()) {
      const img = await decodeImage(file);
      const faces = await detector.detect(img);
      assert.equal(faces.length, FACES[i].length, `sample${i + 1}: ${faces.length} faces`);
      for (const c of FACES[i]) assert.equal(faces.filter((f) => inside(f, c)).length, 1, `sample${i + 1}: face at ${c} found once`);
      for (const f of faces) {
        const side = f.box[2] - f.box[0];
        assert.ok(side > 120 && side < 300, `sample${i + 1}: face size ${side}`);
        assert.equal(f.keypoints.length, 6);
        assert.ok(f.keypoints.slice(0, 4).every((k) => inside(f, k)), 'eyes, nose and mouth inside the box');
      }
    }
    // A face filling most of a 512×512 portrait.
    const [x, y] = FACES[0][0];
    const { data, info } = await sharp(samples[0]).extract({ left: x - 150, top: y - 150, width: 300, height: 300 }).resize(512, 512).raw().toBuffer({ resolveWithObject: true });
    const portrait = await detector.detect({ width: info.width, height: info.height, data: new Uint8Array(data) });
    assert.equal(portrait.length, 1);
    assert.ok(portrait[0].box[2] - portrait[0].box[0] > 250, `portrait face ${portrait[0].box}`);
  } finally {
    await detector.close();
  }
});

test('identification: rank-1 22/22 between each face crop and its augmented views; EER reported; deterministic', async () => {
  const detector = await openDetector(DEFAULT_IDENTITY, DEFAULT_RUNTIME);
  const embedder = await openEmbedder(DEFAULT_IDENTITY, DEFAULT_RUNTIME);
  try {
    const crops: FaceCrop[] = [];
    for (const [i, file] of samples.entries()) crops.push(...await cropFaces(`sample${i + 1}`, await decodeImage(file), detector, 32));
    assert.equal(crops.length, 22);
    const { report } = await calibrate(crops, detector, embedder, { minSize: 32, targetFar: 1e-3 });
    console.log('calibration on the demo faces:', JSON.stringify(report));
    assert.equal(report.faces, 22);
    assert.equal(report.missedViews, 0);
    assert.equal(report.rank1, 1, `rank-1 ${report.rank1}`);
    assert.ok(report.eer < 0.05, `EER ${report.eer}`);
    assert.ok(report.same.mean > report.different.mean + 0.3);
    // Same bytes in → same embedding bytes out.
    const again = await embedder.embed([embedder.align(crops[0].image, (await detector.detect(crops[0].image))[0])]);
    const first = await embedder.embed([embedder.align(crops[0].image, (await detector.detect(crops[0].image))[0])]);
    assert.deepEqual(Buffer.from(again[0].buffer), Buffer.from(first[0].buffer));
  } finally {
    await detector.close();
    await embedder.close();
  }
});

test('bad images: clear errors from the decoder, "no face" reject reasons from the scorer, never a crash', async () => {
  const jpeg = readFileSync(samples[0]);
  const files: Record<string, Uint8Array | string> = {
    'not-an-image.jpg': 'hello, not an image',
    'truncated.jpg': jpeg.subarray(0, Math.floor(jpeg.length / 3)),
    'one-pixel.png': await sharp({ create: { width: 1, height: 1, channels: 3, background: '#888' } }).png().toBuffer(),
    'no-face.png': await sharp({ create: { width: 640, height: 480, channels: 3, background: '#4a7' } }).png().toBuffer(),
    'cmyk.jpg': await sharp(samples[0]).resize(640).toColourspace('cmyk').jpeg().toBuffer(),
    '16bit.png': await sharp(samples[0]).resize(640).toColourspace('rgb16').png().toBuffer(),
    'alpha.png': await sharp(samples[0]).resize(640).ensureAlpha(0.5).png().toBuffer(),
  };
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
  for (const bad of ['not-an-image.jpg', 'truncated.jpg']) {
    await assert.rejects(decodeImage(join(dir, bad)), (e) => isUserError(e) && (e as Error).message.includes(bad), bad);
  }
  await assert.rejects(decodeImage(join(dir, 'missing.jpg')), /cannot read image .*missing\.jpg: no such file/);
  const scorer = await createIdentityScorer(DEFAULT_IDENTITY, DEFAULT_RUNTIME);
  try {
    const ref = await decodeImage(join(dir, 'cmyk.jpg'));
    assert.equal((await scorer.score(ref, await decodeImage(join(dir, 'one-pixel.png')), spec)).faceProblem, 'no_face_edited');
    assert.equal((await scorer.score(await decodeImage(join(dir, 'no-face.png')), ref, spec)).faceProblem, 'no_face_source');
    // CMYK, 16-bit and alpha decode to the same 8-bit sRGB faces.
    for (const name of ['16bit.png', 'alpha.png']) {
      const v = await scorer.score(ref, await decodeImage(join(dir, name)), spec);
      assert.equal(v.sourceFaces, 3, name);
      assert.equal(v.editedFaces, 3, name);
      assert.ok(v.faceProblem === null && v.similarity! > 0.9, `${name}: ${v.similarity}`);
    }
  } finally {
    await scorer.close();
  }
});

test('CLI: faces detect --json / --annotate, embed --json, compare, identity calibrate; bad input exits 2', async () => {
  const detect = await cli('faces', 'detect', '--json', samples[0], '--annotate', join(dir, 'ann.png'));
  assert.equal(detect.code, 0, detect.stderr);
  const d = JSON.parse(detect.stdout);
  assert.equal(d.images[0].file, samples[0]);
  assert.equal(d.images[0].faces.length, 3);
  assert.equal(d.images[0].faces[0].box.length, 4);
  assert.equal(d.images[0].faces[0].keypoints.length, 6);
  assert.equal((await sharp(join(dir, 'ann.png')).metadata()).width, 1920);

  writeFileSync(join(dir, 'blank.png'), await sharp({ create: { width: 320, height: 240, channels: 3, background: '#333' } }).png().toBuffer());
  const embed = await cli('faces', 'embed', '--json', samples[1], join(dir, 'blank.png'));
  assert.equal(embed.code, 0, embed.stderr);
  const e = JSON.parse(embed.stdout).images;
  assert.equal(e[0].faces, 3);
  assert.equal(e[0].embedding.length, 1024);
  assert.ok(Math.abs(e[0].embedding.reduce((s: number, v: number) => s + v * v, 0) - 1) < 1e-3);
  assert.deepEqual([e[1].faces, e[1].embedding], [0, null]);

  // A crop of one face against the whole photo (largest face is that person) vs another photo.
  const [x, y] = FACES[0][0];
  writeFileSync(join(dir, 'crop.png'), await sharp(samples[0]).extract({ left: x - 200, top: y - 200, width: 400, height: 400 }).png().toBuffer());
  const same = await cli('faces', 'compare', '--json', join(dir, 'crop.png'), join(dir, 'crop.png'), '--threshold', '0.7');
  assert.equal(same.code, 0, same.stderr);
  assert.equal(JSON.parse(same.stdout).same, true);
  const other = await cli('faces', 'compare', join(dir, 'crop.png'), samples[3]);
  assert.match(other.stdout, /similarity -?\d\.\d{4}\s+threshold 0\.65\s+→ different people/);

  const bad = await cli('faces', 'detect', join(dir, 'nope.jpg'));
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /cannot read image .*nope\.jpg: no such file/);
  assert.equal((await cli('faces', 'compare', samples[0], join(dir, 'blank.png'))).code, 2);
  assert.equal((await cli('faces', 'compare', samples[0], samples[1], '--threshold', '3')).code, 2);

  const calDir = join(dir, 'cal'); // 7 faces: a quick run of the whole verb
  mkdirSync(calDir);
  for (const i of [1, 4]) writeFileSync(join(calDir, `s${i}.jpg`), readFileSync(samples[i - 1]));
  const cal = await cli('identity', 'calibrate', calDir, '--json', '--out', join(dir, 'plot.png'), '--target-far', '0.01');
  assert.equal(cal.code, 0, cal.stderr);
  const r = JSON.parse(cal.stdout);
  assert.equal(r.faces, 7);
  assert.equal(r.samePairs, 35);
  assert.ok(r.tprAtFar.length === 2 && typeof r.eer === 'number' && r.targetFar === 0.01);
  assert.ok(existsSync(join(dir, 'plot.png')));
  assert.equal((await sharp(join(dir, 'plot.png')).metadata()).format, 'png');
  // A Parquet file with a Hugging Face image struct column, written by DuckDB.
  const db = await (await DuckDBInstance.create()).connect();
  const pq = join(dir, 'shard.parquet');
  await db.run(`COPY (SELECT {'bytes': content, 'path': filename} AS source_image FROM read_blob('${join(calDir, 's1.jpg')}')) TO '${pq}' (FORMAT parquet)`);
  db.closeSync();
  const fromParquet = await cli('identity', 'calibrate', pq, '--json');
  assert.equal(fromParquet.code, 0, fromParquet.stderr);
  assert.equal(JSON.parse(fromParquet.stdout).faces, 3);
  const empty = await cli('identity', 'calibrate', dir, '--target-far', '2');
  assert.equal(empty.code, 2);
});
