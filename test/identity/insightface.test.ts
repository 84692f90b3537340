// The SCRFD / ArcFace code paths, alignment, NMS and the filter rules, on ONNX files of exactly the
// insightface signatures built here (their weights are not available): the SCRFD-signature graph
// computes its scores from the input so that a bright 32-px square decodes to a known box.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OnnxBuilder, float } from '../../src/onnx/builder.ts';
import { DEFAULT_RUNTIME } from '../../src/onnx/session.ts';
import { createIdentityScorer, identityModelFiles } from '../../src/identity/index.ts';
import { DEFAULT_IDENTITY, type IdentityConfig } from '../../src/identity/config.ts';
import { openScrfd } from '../../src/identity/detector.ts';
import { openArcface } from '../../src/identity/embedder.ts';
import { similarityTransform, applyAffine, warpAffine, ARCFACE_TEMPLATE_112 } from '../../src/identity/align.ts';
import { nonMaxSuppression } from '../../src/identity/nms.ts';
import { judgeCandidate, thresholdFor } from '../../src/candidates/verdict.ts';
import { isUserError } from '../../src/errors.ts';
import type { CandidateSpec, RgbImage } from '../../src/types.ts';
import { mulberry32 } from '../helpers/prng.ts';

const KPS = [[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]]; // in stride units from the anchor

/** SCRFD signature: input [1,3,h,w]; nine outputs score/bbox/kps for strides 8, 16, 32, two anchors per cell. */
function scrfdModel(): Uint8Array {
  const b = new OnnxBuilder({ opset: 17 });
  const x = b.input('input.1', 'float32', [1, 3, 'h', 'w']);
  const grey = b.op('ReduceMean', [x], { axes: [1], keepdims: 1 });
  const heads = [8, 16, 32].map((s) => {
    const pooled = b.op('AveragePool', [grey], { kernel_shape: [s, s], strides: [s, s] });
    // Only stride 32 answers: a cell whose mean brightness is high gets a score near 1.
    const gain = s === 32 ? 20 : 0;
    const logit = b.op('Add', [b.op('Mul', [pooled, b.constant(new Float32Array([gain]), [1])]), b.constant(new Float32Array([s === 32 ? 0 : -10]), [1])]);
    const cells = b.op('Reshape', [b.op('Transpose', [b.op('Sigmoid', [logit])], { perm: [0, 2, 3, 1] }), b.constant(new BigInt64Array([-1n, 1n]), [2])]);
    const score = b.op('Reshape', [b.op('Concat', [cells, cells], { axis: 1 }), b.constant(new BigInt64Array([-1n, 1n]), [2])]);
    const zero = b.op('Mul', [score, b.constant(new Float32Array([0]), [1])]);
    const bbox = b.op('Add', [zero, b.constant(new Float32Array([0, 0, 1, 1]), [1, 4])]);
    const kps = b.op('Add', [zero, b.constant(new Float32Array(KPS.flat()), [1, 10])]);
    return { s, score, bbox, kps };
  });
  for (const h of heads) b.output(b.op('Identity', [h.score], {}, `score_${h.s}`), 'float32', ['n', 1]);
  for (const h of heads) b.output(b.op('Identity', [h.bbox], {}, `bbox_${h.s}`), 'float32', ['n', 4]);
  for (const h of heads) b.output(b.op('Identity', [h.kps], {}, `kps_${h.s}`), 'float32', ['n', 10]);
  return b.toBytes();
}


/** ArcFace signature: [N,3,112,112] → [N,512]: a fixed random projection of the mean-removed, 8×8-pooled crop. */
function arcfaceModel(): Uint8Array {
  const b = new OnnxBuilder({ opset: 17 });
  const x = b.input('input.1', 'float32', ['N', 3, 112, 112]);
  const centred = b.op('Sub', [x, b.op('ReduceMean', [x], { axes: [1, 2, 3], keepdims: 1 })]);
  const flat = b.op('Flatten', [b.op('AveragePool', [centred], { kernel_shape: [8, 8], strides: [8, 8] })], { axis: 1 });
  const rand = mulberry32(7);
  const w = new Float32Array(588 * 512).map(() => rand() - 0.5);
  b.op('MatMul', [flat, b.constant(w, [588, 512], 'w')], {}, 'fc1');
  b.output('fc1', 'float32', ['N', 512]);
  return b.toBytes();
}

