/**
 * `pairgen score` through the real CLI on a real face: a portrait cut from @vladmandic/face-api's demo
 * photo 5 (the scorer tests use the same photo), the same portrait turned 20° by sharp, and the portrait
 * against itself; bad inputs exit 2 with one line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { packagePath } from '../../src/onnx/tfjs/cache.ts';
import { DEFAULT_IDENTITY } from '../../src/identity/config.ts';
import { openDetector } from '../../src/identity/models.ts';
import { decodeImage } from '../../src/image/index.ts';
import { DEFAULT_RUNTIME } from '../../src/onnx/session.ts';
import { BIN, tempDir } from '../helpers/run-fixture.ts';

const run = promisify(execFile);
const dir = tempDir('pairgen-score-');
test.after(() => rmSync(dir, { recursive: true, force: true }));

// The first face of demo photo 5, 2.5× its box, 384 px (a box found once with the packaged detector).
const photo = packagePath('@vladmandic/face-api', 'demo/sample5.jpg');
const portrait = join(dir, 'portrait.png');
const turned = join(dir, 'turned.png');
{
  const img = await decodeImage(photo);
  const detector = await openDetector(DEFAULT_IDENTITY, DEFAULT_RUNTIME);
  const faces = await detector.detect(img);
  await detector.close();
  const [x1, y1, x2, y2] = faces[0].box;
  const side = Math.round(2.5 * Math.max(x2 - x1, y2 - y1));
  const left = Math.max(0, Math.round((x1 + x2 - side) / 2)), top = Math.max(0, Math.round((y1 + y2 - side) / 2));
  const crop = sharp(Buffer.from(img.data), { raw: { width: img.width, height: img.height, channels: 3 } })
    .extract({ left, top, width: Math.min(side, img.width - left), height: Math.min(side, img.height - top) }).resize(384, 384);
  writeFileSync(portrait, await crop.clone().png().toBuffer());
  writeFileSync(turned, await sharp(await crop.clone().png().toBuffer()).rotate(20, { background: '#000' }).png().toBuffer());
}

async function score(...args: string[]) {
  const { stdout } = await run(process.execPath, [BIN, 'score', ...args], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout);
}

test('score: a portrait and the same portrait turned 20° read a roll delta of about 20°, the same person', async () => {
  const r = await score(portrait, turned, '--json', '--instruction', 'turn the head');
  assert.ok(Math.abs(Math.abs(r.scores['pose.roll_delta']) - 20) <= 1.5, `roll delta ${r.scores['pose.roll_delta']}`);
  assert.equal(r.identity.face_problem, null);
  assert.ok(r.identity.similarity > 0.6, `similarity ${r.identity.similarity}`);
  assert.equal(r.verdict.accepted, true, JSON.stringify(r.verdict));
  assert.deepEqual(Object.keys(r.verdict.rules), ['not_edited', 'unsafe'], 'the built-in default rules of the enabled scorers');
});

test('score: a photo against itself changes nothing: edit magnitude 0, pose and expression deltas 0', async () => {
  const r = await score(portrait, portrait, '--json');
  assert.equal(r.scores['edit.magnitude'], 0);
  assert.equal(r.scores['pose.roll_delta'], 0);
  assert.equal(r.scores['expression.happy_gain'], 0);
  assert.ok(r.identity.similarity > 0.999, `similarity ${r.identity.similarity}`);
  assert.ok(/^[0-9a-f]{16}$/.test(r.texts['duplicates.source_dhash']), `hash ${r.texts['duplicates.source_dhash']}`);
  assert.equal(r.verdict.accepted, false);
  assert.equal(r.verdict.reason, 'not_edited', 'the same photo is not an edit under the default rules');
});

test('score --config: the config\'s scorers, rules and the category\'s own rules decide; the first failing rule is the reason', async () => {
  const config = join(dir, 'rules.yaml');
  const prompts = join(dir, 'prompts.yaml');
  writeFileSync(prompts, [
    'sources: ["a portrait of a person"]',
    'categories:',
    '  pose: { rules: { kept_pose: "pose.roll_delta <= 10" }, edits: [{ instructions: [turn the head], target: "a turned portrait" }] }',
    '  other: { edits: [{ instructions: [do something], target: "a portrait" }] }',
  ].join('\n'));
  writeFileSync(config, [
    `prompts: { set: ${prompts} }`,
    'teacher: { model: unused }',
    'scorers: { enabled: [pose, edit] }',
    'rules: { default: { changed: "edit.magnitude in [0.01, 0.9]" } }',
  ].join('\n'));
  const posed = await score(portrait, turned, '--json', '--config', config, '--category', 'pose');
  assert.deepEqual(Object.keys(posed.scores).map((k) => k.split('.')[0]).filter((v, i, a) => a.indexOf(v) === i), ['pose', 'edit']);
  assert.deepEqual(posed.verdict.rules, { changed: 'edit.magnitude in [0.01, 0.9]', kept_pose: 'pose.roll_delta <= 10' });
  assert.equal(posed.verdict.reason, 'kept_pose');
  const other = await score(portrait, turned, '--json', '--config', config, '--category', 'other');
  assert.equal(other.verdict.accepted, true, JSON.stringify(other.verdict));
  const same = await score(portrait, portrait, '--json', '--config', config, '--category', 'pose');
  assert.equal(same.verdict.reason, 'changed', 'rules are tried in order: the default before the category\'s');
});

test('score --scorers runs only the scorers named; the plain output has one line per number', async () => {
  const r = await score(portrait, turned, '--json', '--scorers', 'edit,quality');
  assert.ok(Object.keys(r.scores).length > 0);
  assert.ok(Object.keys(r.scores).every((k) => k.startsWith('edit.') || k.startsWith('quality.')), Object.keys(r.scores).join(', '));
  const { stdout } = await run(process.execPath, [BIN, 'score', portrait, portrait, '--scorers', 'edit'], { maxBuffer: 1 << 20 });
  assert.match(stdout, /^edit\.magnitude 0$/m);
  assert.match(stdout, /^verdict rejected \(not_edited\) at identity threshold [0-9.]+; rules: not_edited: edit\.magnitude >= 0\.02$/m);
});

test('score: bad inputs exit 2 with one line', async () => {
  const cases: [string[], RegExp][] = [
    [[portrait, turned, '--scorers', 'pose,colour'], /--scorers: unknown scorer "colour" \(known: pose, expression/],
    [[portrait, join(dir, 'missing.png')], /missing\.png/],
    [[portrait, turned, '--set', 'identity.threshold=0.5'], /--set needs --config/],
    [[portrait, turned, '--config', join(dir, 'rules.yaml'), '--category', 'hair'], /--category hair: the prompt set of .*rules\.yaml has no such category \(it has pose, other\)/],
    [[portrait, turned, '--config', join(dir, 'rules.yaml'), '--scorers', 'pose'], /rules\.yaml: rules\.default\.changed: edit\.magnitude needs the edit scorer, which is not in scorers\.enabled \(pose\)/],
  ];
  await Promise.all(cases.map(async ([args, expect]) => {
    const e = await run(process.execPath, [BIN, 'score', ...args]).then(() => null, (err) => err);
    assert.ok(e, `${args.join(' ')}: should fail`);
    assert.equal(e.code, 2, `${args.join(' ')}: exit ${e.code}\n${e.stderr}`);
    const lines = String(e.stderr).trim().split('\n');
    assert.equal(lines.length, 1, e.stderr);
    assert.match(lines[0], expect);
  }));
});
