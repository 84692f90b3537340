import sharp from 'sharp';
type Sharp = ReturnType<typeof sharp>;
import type { RgbImage } from '../types.ts';
import type { FaceDetector } from './detector.ts';
import { cosine, type FaceEmbedder } from './embedder.ts';
import { countableFaces, largestFace } from './scorer.ts';

/** A face cut from an input image with a margin: one identity of the calibration set. */
export interface FaceCrop { name: string; image: RgbImage }

/** Photometric and geometric views of a face crop that must keep its identity. */
export const AUGMENTATIONS: { name: string; apply(img: RgbImage): Promise<RgbImage> }[] = [
  { name: 'flip', apply: (img) => viaSharp(img, (s) => s.flop()) },
  { name: 'rescale-0.6', apply: (img) => viaSharp(img, (s) => s.resize(Math.round(img.width * 0.6), Math.round(img.height * 0.6))) },
  { name: 'shift', apply: (img) => viaSharp(img, (s) => s.extend({ left: Math.round(img.width * 0.12), top: Math.round(img.height * 0.08), background: '#808080' })) },
  { name: 'brighter', apply: (img) => viaSharp(img, (s) => s.modulate({ brightness: 1.3 })) },
  { name: 'darker-flip-0.8', apply: (img) => viaSharp(img, (s) => s.modulate({ brightness: 0.7 }).flop().resize(Math.round(img.width * 0.8))) },
];

