import sharp from 'sharp';
import type * as ort from 'onnxruntime-node';
import { UserError } from '../errors.ts';
import type { FaceDetection, RgbImage } from '../types.ts';
import type { RuntimeConfig } from '../onnx/session.ts';
import { ImageModel } from '../onnx/image-model.ts';
import { nonMaxSuppression } from './nms.ts';

export interface DetectorOptions {
  scoreThreshold: number;
  nmsIou: number;
  /** Input side for models with a dynamic input size. */
  inputSize: number;
}

export interface FaceDetector {
  readonly name: string;
  /** Faces in pixels of `img`, best score first. */
  detect(img: RgbImage): Promise<FaceDetection[]>;
  close(): Promise<void>;
}

/** A rectangle of the image fed to the model: scaled by `scale`, placed top-left, the rest zero-padded. */
interface View { x: number; y: number; w: number; h: number; scale: number }

/** How one detector family normalises its input and decodes its outputs (in model-input pixels). */
interface Family {
  name: string;
  normalise(v: number): number;
  decode(out: Record<string, ort.Tensor>, index: number, size: number, threshold: number): FaceDetection[];
  /** Tile images whose longer side exceeds this multiple of the input size (small faces vanish when shrunk). */
  tileAbove: number;
}

/**
 * Views of an image: the whole image letterboxed, plus — for images much larger than the model
 * input — half-size tiles overlapping by half, so every face up to a quarter of the longer side lies
 * wholly inside some tile and is seen at twice the resolution. Portraits (one view) stay one run.
 */
function views(W: number, H: number, size: number, tileAbove: number): View[] {
  const L = Math.max(W, H);
  const out: View[] = [{ x: 0, y: 0, w: W, h: H, scale: size / L }];
  if (L <= tileAbove * size) return out;
  const T = Math.ceil(L / 2);
  const starts = (dim: number) => {
    if (dim <= T) return [0];
    const n = Math.ceil((dim - T) / (T / 2)) + 1;
    return Array.from({ length: n }, (_, i) => Math.round(((dim - T) * i) / (n - 1)));
  };
  for (const y of starts(H)) for (const x of starts(W)) {
    const w = Math.min(T, W), h = Math.min(T, H);
    out.push({ x, y, w, h, scale: size / Math.max(w, h) });
  }
  return out;
}

async function renderView(img: RgbImage, v: View, size: number, normalise: (x: number) => number, into: Float32Array, offset: number): Promise<void> {
  const rw = Math.max(1, Math.min(size, Math.round(v.w * v.scale)));
  const rh = Math.max(1, Math.min(size, Math.round(v.h * v.scale)));
  const pixels = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .extract({ left: v.x, top: v.y, width: v.w, height: v.h })
    .resize(rw, rh, { fit: 'fill' })
    .raw()
    .toBuffer();
  const zero = normalise(0);
  into.fill(zero, offset, offset + size * size * 3);
  for (let y = 0; y < rh; y++) {
    for (let x = 0; x < rw * 3; x++) into[offset + y * size * 3 + x] = normalise(pixels[y * rw * 3 + x]);
  }
}

class TiledDetector implements FaceDetector {
  readonly name: string;
  constructor(private readonly model: ImageModel, private readonly family: Family, private readonly size: number, private readonly opts: DetectorOptions) {
    this.name = family.name;
  }

  async detect(img: RgbImage): Promise<FaceDetection[]> {
    if (img.width < 2 || img.height < 2) return [];
    const vs = views(img.width, img.height, this.size, this.family.tileAbove);
    const all: FaceDetection[] = [];
    const per = this.size * this.size * 3;
    for (let start = 0; start < vs.length; start += this.model.maxBatch) {
      const chunk = vs.slice(start, start + this.model.maxBatch);
      const input = new Float32Array(per * chunk.length);
      for (let i = 0; i < chunk.length; i++) await renderView(img, chunk[i], this.size, this.family.normalise, input, i * per);
      const out = await this.model.run(input, chunk.length, this.size, this.size);
      chunk.forEach((v, i) => {
        for (const d of this.family.decode(out, i, this.size, this.opts.scoreThreshold)) {
          const map = (x: number, y: number): [number, number] => [v.x + x / v.scale, v.y + y / v.scale];
          const [x1, y1] = map(d.box[0], d.box[1]);
          const [x2, y2] = map(d.box[2], d.box[3]);
          const box: FaceDetection['box'] = [Math.max(0, x1), Math.max(0, y1), Math.min(img.width, x2), Math.min(img.height, y2)];
          if (box[2] - box[0] < 1 || box[3] - box[1] < 1) continue;
          all.push({ box, score: d.score, keypoints: d.keypoints.map(([x, y]) => map(x, y)) });
        }
      });
    }
    return nonMaxSuppression(all, this.opts.nmsIou);
  }

  close(): Promise<void> {
    return this.model.close();
  }
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-Math.max(-80, Math.min(80, x))));

/** Output whose shape ends in [rows, cols] (batch first when 3-D), by its trailing dims. */
function byShape(out: Record<string, ort.Tensor>, rows: number, cols: number): ort.Tensor | undefined {
  return Object.values(out).find((t) => t.dims.length >= 2 && t.dims[t.dims.length - 2] === rows && t.dims[t.dims.length - 1] === cols);
}

/**
 * BlazeFace (MediaPipe back-camera model, 256 px): 896 anchors — a 16×16 grid × 2 (stride 16) then
 * an 8×8 grid × 6 (stride 32), centred in their cells. Per anchor: a logit, and 16 regressors in input
 * pixels: box centre offset, box size, then 6 keypoint offsets (eyes, nose tip, mouth, ears).
 */
