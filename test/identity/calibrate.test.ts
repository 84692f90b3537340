// Calibration maths on score lists whose answers are worked out by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { equalErrorRate, rocCurve, thresholdAtFar, plotCalibration, type CalibrationReport } from '../../src/identity/calibrate.ts';
import sharp from 'sharp';

test('threshold at a false-accept rate sits just above the (k+1)-th highest different-people score', () => {
  const diff = Array.from({ length: 100 }, (_, i) => i / 100); // 0.00 … 0.99
  const t1 = thresholdAtFar(diff, 0.01); // one false accept allowed: above 0.98, at or below 0.99
  assert.ok(t1 > 0.98 && t1 <= 0.99, String(t1));
  assert.equal(diff.filter((s) => s >= t1).length, 1);
  const t0 = thresholdAtFar(diff, 1e-3); // below 1/n: no false accept at all
  assert.ok(t0 > 0.99 && t0 < 0.991);
  assert.equal(thresholdAtFar(diff, 1), -1);
});

test('EER: overlapping lists cross where false accepts equal false rejects; disjoint lists give 0 in the gap', () => {
  // same: 0.5 … 0.95, different: 0.1 … 0.55 — ten each; at t = 0.55: FAR 1/10, FRR 1/10.
  const same = Array.from({ length: 10 }, (_, i) => 0.5 + i * 0.05);
  const diff = Array.from({ length: 10 }, (_, i) => 0.1 + i * 0.05);
  const r = equalErrorRate(same, diff);
  assert.ok(Math.abs(r.eer - 0.1) < 1e-9, String(r.eer));
  const clean = equalErrorRate([0.8, 0.9], [0.1, 0.2]);
  assert.equal(clean.eer, 0);
  assert.ok(Math.abs(clean.threshold - 0.5) < 1e-9, String(clean.threshold)); // middle of (0.2, 0.8]
  const roc = rocCurve(same, diff);
  assert.deepEqual(roc.at(-1), { threshold: 0.1, far: 1, tpr: 1 });
  assert.ok(roc.every((p, i) => i === 0 || (p.far >= roc[i - 1].far && p.tpr >= roc[i - 1].tpr)), 'ROC is monotone');
});

test('the plot is a PNG', async () => {
  const report = { eer: 0.1, targetFar: 0.01, thresholdAtTargetFar: 0.6 } as CalibrationReport;
  const png = await plotCalibration([0.9, 0.8, 0.5], [0.1, 0.55, 0.3], report);
  const meta = await sharp(png).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['png', 1000, 420]);
});