/** A black image with a textured bright 32×32 "face" whose top-left corner is at (x, y), scaled by `k`. */
function faceImage(size: number, faces: { x: number; y: number; seed: number }[], k = 1): RgbImage {
  const data = new Uint8Array(size * size * 3);
  for (const f of faces) {
    const rand = mulberry32(f.seed);
    const blocks = Array.from({ length: 16 }, () => 100 + rand() * 155); // 4×4 blocks of 8 px
    for (let y = 0; y < 32 * k; y++) for (let x = 0; x < 32 * k; x++) {
      const v = blocks[Math.floor(y / (8 * k)) * 4 + Math.floor(x / (8 * k))];
      data.fill(Math.round(v), ((f.y + y) * size + f.x + x) * 3, ((f.y + y) * size + f.x + x) * 3 + 3);
    }
  }
  return { width: size, height: size, data };
}

const dir = mkdtempSync(join(tmpdir(), 'pairgen-identity-'));
const scrfdPath = join(dir, 'scrfd.onnx');
const arcfacePath = join(dir, 'arcface.onnx');
writeFileSync(scrfdPath, scrfdModel());
writeFileSync(arcfacePath, arcfaceModel());
test.after(() => rmSync(dir, { recursive: true, force: true }));

const config = (over: Partial<IdentityConfig> = {}): IdentityConfig => ({
  ...DEFAULT_IDENTITY,
  threshold: 0.9,
  min_face_size: 8,
  detector: { ...DEFAULT_IDENTITY.detector, kind: 'scrfd', model: scrfdPath, input_size: 128 },
  embedder: { kind: 'arcface', model: arcfacePath },
  ...over,
});

const spec = (category = 'portrait', identityThreshold: number | null = null): CandidateSpec => ({
  pairId: 'p', index: 0, seed: 1, promptId: 'x', sampleIndex: 0, category, sourcePrompt: '', instruction: '', targetPrompt: '', identityThreshold, attributes: {},
});

test('Umeyama similarity recovers a known rotation, scale and shift, and the warp follows it', () => {
  const angle = 0.3, s = 1.7, tx = 12, ty = -5;
  const m = [s * Math.cos(angle), -s * Math.sin(angle), tx, s * Math.sin(angle), s * Math.cos(angle), ty] as const;
  const src = ARCFACE_TEMPLATE_112;
  const dst = src.map(([x, y]) => [m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]] as [number, number]);
  const fit = similarityTransform(src, dst);
  fit.forEach((v, i) => assert.ok(Math.abs(v - m[i]) < 1e-9, `coefficient ${i}: ${v} vs ${m[i]}`));
  // A pure integer shift warps pixels exactly.
  const img = faceImage(64, [{ x: 8, y: 8, seed: 3 }]);
  const crop = warpAffine(img, [1, 0, -8, 0, 1, -8], 32, 32);
  for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) assert.equal(crop.data[(y * 32 + x) * 3], img.data[((y + 8) * 64 + x + 8) * 3]);
  assert.deepEqual(applyAffine(fit, src[0]).map((v) => Math.round(v * 1e6) / 1e6), dst[0].map((v) => Math.round(v * 1e6) / 1e6));
});

test('NMS keeps the best of overlapping boxes and drops a partial box lying inside a kept one', () => {
  const d = (box: [number, number, number, number], score: number) => ({ box, score, keypoints: [] });
  const kept = nonMaxSuppression([d([0, 0, 10, 10], 0.9), d([1, 1, 11, 11], 0.8), d([0, 0, 10, 4], 0.7), d([50, 50, 60, 60], 0.6), d([8, 0, 18, 10], 0.5)], 0.3);
  // [1,1,11,11] has IoU .68 with the best; the strip [0,0,10,4] has IoU .4 but lies wholly inside it.
  assert.deepEqual(kept.map((k) => k.score), [0.9, 0.6, 0.5]);
});

