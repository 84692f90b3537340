/**
 * Face alignment: a least-squares similarity transform from detected keypoints to an embedder's
 * canonical points; the crop is sampled by image/warp.ts.
 */
import type { Affine } from '../image/index.ts';

export { applyAffine, invertAffine, warpAffine, type Affine, type FloatImage } from '../image/index.ts';

/** insightface's ArcFace 5-point template for a 112×112 crop: eyes, nose tip, mouth corners (image left first). */
export const ARCFACE_TEMPLATE_112: [number, number][] = [
  [38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041],
];

/**
 * Umeyama's least-squares similarity (rotation, uniform scale, translation; no reflection) mapping
 * `src` onto `dst`. In 2-D this closed form is the complex ratio z = Σ conj(a)·b / Σ|a|² over the
 * centred points, which equals Umeyama's SVD solution with its reflection guard.
 */
export function similarityTransform(src: [number, number][], dst: [number, number][]): Affine {
  if (src.length !== dst.length || src.length < 2) throw new Error(`similarityTransform: need ≥2 matching points, got ${src.length} and ${dst.length}`);
  const n = src.length;
  let msx = 0, msy = 0, mdx = 0, mdy = 0;
  for (let i = 0; i < n; i++) { msx += src[i][0]; msy += src[i][1]; mdx += dst[i][0]; mdy += dst[i][1]; }
  msx /= n; msy /= n; mdx /= n; mdy /= n;
  let re = 0, im = 0, norm = 0;
  for (let i = 0; i < n; i++) {
    const ax = src[i][0] - msx, ay = src[i][1] - msy;
    const bx = dst[i][0] - mdx, by = dst[i][1] - mdy;
    re += ax * bx + ay * by;
    im += ax * by - ay * bx;
    norm += ax * ax + ay * ay;
  }
  if (norm === 0) throw new Error('similarityTransform: source points coincide');
  const a = re / norm, b = im / norm;
  return [a, -b, mdx - (a * msx - b * msy), b, a, mdy - (b * msx + a * msy)];
}

