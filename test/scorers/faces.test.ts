// Every scorer on real faces: portrait crops cut around the faces of @vladmandic/face-api's demo photos,
// the faces found and described by the identity stage (createIdentityScorer, as the worker will pass
// them), and edits made here with sharp whose effect is known: none, a 20° turn, a mirror, a blur, a
// change confined to the face or to the background, an image with no face. The measured values are
// printed as test diagnostics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp, { type Sharp } from 'sharp';
import { DEFAULT_RUNTIME } from '../../src/onnx/session.ts';
import { packagePath } from '../../src/onnx/tfjs/cache.ts';
import { DEFAULT_IDENTITY } from '../../src/identity/config.ts';
import { createIdentityScorer } from '../../src/identity/index.ts';
import { openDetector } from '../../src/identity/models.ts';
import { decodeImage } from '../../src/image/index.ts';
import { createScorers, DEFAULT_SCORERS, scorePair, SCORE_NAMES, type PairScores } from '../../src/scorers/index.ts';
import { EMOTION_LABELS, NSFW_LABELS } from '../../src/scorers/models.ts';
import type { CandidateSpec, RgbImage } from '../../src/types.ts';

const SIZE = 384;
const spec: CandidateSpec = { pairId: 'p', index: 0, seed: 1, promptId: 'x', sampleIndex: 0, category: 'portrait', sourcePrompt: '', instruction: '', targetPrompt: '', identityThreshold: null, attributes: {} };

const raw = async (s: Sharp): Promise<RgbImage> => {
  const { data, info } = await s.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data) };
};
const image = (img: RgbImage) => sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });

/**
 * Square portraits: 2.5× the face box around each of the five faces of demo photo 5 (a group of friends),
 * resized to 384 px, keyed "sample5#0" in detector order. #4 looks neutral, the others smile.
 */
const portraits = await (async () => {
  const detector = await openDetector(DEFAULT_IDENTITY, DEFAULT_RUNTIME);
  const out = new Map<string, RgbImage>();
  for (const n of [5]) {
    const photo = await decodeImage(packagePath('@vladmandic/face-api', `demo/sample${n}.jpg`));
    for (const [k, { box: [x1, y1, x2, y2] }] of (await detector.detect(photo)).entries()) {
      const side = Math.round(2.5 * Math.max(x2 - x1, y2 - y1));
      const left = Math.round((x1 + x2 - side) / 2), top = Math.round((y1 + y2 - side) / 2);
      if (left < 0 || top < 0 || left + side > photo.width || top + side > photo.height) continue;
      out.set(`sample${n}#${k}`, await raw(image(photo).extract({ left, top, width: side, height: side }).resize(SIZE, SIZE)));
    }
  }
  await detector.close();
  return out;
})();

const identity = await createIdentityScorer(DEFAULT_IDENTITY, DEFAULT_RUNTIME);
const scorers = await createScorers(DEFAULT_SCORERS, DEFAULT_RUNTIME);
test.after(async () => {
  await scorers.close();
  await identity.close();
});

async function score(source: RgbImage, edited: RgbImage): Promise<PairScores & { faces: Awaited<ReturnType<typeof identity.score>> }> {
  const faces = await identity.score(source, edited, spec);
  return { ...(await scorePair(scorers, { source, edited, faces, instruction: 'keep everything', category: 'portrait' })), faces };
}

const portrait = (key: string) => {
  const p = portraits.get(key);
  assert.ok(p, `no portrait ${key} (have ${[...portraits.keys()].join(', ')})`);
  return p;
};
const fmt = (v: number | null | undefined) => (v === null || v === undefined ? 'null' : v.toFixed(3));

