import type { FaceDetection } from '../types.ts';

type Box = FaceDetection['box'];

export function boxArea(b: Box): number {
  return Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]);
}

function intersection(a: Box, b: Box): number {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  return w > 0 && h > 0 ? w * h : 0;
}

/**
 * Greedy non-maximum suppression: keep the best-scoring detection, drop those overlapping it by more
 * than `iou`, or lying mostly (`containment` of their own area) inside it — the latter removes the
 * partial faces a tile border cuts, whose IoU with the whole face can be low. Ties are broken by input
 * order, so the result is deterministic.
 */
export function nonMaxSuppression(dets: FaceDetection[], iou: number, containment = 0.75): FaceDetection[] {
  const order = dets.map((d, i) => ({ d, i })).sort((a, b) => b.d.score - a.d.score || a.i - b.i);
  const kept: FaceDetection[] = [];
  for (const { d } of order) {
    const area = boxArea(d.box);
    const overlaps = kept.some((k) => {
      const inter = intersection(k.box, d.box);
      const union = area + boxArea(k.box) - inter;
      return (union > 0 && inter / union > iou) || (area > 0 && inter / Math.min(area, boxArea(k.box)) > containment);
    });
    if (!overlaps) kept.push(d);
  }
  return kept;
}
