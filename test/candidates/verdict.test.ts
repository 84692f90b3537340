/**
 * The identity accept rule (src/candidates/verdict.ts): which threshold a candidate meets, what a face
 * problem or a missing score means, and that recorded pairs judged again at their own thresholds get
 * their recorded verdicts back (what refilter and the report's sweep rely on).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_IDENTITY, type IdentityConfig } from '../../src/identity/config.ts';
import {
  BELOW_THRESHOLD, identityVerdict, judgeAt, judgeCandidate, recordedEvidence, thresholdFor,
} from '../../src/candidates/index.ts';
import type { IdentityScore } from '../../src/types.ts';
import { mulberry32 } from '../helpers/prng.ts';

const identity: IdentityConfig = { ...DEFAULT_IDENTITY, threshold: 0.6, category_thresholds: { style: 0.3 } };

test('threshold: the config category map beats the prompt set, which beats the global threshold', () => {
  assert.equal(thresholdFor(identity, { category: 'style', identityThreshold: 0.4 }), 0.3);
  assert.equal(thresholdFor(identity, { category: 'age', identityThreshold: 0.4 }), 0.4);
  assert.equal(thresholdFor(identity, { category: 'age', identityThreshold: null }), 0.6);
  // A prompt-set threshold of 0 is a threshold, not "none".
  assert.equal(thresholdFor(identity, { category: 'age', identityThreshold: 0 }), 0);
});

test('accepted at or above the threshold; below it, or with no score, rejected as below threshold', () => {
  assert.deepEqual(judgeAt({ similarity: 0.5, faceProblem: null }, 0.5), { accepted: true, rejectReason: null, threshold: 0.5 });
  assert.deepEqual(judgeAt({ similarity: 0.4999, faceProblem: null }, 0.5), { accepted: false, rejectReason: BELOW_THRESHOLD, threshold: 0.5 });
  assert.deepEqual(judgeAt({ similarity: null, faceProblem: null }, -1), { accepted: false, rejectReason: BELOW_THRESHOLD, threshold: -1 });
  assert.equal(judgeAt({ similarity: Number.NaN, faceProblem: null }, -1).accepted, false);
});

test('a face problem rejects whatever the threshold, under its own reason', () => {
  for (const t of [-Infinity, -1, 0.5]) {
    assert.deepEqual(judgeAt({ similarity: null, faceProblem: 'no_face_edited' }, t), { accepted: false, rejectReason: 'no_face_edited', threshold: t });
  }
});

test('judgeCandidate reports the threshold it used', () => {
  const v = judgeCandidate({ similarity: 0.35, faceProblem: null }, { category: 'style', identityThreshold: 0.9 }, identity);
  assert.deepEqual(v, { accepted: true, rejectReason: null, threshold: 0.3 });
  const w = judgeCandidate({ similarity: 0.35, faceProblem: null }, { category: 'age', identityThreshold: null }, identity);
  assert.deepEqual(w, { accepted: false, rejectReason: BELOW_THRESHOLD, threshold: 0.6 });
});

test('identityVerdict: the score as recorded, with the verdict in place of the face problem', () => {
  const face = { box: [1, 2, 30, 40] as [number, number, number, number], score: 0.9, keypoints: [[5, 6]] as [number, number][] };
  const score: IdentityScore = { similarity: 0.7, sourceFaces: 1, editedFaces: 2, sourceFace: face, editedFace: face, faceProblem: null };
  assert.deepEqual(identityVerdict(score, { category: 'age', identityThreshold: null }, identity), {
    similarity: 0.7, sourceFaces: 1, editedFaces: 2, sourceFace: face, editedFace: face, threshold: 0.6, accepted: true, rejectReason: null,
  });
  const none: IdentityScore = { ...score, similarity: null, editedFaces: 0, editedFace: null, faceProblem: 'no_face_edited' };
  const v = identityVerdict(none, { category: 'style', identityThreshold: null }, identity);
  assert.deepEqual([v.accepted, v.rejectReason, v.threshold, 'faceProblem' in v], [false, 'no_face_edited', 0.3, false]);
});

test('recorded pairs judged again at their own thresholds keep their verdicts; a laxer threshold never drops one', () => {
  const random = mulberry32(11);
  const problems = ['no_face_source', 'no_face_edited', 'multiple_faces_edited', 'invalid_image_source'];
  for (let i = 0; i < 2000; i++) {
    const threshold = Math.round((random() * 2 - 1) * 100) / 100;
    const problem = random() < 0.2 ? problems[Math.floor(random() * problems.length)] : null;
    // Scores on the hundredths too, so that ties with the threshold happen.
    const similarity = problem ? null : random() < 0.5 ? Math.round((random() * 2 - 1) * 100) / 100 : random() * 2 - 1;
    const fresh = judgeAt({ similarity, faceProblem: problem }, threshold);
    const row = { identity_similarity: similarity, reject_reason: fresh.rejectReason };
    assert.deepEqual(judgeAt(recordedEvidence(row), threshold), fresh, JSON.stringify(row));
    const laxer = threshold - random();
    if (fresh.accepted) assert.equal(judgeAt(recordedEvidence(row), laxer).accepted, true);
  }
});

test('recordedEvidence: only a below-threshold reject can be undone by a threshold', () => {
  assert.deepEqual(recordedEvidence({ identity_similarity: 0.2, reject_reason: BELOW_THRESHOLD }), { similarity: 0.2, faceProblem: null });
  assert.deepEqual(recordedEvidence({ identity_similarity: 0.9, reject_reason: null }), { similarity: 0.9, faceProblem: null });
  assert.deepEqual(recordedEvidence({ identity_similarity: null, reject_reason: 'no_face_source' }), { similarity: null, faceProblem: 'no_face_source' });
});
