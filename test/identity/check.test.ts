/**
 * The identity part of `pairgen check` (src/identity/check.ts): the packaged models open; a user model
 * that is missing, unnamed or not a face model is named; per-category thresholds must be categories of
 * the prompt set.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkIdentity } from '../../src/identity/check.ts';
import { DEFAULT_IDENTITY, type IdentityConfig } from '../../src/identity/config.ts';
import { OnnxBuilder } from '../../src/onnx/builder.ts';
import { DEFAULT_RUNTIME } from '../../src/onnx/session.ts';

const dir = mkdtempSync(join(tmpdir(), 'pairgen-identity-check-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const identity = (over: Partial<IdentityConfig> = {}): IdentityConfig => ({ ...DEFAULT_IDENTITY, ...over });
const CATEGORIES = ['color_grade', 'style', 'lighting'];

test('disabled: nothing to check; the packaged models open, with a summary', async () => {
  assert.deepEqual(await checkIdentity(identity({ enabled: false }), DEFAULT_RUNTIME, CATEGORIES), { problems: [], summary: 'identity: disabled (every pair is kept)', missing: false });
  const packaged = await checkIdentity(identity({ category_thresholds: { style: 0.4 } }), DEFAULT_RUNTIME, CATEGORIES);
  assert.deepEqual(packaged, { problems: [], summary: 'identity: identity:blazeface-back+faceres, threshold 0.65 (per category: {"style":0.4})', missing: false });
});

test('user models: a missing file, an unnamed one and one that is no face model are named', async () => {
  const missing = join(dir, 'w600k_r50.onnx');
  const m = await checkIdentity(identity({ embedder: { kind: 'arcface', model: missing } }), DEFAULT_RUNTIME, CATEGORIES);
  assert.deepEqual(m, { problems: [`identity.embedder.model: ${missing} does not exist`], summary: null, missing: true });

  const unnamed = await checkIdentity(identity({ detector: { ...DEFAULT_IDENTITY.detector, kind: 'scrfd' }, embedder: { kind: 'arcface' } }), DEFAULT_RUNTIME, CATEGORIES);
  assert.deepEqual(unnamed.problems, [
    'identity.detector.model: required when identity.detector.kind is scrfd (the path of your SCRFD .onnx file)',
    'identity.embedder.model: required when identity.embedder.kind is arcface (the path of your ArcFace .onnx file)',
  ]);
  assert.equal(unnamed.missing, false);

  // A real ONNX model, but with a 2-D input: opened as a run would open it, its own check names the shape.
  const b = new OnnxBuilder({ opset: 17 });
  b.output(b.op('Identity', [b.input('x', 'float32', [1, 8])], {}, 'y'), 'float32', [1, 8]);
  const notFaces = join(dir, 'not-arcface.onnx');
  writeFileSync(notFaces, b.toBytes());
  const wrong = await checkIdentity(identity({ embedder: { kind: 'arcface', model: notFaces } }), DEFAULT_RUNTIME, CATEGORIES);
  assert.equal(wrong.problems.length, 1);
  assert.match(wrong.problems[0], /^identity: .*not-arcface\.onnx: not an? ArcFace embedder model: expected a 4-D image input, got shape \[1, 8\]$/);
  assert.equal(wrong.summary, null);
});

test('per-category thresholds must name categories of the prompt set (unless the set did not load)', async () => {
  const config = identity({ category_thresholds: { colour_grade: 0.5, style: 0.4 } });
  const r = await checkIdentity(config, DEFAULT_RUNTIME, CATEGORIES);
  assert.deepEqual(r.problems, ['identity.category_thresholds.colour_grade: the prompt set has no category "colour_grade" (it has: color_grade, style, lighting)']);
  assert.deepEqual((await checkIdentity(config, DEFAULT_RUNTIME, null)).problems, []);
});