async function viaSharp(img: RgbImage, f: (s: Sharp) => Sharp): Promise<RgbImage> {
  const { data, info } = await f(sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** Every countable face of `img`, cut as a square of twice the box size (clipped to the image). */
export async function cropFaces(name: string, img: RgbImage, detector: FaceDetector, minSize: number): Promise<FaceCrop[]> {
  const faces = countableFaces(await detector.detect(img), minSize);
  const crops: FaceCrop[] = [];
  for (const [i, f] of faces.entries()) {
    const side = 2 * Math.max(f.box[2] - f.box[0], f.box[3] - f.box[1]);
    const cx = (f.box[0] + f.box[2]) / 2, cy = (f.box[1] + f.box[3]) / 2;
    const left = Math.max(0, Math.round(cx - side / 2)), top = Math.max(0, Math.round(cy - side / 2));
    const width = Math.min(img.width - left, Math.round(side)), height = Math.min(img.height - top, Math.round(side));
    const image = await viaSharp(img, (s) => s.extract({ left, top, width, height }));
    crops.push({ name: faces.length > 1 ? `${name}#${i + 1}` : name, image });
  }
  return crops;
}

/** Detect the largest face and embed it; null when none is found. */
export async function embedLargest(img: RgbImage, detector: FaceDetector, embedder: FaceEmbedder, minSize: number): Promise<Float32Array | null> {
  const face = largestFace(countableFaces(await detector.detect(img), minSize));
  return face ? (await embedder.embed([embedder.align(img, face)]))[0] : null;
}

export interface RocPoint { threshold: number; far: number; tpr: number }

export interface CalibrationReport {
  faces: number;
  samePairs: number;
  differentPairs: number;
  /** Augmented views in which no face was found (they count as misses at every threshold). */
  missedViews: number;
  /** Share of augmented views whose nearest original face is their own. */
  rank1: number;
  tprAtFar: { far: number; tpr: number; threshold: number }[];
  eer: number;
  eerThreshold: number;
  targetFar: number;
  /** The lowest threshold whose false-accept rate on different-people pairs is ≤ targetFar. */
  thresholdAtTargetFar: number;
  same: { mean: number; min: number };
  different: { mean: number; max: number };
}

/**
 * Threshold for a false-accept rate: accept when score ≥ t, so t sits just above the (k+1)-th highest
 * different-people score, k = ⌊far·n⌋. With few pairs the smallest reachable FAR is 1/n (reported).
 */
export function thresholdAtFar(different: number[], far: number): number {
  const sorted = [...different].sort((a, b) => b - a);
  const k = Math.floor(far * sorted.length);
  if (k >= sorted.length) return -1;
  const v = sorted[k];
  return v + Math.max(1e-6, Math.abs(v) * 1e-6);
}

const rate = (scores: number[], t: number) => scores.filter((s) => s >= t).length / Math.max(1, scores.length);

/** Equal error rate: where false accepts (different ≥ t) and false rejects (same < t) cross. */
export function equalErrorRate(same: number[], different: number[]): { eer: number; threshold: number } {
  const ts = [...new Set([...same, ...different])].sort((a, b) => a - b);
  // Accept when score ≥ t: the error rates are constant on (previous score, t], so a best range
  // starts just above the score before it; report the middle of that range.
  let best = { eer: 1, from: 0, to: 0, gap: Infinity };
  let previous = ts[0] - 1e-6;
  for (const t of [...ts, ts.at(-1)! + 1e-6]) {
    const far = rate(different, t), frr = 1 - rate(same, t);
    const gap = Math.abs(far - frr);
    if (gap < best.gap) best = { eer: (far + frr) / 2, from: previous, to: t, gap };
    else if (gap === best.gap && (far + frr) / 2 === best.eer) best.to = t;
    previous = t;
  }
  return { eer: best.eer, threshold: (best.from + best.to) / 2 };
}

export function rocCurve(same: number[], different: number[]): RocPoint[] {
  const ts = [...new Set([...same, ...different])].sort((a, b) => b - a);
  return ts.map((t) => ({ threshold: t, far: rate(different, t), tpr: rate(same, t) }));
}

/**
 * Same-identity pairs: each face crop against each of its augmented views (detected, aligned and
 * embedded again); different-identity pairs: every crop against every other crop and their views.
 */
export async function calibrate(crops: FaceCrop[], detector: FaceDetector, embedder: FaceEmbedder, opts: { minSize: number; targetFar: number; onProgress?: (done: number) => void }): Promise<{ report: CalibrationReport; same: number[]; different: number[] }> {
  const originals: Float32Array[] = [];
  const views: { of: number; emb: Float32Array | null }[] = [];
  const kept: FaceCrop[] = [];
  for (const [i, c] of crops.entries()) {
    const e = await embedLargest(c.image, detector, embedder, opts.minSize);
    if (e) {
      const id = kept.length;
      kept.push(c);
      originals.push(e);
      for (const aug of AUGMENTATIONS) views.push({ of: id, emb: await embedLargest(await aug.apply(c.image), detector, embedder, opts.minSize) });
    }
    opts.onProgress?.(i + 1);
  }
  const same: number[] = [];
  const different: number[] = [];
  let missed = 0, rank1 = 0;
  for (const v of views) {
    if (!v.emb) { missed++; same.push(-1); continue; }
    const sims = originals.map((o) => cosine(o, v.emb!));
    same.push(sims[v.of]);
    sims.forEach((s, j) => { if (j !== v.of) different.push(s); });
    if (sims.every((s, j) => j === v.of || s < sims[v.of])) rank1++;
  }
  for (let i = 0; i < originals.length; i++) for (let j = i + 1; j < originals.length; j++) different.push(cosine(originals[i], originals[j]));
  const { eer, threshold: eerThreshold } = equalErrorRate(same, different);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const tprAtFar = [1e-2, 1e-3].map((far) => { const t = thresholdAtFar(different, far); return { far, tpr: rate(same, t), threshold: t }; });
  const report: CalibrationReport = {
    faces: kept.length, samePairs: same.length, differentPairs: different.length, missedViews: missed,
    rank1: views.length ? rank1 / views.length : 0,
    tprAtFar, eer, eerThreshold, targetFar: opts.targetFar, thresholdAtTargetFar: thresholdAtFar(different, opts.targetFar),
    same: { mean: mean(same), min: Math.min(...same) }, different: { mean: mean(different), max: Math.max(...different) },
  };
  return { report, same, different };
}

/** Score histograms (same vs different people) and the ROC (log FAR), as a PNG drawn from SVG by sharp. */
export async function plotCalibration(same: number[], different: number[], report: CalibrationReport): Promise<Buffer> {
  const W = 1000, H = 420, pad = 60, pw = (W - 3 * pad) / 2, ph = H - 2 * pad;
  const bins = 40;
  const lo = Math.max(-1, Math.floor(Math.min(...same, ...different) * 10) / 10), hi = 1;
  const sx = (v: number) => pad + ((v - lo) / (hi - lo)) * pw;
  const hist = (xs: number[]) => {
    const h = new Array(bins).fill(0);
    for (const x of xs) h[Math.min(bins - 1, Math.max(0, Math.floor(((x - lo) / (hi - lo)) * bins)))]++;
    return h.map((n) => n / Math.max(1, xs.length));
  };
  const hs = hist(same), hd = hist(different);
  const top = Math.max(...hs, ...hd, 1e-9);
  const bars = (h: number[], color: string) => h.map((v, i) => `<rect x="${(pad + (i * pw) / bins).toFixed(1)}" y="${(pad + ph - (v / top) * ph).toFixed(1)}" width="${(pw / bins - 1).toFixed(1)}" height="${((v / top) * ph).toFixed(1)}" fill="${color}" fill-opacity="0.55"/>`).join('');
  const tx = sx(report.thresholdAtTargetFar);
  const xticks = [0, 0.25, 0.5, 0.75, 1].map((f) => lo + f * (hi - lo)).map((v) => `<text x="${sx(v)}" y="${H - pad + 16}" font-size="11" text-anchor="middle">${v.toFixed(2)}</text>`).join('');
  const minLog = -4;
  const x0 = 2 * pad + pw;
  const rx = (far: number) => x0 + ((Math.max(minLog, Math.log10(Math.max(far, 1e-12))) - minLog) / -minLog) * pw;
  const ry = (tpr: number) => pad + ph - tpr * ph * 0.95;
  const path = rocCurve(same, different).map((p, i) => `${i ? 'L' : 'M'}${rx(p.far).toFixed(1)},${ry(p.tpr).toFixed(1)}`).join(' ');
  const ticks = [-4, -3, -2, -1, 0].map((e) => `<text x="${rx(10 ** e)}" y="${H - pad + 16}" font-size="11" text-anchor="middle">1e${e}</text>`).join('');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">
<rect width="100%" height="100%" fill="#fff"/>
<text x="${pad}" y="${pad - 30}" font-size="13">cosine similarity: same person (green, ${same.length} pairs)</text>
<text x="${pad}" y="${pad - 14}" font-size="13">vs different people (red, ${different.length} pairs)</text>
${bars(hd, '#d33')}${bars(hs, '#2a2')}
<line x1="${tx}" y1="${pad}" x2="${tx}" y2="${pad + ph}" stroke="#000" stroke-dasharray="4 3"/>
<text x="${tx - 4}" y="${pad + 12}" font-size="11" text-anchor="end">threshold ${report.thresholdAtTargetFar.toFixed(3)} (FAR ${report.targetFar})</text>
<line x1="${pad}" y1="${pad + ph}" x2="${pad + pw}" y2="${pad + ph}" stroke="#000"/>${xticks}
<text x="${x0}" y="${pad - 14}" font-size="13">ROC: TPR vs FAR (log); EER ${(report.eer * 100).toFixed(2)}%</text>
<rect x="${x0}" y="${pad}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>
<path d="${path}" fill="none" stroke="#24c" stroke-width="2.5"/>${ticks}
<text x="${x0 - 6}" y="${ry(1) + 4}" font-size="11" text-anchor="end">1.0</text><text x="${x0 - 6}" y="${ry(0)}" font-size="11" text-anchor="end">0.0</text>
</svg>`;
  return await sharp(Buffer.from(svg)).png().toBuffer();
}