test('SCRFD decoding: a bright square decodes to its box and keypoints, in pixels of the original image', async () => {
  const det = await openScrfd(scrfdPath, DEFAULT_RUNTIME, { scoreThreshold: 0.5, nmsIou: 0.3, inputSize: 128 });
  try {
    const faces = await det.detect(faceImage(128, [{ x: 64, y: 32, seed: 1 }]));
    assert.equal(faces.length, 1);
    assert.deepEqual(faces[0].box, [64, 32, 96, 64]);
    assert.ok(faces[0].score > 0.5);
    faces[0].keypoints.forEach(([x, y], i) => {
      assert.ok(Math.abs(x - (64 + KPS[i][0] * 32)) < 1e-4 && Math.abs(y - (32 + KPS[i][1] * 32)) < 1e-4);
    });
    // 256-px image letterboxed into 128: coordinates scale back by 2.
    const big = await det.detect(faceImage(256, [{ x: 128, y: 64, seed: 1 }], 2));
    assert.equal(big.length, 1);
    assert.deepEqual(big[0].box, [128, 64, 192, 128]);
    // Two faces, and none in a black image.
    assert.equal((await det.detect(faceImage(128, [{ x: 0, y: 0, seed: 1 }, { x: 64, y: 64, seed: 2 }]))).length, 2);
    assert.equal((await det.detect({ width: 128, height: 128, data: new Uint8Array(128 * 128 * 3) })).length, 0);
  } finally {
    await det.close();
  }
});

test('ArcFace path: 112-px crops aligned to the 5-point template, L2-normalised, batched like one by one', async () => {
  const emb = await openArcface(arcfacePath, DEFAULT_RUNTIME);
  try {
    assert.equal(emb.dims, 512);
    const img = faceImage(128, [{ x: 64, y: 32, seed: 1 }]);
    const kps = KPS.map(([x, y]) => [64 + x * 32, 32 + y * 32] as [number, number]);
    const crop = emb.align(img, { box: [64, 32, 96, 64], score: 1, keypoints: kps });
    assert.equal(crop.width, 112);
    const [a] = await emb.embed([crop]);
    assert.ok(Math.abs(a.reduce((s, v) => s + v * v, 0) - 1) < 1e-5);
    const two = await emb.embed([crop, crop]);
    assert.deepEqual(Array.from(two[1]), Array.from(a));
  } finally {
    await emb.close();
  }
});

test('scorer: same face moved → accepted; other face → below threshold; rules and reasons recorded', async () => {
  const scorer = await createIdentityScorer(config(), DEFAULT_RUNTIME);
  try {
    assert.match(scorer.info.modelDigest, /^[0-9a-f]{64}$/);
    const src = faceImage(128, [{ x: 64, y: 32, seed: 1 }]);
    const moved = await scorer.score(src, faceImage(128, [{ x: 32, y: 64, seed: 1 }]), spec());
    assert.equal(moved.faceProblem, null);
    assert.ok(judgeCandidate(moved, spec(), config()).accepted && moved.similarity! > 0.999, String(moved.similarity));
    assert.deepEqual(moved.editedFace!.box, [32, 64, 64, 96]);
    const other = await scorer.score(src, faceImage(128, [{ x: 64, y: 32, seed: 99 }]), spec());
    assert.equal(judgeCandidate(other, spec(), config()).rejectReason, 'identity_below_threshold', String(other.similarity));
    assert.ok(other.similarity! < 0.9 && other.similarity! > -1);
    const none = await scorer.score(src, { width: 128, height: 128, data: new Uint8Array(128 * 128 * 3) }, spec());
    assert.deepEqual([none.faceProblem, none.similarity, none.sourceFaces, none.editedFaces], ['no_face_edited', null, 1, 0]);
    const tiny = await scorer.score({ width: 1, height: 1, data: new Uint8Array(3) }, src, spec());
    assert.equal(tiny.faceProblem, 'no_face_source');
    const broken = await scorer.score({ width: 4, height: 4, data: new Uint8Array(5) }, src, spec());
    assert.equal(broken.faceProblem, 'invalid_image_source');
    // largest rule scores the larger face; single rule rejects two faces.
    const two = faceImage(128, [{ x: 64, y: 32, seed: 1 }, { x: 0, y: 96, seed: 5 }]);
    assert.equal((await scorer.score(src, two, spec())).editedFaces, 2);
  } finally {
    await scorer.close();
  }
  const single = await createIdentityScorer(config({ face_rule: 'single' }), DEFAULT_RUNTIME);
  try {
    const v = await single.score(faceImage(128, [{ x: 64, y: 32, seed: 1 }]), faceImage(128, [{ x: 64, y: 32, seed: 1 }, { x: 0, y: 96, seed: 5 }]), spec());
    assert.equal(v.faceProblem, 'multiple_faces_edited');
    assert.equal(v.editedFaces, 2);
    assert.ok(v.similarity === null);
  } finally {
    await single.close();
  }
  const big = await createIdentityScorer(config({ min_face_size: 40 }), DEFAULT_RUNTIME);
  try {
    const v = await big.score(faceImage(128, [{ x: 64, y: 32, seed: 1 }]), faceImage(128, [{ x: 64, y: 32, seed: 1 }]), spec());
    assert.equal(v.faceProblem, 'no_face_source');
  } finally {
    await big.close();
  }
});

