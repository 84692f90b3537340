import type { FaceDetection, RgbImage } from '../types.ts';
import { sampleAffine, type Affine } from '../image/index.ts';

/** Float HWC pixels, values 0..255, `channels` per pixel. */
export interface Pixels {
  width: number;
  height: number;
  channels: number;
  data: Float32Array;
}

/** Maps crop pixel (u, v) to image pixel (x, y): x = a·u + b·v + tx, y = c·u + d·v + ty. */
export type CropToImage = Affine;

export interface FaceCrop extends Pixels {
  toImage: CropToImage;
  /** Image pixels per crop pixel (depth values scale by it too). */
  scale: number;
}

/**
 * The face's in-plane angle from the detector's first two keypoints (the eyes, image-left first for
 * BlazeFace and SCRFD): 0 when upright, positive when the face is turned clockwise on screen.
 */
export function eyeAngle(face: FaceDetection): number {
  if (face.keypoints.length < 2) return 0;
  const [[x0, y0], [x1, y1]] = face.keypoints;
  return Math.atan2(y1 - y0, x1 - x0);
}

/**
 * A size×size upright crop around the face: centred on the box, `scale` times its longer side, turned
 * by the eye angle so the eyes are level (as MediaPipe prepares a face for its landmark model).
 * Bilinear sampling (image/warp.ts): pixel centres on integer coordinates, outside the image is 0.
 */
export function faceCrop(img: RgbImage, face: FaceDetection, scale: number, size: number): FaceCrop {
  const [x1, y1, x2, y2] = face.box;
  const s = (scale * Math.max(x2 - x1, y2 - y1)) / size;
  const t = eyeAngle(face);
  const cos = Math.cos(t) * s, sin = Math.sin(t) * s;
  const c = (size - 1) / 2;
  const cx = (x1 + x2) / 2, cy = (y1 + y2) / 2;
  const toImage: CropToImage = [cos, -sin, cx - cos * c + sin * c, sin, cos, cy - sin * c - cos * c];
  const { data } = sampleAffine(img, toImage, size, size);
  return { width: size, height: size, channels: 3, data, toImage, scale: s };
}

/**
 * Bilinear resize of a whole image to width×height, as TF.js's resizeBilinear computes it: with
 * `alignCorners` the corner pixels map onto each other, else the source coordinate is out·(in/out),
 * and the index is clamped at the last pixel.
 */
export function resizeBilinear(img: RgbImage, width: number, height: number, alignCorners: boolean): Pixels {
  const { width: W, height: H } = img;
  const ratio = (inn: number, out: number) => (alignCorners && out > 1 ? (inn - 1) / (out - 1) : inn / out);
  const rx = ratio(W, width), ry = ratio(H, height);
  const data = new Float32Array(width * height * 3);
  for (let v = 0; v < height; v++) {
    const y = v * ry, y0 = Math.min(H - 1, Math.floor(y)), y1 = Math.min(H - 1, y0 + 1), fy = y - y0;
    for (let u = 0; u < width; u++) {
      const x = u * rx, x0 = Math.min(W - 1, Math.floor(x)), x1 = Math.min(W - 1, x0 + 1), fx = x - x0;
      const o = (v * width + u) * 3;
      for (let ch = 0; ch < 3; ch++) {
        const top = img.data[(y0 * W + x0) * 3 + ch] * (1 - fx) + img.data[(y0 * W + x1) * 3 + ch] * fx;
        const bottom = img.data[(y1 * W + x0) * 3 + ch] * (1 - fx) + img.data[(y1 * W + x1) * 3 + ch] * fx;
        data[o + ch] = top * (1 - fy) + bottom * fy;
      }
    }
  }
  return { width, height, channels: 3, data };
}

/** Rec. 601 luma (0..255) of 8-bit or float RGB. */
export function luma(rgb: ArrayLike<number>, count: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = 0.299 * rgb[3 * i] + 0.587 * rgb[3 * i + 1] + 0.114 * rgb[3 * i + 2];
  return out;
}

const linear = (v: number) => {
  const c = v / 255;
  return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
};
const SRGB_TO_LINEAR = Float32Array.from({ length: 256 }, (_, v) => linear(v));
const labF = (t: number) => (t > 216 / 24389 ? Math.cbrt(t) : (24389 / 27 * t + 16) / 116);

const toLinear = (v: number) => (Number.isInteger(v) && v >= 0 && v <= 255 ? SRGB_TO_LINEAR[v] : linear(Math.max(0, Math.min(255, v))));

/** CIELAB (D65 white) of sRGB values 0..255, three numbers a pixel. */
export function toLab(rgb: ArrayLike<number>, count: number): Float32Array {
  const out = new Float32Array(count * 3);
  for (let i = 0; i < count; i++) {
    const r = toLinear(rgb[3 * i]), g = toLinear(rgb[3 * i + 1]), b = toLinear(rgb[3 * i + 2]);
    const fx = labF((0.4124564 * r + 0.3575761 * g + 0.1804375 * b) / 0.95047);
    const fy = labF(0.2126729 * r + 0.7151522 * g + 0.072175 * b);
    const fz = labF((0.0193339 * r + 0.119192 * g + 0.9503041 * b) / 1.08883);
    out[3 * i] = 116 * fy - 16;
    out[3 * i + 1] = 500 * (fx - fy);
    out[3 * i + 2] = 200 * (fy - fz);
  }
  return out;
}

/** Per-pixel CIE76 colour difference ΔE*ab between two Lab images of the same size. */
export function deltaE(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length / 3);
  for (let i = 0; i < out.length; i++) out[i] = Math.hypot(a[3 * i] - b[3 * i], a[3 * i + 1] - b[3 * i + 1], a[3 * i + 2] - b[3 * i + 2]);
  return out;
}
