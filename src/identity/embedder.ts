import { UserError } from '../errors.ts';
import type { FaceDetection, RgbImage } from '../types.ts';
import type { RuntimeConfig } from '../onnx/session.ts';
import { ImageModel } from '../onnx/image-model.ts';
import { ARCFACE_TEMPLATE_112, similarityTransform, warpAffine, type Affine, type FloatImage } from './align.ts';

export interface FaceEmbedder {
  readonly name: string;
  readonly dims: number;
  /** The aligned crop this embedder sees for a face (for previews and tests). */
  align(img: RgbImage, face: FaceDetection): FloatImage;
  /** L2-normalised embeddings of aligned crops, in order. */
  embed(crops: FloatImage[]): Promise<Float32Array[]>;
  /** The embeddings and, from the same run, what else the model says about each face (faceres: its age). */
  describe(crops: FloatImage[]): Promise<FaceDescription[]>;
  close(): Promise<void>;
}

export interface FaceDescription {
  embedding: Float32Array;
  /** faceres's age head as Σ age·p(age) over its 100 one-year bins (0–99); null for embedders without one. */
  age: number | null;
}

/**
 * Keypoints reduced to what every detector gives: eye (image left), eye (image right), nose tip,
 * mouth centre. SCRFD's mouth corners are averaged; BlazeFace's ears are dropped.
 */
function corePoints(kps: [number, number][]): [number, number][] {
  if (kps.length === 5) return [kps[0], kps[1], kps[2], [(kps[3][0] + kps[4][0]) / 2, (kps[3][1] + kps[4][1]) / 2]];
  if (kps.length >= 4) return kps.slice(0, 4);
  throw new Error(`alignment needs at least 4 keypoints, got ${kps.length}`);
}

const ARCFACE_CORE_112 = corePoints(ARCFACE_TEMPLATE_112);

/**
 * faceres was trained on human's face crops: the BlazeFace box enlarged 1.4×, squared, upright.
 * In that crop the face sits a little smaller than in ArcFace's; this template is ArcFace's core points
 * scaled to 224 px and zoomed out about the crop centre by FACERES_ZOOM.
 */
const FACERES_SIZE = 224;
const FACERES_ZOOM = 0.85;
const FACERES_CORE = ARCFACE_CORE_112.map(([x, y]): [number, number] => [
  FACERES_SIZE / 2 + (x * 2 - FACERES_SIZE / 2) * FACERES_ZOOM,
  FACERES_SIZE / 2 + (y * 2 - FACERES_SIZE / 2) * FACERES_ZOOM,
]);

function alignTo(img: RgbImage, face: FaceDetection, size: number, template5: [number, number][] | null, core: [number, number][]): FloatImage {
  const m: Affine = template5 && face.keypoints.length === 5
    ? similarityTransform(face.keypoints, template5)
    : similarityTransform(corePoints(face.keypoints), core);
  return warpAffine(img, m, size, size);
}

function expectedAge(p: Float32Array): number {
  let age = 0;
  for (let i = 0; i < p.length; i++) age += i * p[i];
  return age;
}

function l2(v: Float32Array): Float32Array {
  let s = 0;
  for (const x of v) s += x * x;
  const n = Math.sqrt(s) || 1;
  return v.map((x) => x / n);
}

class OnnxEmbedder implements FaceEmbedder {
  constructor(
    readonly name: string,
    private readonly model: ImageModel,
    private readonly size: number,
    readonly dims: number,
    private readonly outputName: string,
    private readonly normalise: (v: number) => number,
    private readonly aligner: (img: RgbImage, face: FaceDetection) => FloatImage,
    private readonly ageOutput: string | null = null,
  ) {}

  align(img: RgbImage, face: FaceDetection): FloatImage {
    return this.aligner(img, face);
  }

  async embed(crops: FloatImage[]): Promise<Float32Array[]> {
    return (await this.describe(crops)).map((d) => d.embedding);
  }

  async describe(crops: FloatImage[]): Promise<FaceDescription[]> {
    const result: FaceDescription[] = [];
    const per = this.size * this.size * 3;
    for (let start = 0; start < crops.length; start += this.model.maxBatch) {
      const chunk = crops.slice(start, start + this.model.maxBatch);
      const input = new Float32Array(per * chunk.length);
      chunk.forEach((c, i) => {
        if (c.width !== this.size || c.height !== this.size) throw new Error(`${this.name}: crop must be ${this.size}×${this.size}`);
        for (let j = 0; j < per; j++) input[i * per + j] = this.normalise(c.data[j]);
      });
      const out = await this.model.run(input, chunk.length, this.size, this.size);
      const data = out[this.outputName].data as Float32Array;
      const ages = this.ageOutput ? (out[this.ageOutput].data as Float32Array) : null;
      for (let i = 0; i < chunk.length; i++) {
        result.push({ embedding: l2(data.slice(i * this.dims, (i + 1) * this.dims)), age: ages ? expectedAge(ages.subarray(i * 100, (i + 1) * 100)) : null });
      }
    }
    return result;
  }

  close(): Promise<void> {
    return this.model.close();
  }
}

/** The packaged faceres descriptor (converted from TF.js): 224 px, NHWC or NCHW, values 0..255, 1024-D. */
export async function openFaceres(path: string, runtime: RuntimeConfig): Promise<FaceEmbedder> {
  const model = await ImageModel.open(path, runtime, 'faceres descriptor');
  const out = model.outputs.find((o) => o.shape.at(-1) === 1024);
  if (!out) throw new UserError(`${path}: not a faceres model: expected a [1,1024] descriptor output`);
  const size = model.height ?? FACERES_SIZE;
  const age = model.outputs.find((o) => o.shape.length === 2 && o.shape[1] === 100)?.name ?? null;
  return new OnnxEmbedder('faceres', model, size, 1024, out.name, (v) => v, (img, face) => alignTo(img, face, size, null, FACERES_CORE.map(([x, y]) => [x * size / FACERES_SIZE, y * size / FACERES_SIZE])), age);
}

/** insightface ArcFace: [N,3,112,112], (x − 127.5) / 127.5, RGB; one embedding output (512-D for the released models). */
export async function openArcface(path: string, runtime: RuntimeConfig): Promise<FaceEmbedder> {
  const model = await ImageModel.open(path, runtime, 'ArcFace embedder');
  if (model.layout !== 'nchw' || model.height !== 112 || model.width !== 112) {
    throw new UserError(`${path}: not an ArcFace model: expected an input of shape [N,3,112,112]`);
  }
  const out = model.outputs[0];
  const dims = out?.shape.at(-1);
  if (model.outputs.length !== 1 || out.shape.length !== 2 || typeof dims !== 'number' || dims < 2) {
    throw new UserError(`${path}: not an ArcFace model: expected one [N,D] embedding output, got ${model.outputs.map((o) => `${o.name}[${o.shape.join(',')}]`).join(' ')}`);
  }
  return new OnnxEmbedder('arcface', model, 112, dims, out.name, (v) => (v - 127.5) / 127.5, (img, face) => alignTo(img, face, 112, ARCFACE_TEMPLATE_112, ARCFACE_CORE_112));
}

export function cosine(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