test('thresholds: config category map beats the prompt set, which beats the global one', () => {
  const c = config({ threshold: 0.6, category_thresholds: { style: 0.3 } });
  assert.equal(thresholdFor(c, spec('style', 0.4)), 0.3);
  assert.equal(thresholdFor(c, spec('age', 0.4)), 0.4);
  assert.equal(thresholdFor(c, spec('age', null)), 0.6);
});

test('scores are deterministic', async () => {
  const run = async () => {
    const s = await createIdentityScorer(config(), DEFAULT_RUNTIME);
    const v = await s.score(faceImage(128, [{ x: 64, y: 32, seed: 1 }]), faceImage(128, [{ x: 64, y: 32, seed: 4 }]), spec());
    await s.close();
    return JSON.stringify(v);
  };
  assert.equal(await run(), await run());
});

test('bad model files and config: clear user errors', async () => {
  const wrong = join(dir, 'not-scrfd.onnx');
  writeFileSync(wrong, arcfaceModel());
  const junk = join(dir, 'junk.onnx');
  writeFileSync(junk, 'not a model');
  for (const [c, re] of [
    [config({ detector: { ...config().detector, model: wrong } }), /not-scrfd\.onnx: not an SCRFD model/],
    [config({ detector: { ...config().detector, model: join(dir, 'missing.onnx') } }), /ONNX model not found: .*missing\.onnx/],
    [config({ embedder: { kind: 'arcface', model: scrfdPath } }), /scrfd\.onnx: not an ArcFace model/],
    [config({ embedder: { kind: 'arcface', model: junk } }), /cannot load ONNX model .*junk\.onnx/],
    [config({ embedder: { kind: 'arcface' } }), /identity\.embedder\.model: required when identity\.embedder\.kind is arcface/],
  ] as const) {
    await assert.rejects(createIdentityScorer(c, DEFAULT_RUNTIME), (e) => isUserError(e) && re.test((e as Error).message));
  }
  assert.deepEqual(identityModelFiles(config()), [scrfdPath, arcfacePath]);
});

test('pipeline config: identity defaults filled in, model paths resolved against the config file, bad keys named', async () => {
  const { loadPipelineConfig } = await import('../../src/config/index.ts');
  const file = join(dir, 'pipeline.yaml');
  writeFileSync(file, [
    'prompts: { set: prompts.yaml }',
    'teacher: { model: teacher }',
    'identity:',
    '  category_thresholds: { style: 0.3 }',
    '  detector: { kind: scrfd, model: scrfd.onnx, input_size: 128 }',
    '  embedder: { kind: arcface, model: arcface.onnx }',
  ].join('\n'));
  const { config: c } = loadPipelineConfig(file);
  assert.equal(c.identity.detector.model, scrfdPath);
  assert.equal(c.identity.embedder.model, arcfacePath);
  assert.deepEqual([c.identity.enabled, c.identity.threshold, c.identity.face_rule, c.identity.min_face_size, c.identity.detector.nms_iou], [true, 0.65, 'largest', 32, 0.3]);
  const scorer = await createIdentityScorer(c.identity, c.runtime);
  const v = await scorer.score(faceImage(128, [{ x: 64, y: 32, seed: 1 }]), faceImage(128, [{ x: 64, y: 32, seed: 9 }]), spec('style'));
  assert.equal(judgeCandidate(v, spec('style'), c.identity).threshold, 0.3);
  await scorer.close();
  assert.throws(() => loadPipelineConfig(file, ['identity.face_rule=all']), (e) => isUserError(e) && /identity\.face_rule/.test((e as Error).message));
  assert.throws(() => loadPipelineConfig(file, ['identity.detector.size=3']), (e) => isUserError(e) && /identity\.detector/.test((e as Error).message));
});