test('a portrait and itself: no change anywhere, both sides read the same, every score is there', async (t) => {
  assert.equal(portraits.size, 5, `portraits: ${[...portraits.keys()]}`);
  const p = portrait('sample5#0');
  const r = await score(p, p);
  const s = r.scores;
  assert.deepEqual(Object.keys(s).sort(), DEFAULT_SCORERS.enabled.flatMap((n) => SCORE_NAMES[n]).sort());
  assert.deepEqual(Object.keys(s).filter((n) => s[n] === null), [], 'every score measured');
  for (const n of ['edit.magnitude', 'edit.changed_fraction', 'edit.face_magnitude', 'background.change', 'pose.yaw_delta', 'pose.pitch_delta', 'pose.roll_delta', 'pose.landmark_distance', 'age.delta']) assert.equal(s[n], 0, n);
  for (const l of EMOTION_LABELS) assert.equal(s[`expression.${l}_gain`], 0, l);
  for (const n of Object.keys(s).filter((k) => k.includes('.source_'))) assert.equal(s[n], s[n.replace('.source_', '.edited_')], n);
  assert.equal(s['quality.sharpness_ratio'], 1);
  assert.equal(s['age.source'], r.faces.sourceAge);
  assert.ok(s['age.source']! > 15 && s['age.source']! < 60, `age ${s['age.source']}`);
  assert.ok(s['pose.source_face']! > 0.9, 'Face Mesh sees a face');
  const sum = (side: string, labels: readonly string[], scorer: string) => labels.reduce((a, l) => a + s[`${scorer}.${side}_${l}`]!, 0);
  assert.ok(Math.abs(sum('source', EMOTION_LABELS, 'expression') - 1) < 1e-4 && Math.abs(sum('source', NSFW_LABELS, 'safety') - 1) < 1e-4);
  assert.ok(s['background.fraction']! > 0.05 && s['background.fraction']! < 0.95, `background ${s['background.fraction']}`);
  assert.match(r.texts['duplicates.source_dhash']!, /^[0-9a-f]{16}$/);
  t.diagnostic(`sample5#0: yaw ${fmt(s['pose.source_yaw'])} pitch ${fmt(s['pose.source_pitch'])} roll ${fmt(s['pose.source_roll'])} age ${fmt(s['age.source'])} happy ${fmt(s['expression.source_happy'])} background ${fmt(s['background.fraction'])}`);
  t.diagnostic(`seconds per scorer: ${JSON.stringify(Object.fromEntries(Object.entries(r.seconds).map(([k, v]) => [k, Number(v!.toFixed(4))])))}`);
});

test('a portrait turned 20° clockwise: roll delta 20° ± 1.5° on every face, yaw and pitch kept, landmarks kept', async (t) => {
  const rolls: number[] = [];
  for (const [key, p] of portraits) {
    const r = await score(p, await raw(image(p).rotate(20, { background: '#000' })));
    const s = r.scores;
    t.diagnostic(`${key}: roll ${fmt(s['pose.source_roll'])} → ${fmt(s['pose.edited_roll'])}, delta ${fmt(s['pose.roll_delta'])}; yaw Δ ${fmt(s['pose.yaw_delta'])}, pitch Δ ${fmt(s['pose.pitch_delta'])}, landmarks ${fmt(s['pose.landmark_distance'])}; edit ${fmt(s['edit.magnitude'])}, face ${fmt(s['edit.face_magnitude'])}`);
    assert.ok(Math.abs(s['pose.roll_delta']! - 20) <= 1.5, `${key}: roll delta ${s['pose.roll_delta']}`);
    assert.ok(s['pose.edited_roll']! > s['pose.source_roll']!, `${key}: clockwise is positive roll`);
    assert.ok(s['pose.yaw_delta']! < 5 && s['pose.pitch_delta']! < 5, `${key}: yaw Δ ${s['pose.yaw_delta']}, pitch Δ ${s['pose.pitch_delta']}`);
    assert.ok(s['pose.landmark_distance']! < 0.05, `${key}: landmark distance ${s['pose.landmark_distance']}`);
    assert.ok(s['edit.face_magnitude']! < s['edit.magnitude']!, `${key}: the face itself changed less than the image`);
    rolls.push(s['pose.roll_delta']!);
  }
  t.diagnostic(`roll delta over ${rolls.length} faces: mean ${fmt(rolls.reduce((a, b) => a + b) / rolls.length)}, min ${fmt(Math.min(...rolls))}, max ${fmt(Math.max(...rolls))}`);
});

test('a mirrored portrait: yaw and roll change sign, pitch stays', async (t) => {
  for (const key of ['sample5#0', 'sample5#3', 'sample5#4']) {
    const p = portrait(key);
    const s = (await score(p, await raw(image(p).flop()))).scores;
    t.diagnostic(`${key}: yaw ${fmt(s['pose.source_yaw'])} → ${fmt(s['pose.edited_yaw'])}, roll ${fmt(s['pose.source_roll'])} → ${fmt(s['pose.edited_roll'])}, pitch ${fmt(s['pose.source_pitch'])} → ${fmt(s['pose.edited_pitch'])}`);
    assert.ok(Math.abs(s['pose.source_yaw']! + s['pose.edited_yaw']!) < 4, `${key}: yaw`);
    assert.ok(Math.abs(s['pose.source_roll']! + s['pose.edited_roll']!) < 4, `${key}: roll`);
    assert.ok(s['pose.pitch_delta']! < 5, `${key}: pitch`);
  }
});

