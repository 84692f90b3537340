import sharp from 'sharp';
import type { FaceDetection, RgbImage } from '../types.ts';
import { deltaE, faceCrop, toLab } from './pixels.ts';
import type { PairInput, Scorer, ScorerResult } from './scorer.ts';

/** Longer side of the grid whole images are compared on. */
export const GRID = 256;
const FACE_SIZE = 64;
const FACE_SCALE = 1.2;
/** ΔE above which a pixel counts as changed (about 4× the just-noticeable difference). */
export const CHANGED_DELTA_E = 10;

/** The grid both images are compared on: the source's aspect ratio, longer side GRID. */
export function gridSize(source: RgbImage): { width: number; height: number } {
  const k = GRID / Math.max(source.width, source.height);
  return { width: Math.max(1, Math.round(source.width * k)), height: Math.max(1, Math.round(source.height * k)) };
}

/** An image resized (sharp's Lanczos, aspect ignored) to the grid, in CIELAB. */
export async function labOnGrid(img: RgbImage, size: { width: number; height: number }): Promise<Float32Array> {
  const rgb = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).resize(size.width, size.height, { fit: 'fill' }).raw().toBuffer();
  return toLab(rgb, size.width * size.height);
}

type GridDelta = { delta: Float32Array; width: number; height: number };
// scorePair hands every scorer the same pair object: the edit and background scorers share one grid.
const grids = new WeakMap<PairInput, Promise<GridDelta>>();

/** ΔE*ab per grid pixel between the source and the edited image (computed once per pair object). */
export function gridDeltaE(pair: PairInput): Promise<GridDelta> {
  let grid = grids.get(pair);
  if (!grid) {
    const size = gridSize(pair.source);
    grid = Promise.all([labOnGrid(pair.source, size), labOnGrid(pair.edited, size)]).then(([a, b]) => ({ delta: deltaE(a, b), ...size }));
    grids.set(pair, grid);
  }
  return grid;
}

const mean = (v: Float32Array) => v.reduce((s, x) => s + x, 0) / (v.length || 1);

/** Boxes overlapping at least this much are the same face in the same place (detector jitter aside). */
export const SAME_PLACE_IOU = 0.7;

function iou(a: FaceDetection['box'], b: FaceDetection['box']): number {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]), h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || h <= 0) return 0;
  const area = (r: FaceDetection['box']) => (r[2] - r[0]) * (r[3] - r[1]);
  return (w * h) / (area(a) + area(b) - w * h);
}

/**
 * The face region to cut from the edited image: the source's (scaled to the edited image's size) when
 * the edited face is in the same place, so the detector's jitter of a few pixels (up to ~7% of the box
 * between two runs on slightly different images) is not measured as change; the edited face's own when
 * it moved.
 */
export function editedFaceRegion(pair: PairInput): FaceDetection | null {
  const { sourceFace: s, editedFace: e } = pair.faces;
  if (!s || !e) return null;
  const kx = pair.edited.width / pair.source.width, ky = pair.edited.height / pair.source.height;
  const moved: FaceDetection = { ...s, box: [s.box[0] * kx, s.box[1] * ky, s.box[2] * kx, s.box[3] * ky], keypoints: s.keypoints.map(([x, y]) => [x * kx, y * ky]) };
  return iou(moved.box, e.box) >= SAME_PLACE_IOU ? moved : e;
}

class EditScorer implements Scorer {
  readonly name = 'edit';
  readonly models: string[] = [];

  async score(pair: PairInput): Promise<ScorerResult> {
    const { delta } = await gridDeltaE(pair);
    let changed = 0;
    for (const d of delta) if (d > CHANGED_DELTA_E) changed++;
    const editedFace = editedFaceRegion(pair);
    let face: number | null = null;
    if (pair.faces.sourceFace && editedFace) {
      const n = FACE_SIZE * FACE_SIZE;
      const a = toLab(faceCrop(pair.source, pair.faces.sourceFace, FACE_SCALE, FACE_SIZE).data, n);
      const b = toLab(faceCrop(pair.edited, editedFace, FACE_SCALE, FACE_SIZE).data, n);
      face = mean(deltaE(a, b)) / 100;
    }
    return { scores: { 'edit.magnitude': mean(delta) / 100, 'edit.changed_fraction': changed / delta.length, 'edit.face_magnitude': face }, texts: {} };
  }

  async close(): Promise<void> {}
}

export function openEditScorer(): Scorer {
  return new EditScorer();
}