const blazeFaceGrids = (size: number) => [{ stride: size / 16, per: 2 }, { stride: size / 8, per: 6 }];

function blazeFaceFamily(size: number): Family {
  const grids = blazeFaceGrids(size);
  return {
    name: 'blazeface-back',
    tileAbove: 2,
    normalise: (v) => v / 127.5 - 1,
    decode(out, index, _size, threshold) {
      const faces: FaceDetection[] = [];
      for (const { stride, per } of grids) {
        const cells = Math.ceil(size / stride);
        const n = cells * cells * per;
        const logits = byShape(out, n, 1), regs = byShape(out, n, 16);
        if (!logits || !regs) throw new Error(`blazeface: no [${n},1] / [${n},16] outputs`);
        const l = logits.data as Float32Array, r = regs.data as Float32Array;
        for (let a = 0; a < n; a++) {
          const score = sigmoid(l[index * n + a]);
          if (score < threshold) continue;
          const cell = Math.floor(a / per);
          const ax = (cell % cells + 0.5) * stride, ay = (Math.floor(cell / cells) + 0.5) * stride;
          const o = (index * n + a) * 16;
          const cx = ax + r[o], cy = ay + r[o + 1], w = r[o + 2], h = r[o + 3];
          const keypoints: [number, number][] = [];
          for (let k = 0; k < 6; k++) keypoints.push([ax + r[o + 4 + 2 * k], ay + r[o + 5 + 2 * k]]);
          faces.push({ box: [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], score, keypoints });
        }
      }
      return faces;
    },
  };
}

/**
 * insightface SCRFD with keypoints: nine outputs — scores [K,1], box distances [K,4] and keypoint
 * offsets [K,10] for strides 8, 16, 32, with 2 anchors per cell at the cell's top-left corner;
 * distances are in units of the stride. Input (x − 127.5) / 128, RGB.
 */
function scrfdFamily(): Family {
  return {
    name: 'scrfd',
    tileAbove: 4,
    normalise: (v) => (v - 127.5) / 128,
    decode(out, index, size, threshold) {
      const faces: FaceDetection[] = [];
      for (const stride of [8, 16, 32]) {
        const cells = Math.ceil(size / stride);
        const n = cells * cells * 2;
        const s = byShape(out, n, 1), b = byShape(out, n, 4), k = byShape(out, n, 10);
        if (!s || !b || !k) throw new Error(`scrfd: no [${n},1] / [${n},4] / [${n},10] outputs for stride ${stride}`);
        const batched = s.dims.length === 3;
        const sd = s.data as Float32Array, bd = b.data as Float32Array, kd = k.data as Float32Array;
        const base = batched ? index * n : 0;
        for (let a = 0; a < n; a++) {
          const score = sd[base + a];
          if (!(score >= threshold)) continue;
          const cell = a >> 1;
          const ax = (cell % cells) * stride, ay = Math.floor(cell / cells) * stride;
          const o = (base + a) * 4, q = (base + a) * 10;
          const keypoints: [number, number][] = [];
          for (let p = 0; p < 5; p++) keypoints.push([ax + kd[q + 2 * p] * stride, ay + kd[q + 2 * p + 1] * stride]);
          faces.push({ box: [ax - bd[o] * stride, ay - bd[o + 1] * stride, ax + bd[o + 2] * stride, ay + bd[o + 3] * stride], score, keypoints });
        }
      }
      return faces;
    },
  };
}

export async function openBlazeFace(path: string, runtime: RuntimeConfig, opts: DetectorOptions): Promise<FaceDetector> {
  const model = await ImageModel.open(path, runtime, 'BlazeFace detector');
  const size = model.height ?? 256;
  if (model.height !== model.width) throw new UserError(`${path}: BlazeFace model input must be square, got ${model.height}×${model.width}`);
  const family = blazeFaceFamily(size);
  for (const { stride, per } of blazeFaceGrids(size)) {
    const n = (size / stride) ** 2 * per;
    const shapes = model.outputs.map((o) => `[${o.shape.join(',')}]`);
    if (!model.outputs.some((o) => o.shape.at(-2) === n && o.shape.at(-1) === 16)) throw new UserError(`${path}: not a BlazeFace model: expected an output of shape [1,${n},16], got ${shapes.join(' ')}`);
  }
  return new TiledDetector(model, family, size, opts);
}

export async function openScrfd(path: string, runtime: RuntimeConfig, opts: DetectorOptions): Promise<FaceDetector> {
  const model = await ImageModel.open(path, runtime, 'SCRFD detector');
  if (model.layout !== 'nchw') throw new UserError(`${path}: not an SCRFD model: expected an NCHW input [1,3,H,W]`);
  const cols = model.outputs.map((o) => o.shape.at(-1)).sort().join(',');
  if (model.outputs.length !== 9 || cols !== '1,1,1,10,10,10,4,4,4') {
    throw new UserError(`${path}: not an SCRFD model with keypoints: expected 9 outputs (scores, boxes, keypoints for strides 8/16/32), got ${model.outputs.length}: ${model.outputs.map((o) => `${o.name}[${o.shape.join(',')}]`).join(' ')}`);
  }
  if (model.height !== model.width) throw new UserError(`${path}: SCRFD input must be square, got ${model.height}×${model.width}`);
  const size = model.height ?? opts.inputSize;
  if (size % 32 !== 0) throw new UserError(`${path}: SCRFD input size must be a multiple of 32, got ${size}`);
  return new TiledDetector(model, scrfdFamily(), size, opts);
}