test('a blurred copy: much lower sharpness and noise, a small edit, the same pose', async (t) => {
  const p = portrait('sample5#0');
  const s = (await score(p, await raw(image(p).blur(3)))).scores;
  t.diagnostic(`sharpness ${fmt(s['quality.source_sharpness'])} → ${fmt(s['quality.edited_sharpness'])}, noise ${fmt(s['quality.source_noise'])} → ${fmt(s['quality.edited_noise'])}, edit ${fmt(s['edit.magnitude'])}, roll Δ ${fmt(s['pose.roll_delta'])}`);
  assert.ok(s['quality.sharpness_ratio']! < 0.1, `sharpness ratio ${s['quality.sharpness_ratio']}`);
  assert.ok(s['quality.edited_noise']! < s['quality.source_noise']!);
  assert.ok(s['edit.magnitude']! > 0 && s['edit.magnitude']! < 0.1, `edit ${s['edit.magnitude']}`);
  assert.ok(s['pose.roll_delta']! < 3);
});

test('an edit confined to the face barely touches the background; one confined to the background shows there', async (t) => {
  const p = portrait('sample5#3');
  // The middle ninth (the face) blurred, or the top sixth (above the head) painted flat.
  const middle = await image(p).extract({ left: 128, top: 128, width: 128, height: 128 }).blur(3).raw().toBuffer();
  const face = await raw(image(p).composite([{ input: middle, raw: { width: 128, height: 128, channels: 3 }, left: 128, top: 128 }]));
  const band = { input: { create: { width: SIZE, height: 64, channels: 3 as const, background: '#3080ff' } }, left: 0, top: 0 };
  const backdrop = await raw(image(p).composite([band]));
  const f = (await score(p, face)).scores, b = (await score(p, backdrop)).scores;
  t.diagnostic(`face blurred: edit ${fmt(f['edit.magnitude'])}, face ${fmt(f['edit.face_magnitude'])}, background ${fmt(f['background.change'])}; top band painted: edit ${fmt(b['edit.magnitude'])}, face ${fmt(b['edit.face_magnitude'])}, background ${fmt(b['background.change'])}`);
  assert.ok(f['background.change']! < 0.5 * f['edit.magnitude']!, 'face edit: background nearly untouched');
  assert.ok(f['edit.face_magnitude']! > f['edit.magnitude']!, 'face edit: concentrated on the face');
  assert.ok(b['background.change']! > b['edit.magnitude']!, 'background edit: concentrated on the background');
  assert.ok(b['edit.face_magnitude']! < 0.5 * b['edit.magnitude']!, 'background edit: the face kept');
});

test('a neutral face and a smiling one (two different people of the same photo): happy gains, neutral loses', async (t) => {
  const r = await score(portrait('sample5#4'), portrait('sample5#3'));
  const s = r.scores;
  t.diagnostic(`happy ${fmt(s['expression.source_happy'])} → ${fmt(s['expression.edited_happy'])}, neutral ${fmt(s['expression.source_neutral'])} → ${fmt(s['expression.edited_neutral'])}; age ${fmt(s['age.source'])} → ${fmt(s['age.edited'])}; identity ${fmt(r.faces.similarity)}`);
  assert.ok(s['expression.happy_gain']! > 0.5, `happy gain ${s['expression.happy_gain']}`);
  assert.ok(s['expression.neutral_gain']! < -0.2, `neutral gain ${s['expression.neutral_gain']}`);
  assert.equal(s['expression.happy_gain'], s['expression.edited_happy']! - s['expression.source_happy']!);
  assert.equal(s['age.delta'], s['age.edited']! - s['age.source']!);
});

test('no face in the edited image: the face scores of that side and the deltas are null, the rest measured', async () => {
  const p = portrait('sample5#0');
  const r = await score(p, await raw(sharp({ create: { width: SIZE, height: SIZE, channels: 3, background: '#777' } })));
  const s = r.scores;
  assert.equal(r.faces.faceProblem, 'no_face_edited');
  const nulls = Object.keys(s).filter((n) => s[n] === null).sort();
  const faceScores = [...SCORE_NAMES.pose, ...SCORE_NAMES.expression, ...SCORE_NAMES.age, 'edit.face_magnitude'];
  const measuredOnSource = [...SCORE_NAMES.pose, ...SCORE_NAMES.expression].filter((n) => n.includes('.source_'));
  assert.deepEqual(nulls, faceScores.filter((n) => !measuredOnSource.includes(n)).sort());
  assert.equal(s['quality.edited_sharpness'], 0);
  assert.ok(s['edit.magnitude']! > 0.1);
});
