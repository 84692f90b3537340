import type { RuntimeConfig } from '../onnx/session.ts';
import { OnnxModel } from '../onnx/model.ts';
import type { FaceDetection, RgbImage } from '../types.ts';
import { applyAffine, similarityTransform, type Affine } from '../image/index.ts';
import { SCORE_NAMES } from './config.ts';
import { SCORER_MODELS } from './models.ts';
import { faceCrop } from './pixels.ts';
import { ModelScorer, both, type PairInput, type Scorer, type ScorerResult } from './scorer.ts';

/** [x, y, z] in image pixels (z: depth, larger is farther from the camera). */
export type Point3 = [number, number, number];

const SIZE = 192;
const CROP_SCALE = 1.5;
const spec = SCORER_MODELS.facemesh;

/** Face Mesh landmark numbers (MediaPipe's canonical mesh): mirror pairs, image-left point first. */
const ACROSS: [number, number][] = [[234, 454], [127, 356], [33, 263], [61, 291]];
const FOREHEAD = 10, CHIN = 152;
const EYE_OUTER: [number, number] = [33, 263];

const sub = (a: Point3, b: Point3): Point3 => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const dot = (a: Point3, b: Point3) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const unit = (a: Point3): Point3 => {
  const n = Math.hypot(...a) || 1;
  return [a[0] / n, a[1] / n, a[2] / n];
};
const cross = (a: Point3, b: Point3): Point3 => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
const deg = (r: number) => (r * 180) / Math.PI;

export interface HeadPose {
  /** Degrees. yaw > 0: face turned towards the image's right; pitch > 0: chin up; roll > 0: turned clockwise on screen. */
  yaw: number;
  pitch: number;
  roll: number;
}

/**
 * Head pose from landmarks in image coordinates (x right, y down, z away from the camera). The head's
 * frame: X = mean direction of four mirror pairs (cheeks, temples, outer eye corners, mouth corners),
 * image-left to image-right; Y = forehead → chin, made orthogonal to X; Z = X × Y. The rotation
 * R = [X Y Z] is read as R = Rz(roll)·Ry(−yaw)·Rx(pitch): roll = atan2(Xy, Xx), yaw = asin(Xz),
 * pitch = atan2(Yz, Zz). An upright frontal face is (0, 0, 0).
 */
export function headPose(mesh: Point3[]): HeadPose {
  const across = ACROSS.map(([l, r]) => unit(sub(mesh[r], mesh[l])));
  const X = unit(across.reduce<Point3>((s, v) => [s[0] + v[0], s[1] + v[1], s[2] + v[2]], [0, 0, 0]));
  const down = sub(mesh[CHIN], mesh[FOREHEAD]);
  const k = dot(down, X);
  const Y = unit([down[0] - k * X[0], down[1] - k * X[1], down[2] - k * X[2]]);
  const Z = cross(X, Y);
  return { roll: deg(Math.atan2(X[1], X[0])), yaw: deg(Math.asin(Math.max(-1, Math.min(1, X[2])))), pitch: deg(Math.atan2(Y[2], Z[2])) };
}

/**
 * How far the edited face's landmarks moved, apart from where the face is, its size and in-plane
 * angle: the edited (x, y) landmarks are mapped onto the source's by the least-squares similarity
 * transform, and the mean distance left is divided by the source's outer-eye-corner distance.
 */
export function landmarkDistance(source: Point3[], edited: Point3[]): number {
  const xy = (points: Point3[]) => points.map(([x, y]) => [x, y] as [number, number]);
  const s = xy(source);
  const e = xy(edited);
  let m: Affine;
  try {
    m = similarityTransform(e, s);
  } catch {
    // Every edited landmark in one place: map them all onto the source's centre.
    const [cx, cy] = s.reduce(([x, y], p) => [x + p[0] / s.length, y + p[1] / s.length], [0, 0]);
    m = [0, 0, cx, 0, 0, cy];
  }
  let sum = 0;
  e.forEach((p, i) => {
    const [x, y] = applyAffine(m, p);
    sum += Math.hypot(x - s[i][0], y - s[i][1]);
  });
  const [l, r] = EYE_OUTER;
  return sum / s.length / (Math.hypot(s[r][0] - s[l][0], s[r][1] - s[l][1]) || 1);
}

/** Wrapped absolute difference of two angles in degrees (0..180). */
export const angleDelta = (a: number, b: number) => Math.abs(((((b - a) % 360) + 540) % 360) - 180);

interface Side { mesh: Point3[]; face: number; pose: HeadPose }

class PoseScorer extends ModelScorer {
  readonly name = 'pose';
  /** The 468 landmarks of each face (in its image's pixels) and the model's face confidence. */
  async mesh(items: { img: RgbImage; face: FaceDetection }[]): Promise<{ mesh: Point3[]; face: number }[]> {
    if (items.length === 0) return [];
    const per = SIZE * SIZE * 3;
    const input = new Float32Array(per * items.length);
    const crops = items.map(({ img, face }, i) => {
      const crop = faceCrop(img, face, CROP_SCALE, SIZE);
      for (let j = 0; j < per; j++) input[i * per + j] = crop.data[j] / 255;
      return crop;
    });
    const [mesh, flag] = await this.model.run({ [spec.input]: { data: input, dims: [items.length, SIZE, SIZE, 3] } }, ['output_mesh', 'output_faceflag']);
    return crops.map((c, i) => {
      const m = c.toImage;
      const points: Point3[] = [];
      for (let p = 0; p < 468; p++) {
        const [u, v, z] = mesh.data.subarray(i * 1404 + p * 3, i * 1404 + p * 3 + 3);
        points.push([m[0] * u + m[1] * v + m[2], m[3] * u + m[4] * v + m[5], z * c.scale]);
      }
      return { mesh: points, face: flag.data[i] };
    });
  }

  async score(pair: PairInput): Promise<ScorerResult> {
    const wanted = [[pair.source, pair.faces.sourceFace], [pair.edited, pair.faces.editedFace]] as const;
    const items = wanted.flatMap(([img, face]) => (face ? [{ img, face }] : []));
    const found = (await this.mesh(items)).map((r): Side => ({ ...r, pose: headPose(r.mesh) }));
    const s = pair.faces.sourceFace ? found[0] : null;
    const e = pair.faces.editedFace ? found[s ? 1 : 0] : null;
    const scores: Record<string, number | null> = Object.fromEntries(SCORE_NAMES.pose.map((n) => [n, null]));
    for (const [side, v] of [['source', s], ['edited', e]] as const) {
      if (!v) continue;
      scores[`pose.${side}_yaw`] = v.pose.yaw;
      scores[`pose.${side}_pitch`] = v.pose.pitch;
      scores[`pose.${side}_roll`] = v.pose.roll;
      scores[`pose.${side}_face`] = v.face;
    }
    for (const angle of ['yaw', 'pitch', 'roll'] as const) scores[`pose.${angle}_delta`] = both(s?.pose[angle] ?? null, e?.pose[angle] ?? null, angleDelta);
    scores['pose.landmark_distance'] = s && e ? landmarkDistance(s.mesh, e.mesh) : null;
    return { scores, texts: {} };
  }
}

export async function openPoseScorer(path: string, runtime: RuntimeConfig): Promise<Scorer> {
  return new PoseScorer(await OnnxModel.open(path, runtime));
}
