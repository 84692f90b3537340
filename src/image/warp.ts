/**
 * Affine maps of the image plane (the least-squares similarity between point sets, apply, invert) and
 * bilinear sampling of an 8-bit RGB image through one into a float crop: face alignment
 * (identity/align.ts), the scorers' rotated face crops (scorers/pixels.ts) and their landmark distance
 * (scorers/pose.ts) use them.
 */

/** 2×3 affine matrix [a, b, tx, c, d, ty]: x' = a·x + b·y + tx, y' = c·x + d·y + ty. */
export type Affine = [number, number, number, number, number, number];

/** A float HWC RGB crop, values 0..255. */
export interface FloatImage {
  width: number;
  height: number;
  data: Float32Array;
}

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

export function applyAffine(m: Affine, p: [number, number]): [number, number] {
  return [m[0] * p[0] + m[1] * p[1] + m[2], m[3] * p[0] + m[4] * p[1] + m[5]];
}

export function invertAffine(m: Affine): Affine {
  const det = m[0] * m[4] - m[1] * m[3];
  if (det === 0) throw new Error('invertAffine: singular matrix');
  const a = m[4] / det, b = -m[1] / det, c = -m[3] / det, d = m[0] / det;
  return [a, b, -(a * m[2] + b * m[5]), c, d, -(c * m[2] + d * m[5])];
}

/**
 * Sample an 8-bit RGB image at `toImage(u, v)` for every pixel (u, v) of a width×height float crop
 * (`toImage`: crop → image coordinates). Pixel centres sit on integer coordinates (as cv2.warpAffine,
 * which insightface uses); samples outside the image are 0. Own sampler rather than sharp's affine:
 * sharp would transform the whole (possibly 1920-px) image per face and round to 8 bits; this touches
 * only the crop's pixels.
 */
export function sampleAffine(img: { width: number; height: number; data: Uint8Array }, toImage: Affine, width: number, height: number): FloatImage {
  const out = new Float32Array(width * height * 3);
  const { width: W, height: H, data } = img;
  for (let v = 0; v < height; v++) {
    for (let u = 0; u < width; u++) {
      const x = toImage[0] * u + toImage[1] * v + toImage[2];
      const y = toImage[3] * u + toImage[4] * v + toImage[5];
      const x0 = Math.floor(x), y0 = Math.floor(y);
      const fx = x - x0, fy = y - y0;
      const o = (v * width + u) * 3;
      for (let dy = 0; dy < 2; dy++) {
        const yy = y0 + dy;
        if (yy < 0 || yy >= H) continue;
        const wy = dy === 0 ? 1 - fy : fy;
        for (let dx = 0; dx < 2; dx++) {
          const xx = x0 + dx;
          if (xx < 0 || xx >= W) continue;
          const w = wy * (dx === 0 ? 1 - fx : fx);
          if (w === 0) continue;
          const p = (yy * W + xx) * 3;
          out[o] += w * data[p];
          out[o + 1] += w * data[p + 1];
          out[o + 2] += w * data[p + 2];
        }
      }
    }
  }
  return { width, height, data: out };
}

/** Warp an 8-bit RGB image by `m` (image → crop coordinates) into a width×height float crop (see sampleAffine). */
export function warpAffine(img: { width: number; height: number; data: Uint8Array }, m: Affine, width: number, height: number): FloatImage {
  return sampleAffine(img, invertAffine(m), width, height);
}
