import { digestFiles } from '../util/digest.ts';
import type { CandidateSpec, FaceDetection, IdentityScorer, IdentityVerdict, RgbImage, StageInfo } from '../types.ts';
import type { RuntimeConfig } from '../onnx/session.ts';
import type { IdentityConfig } from './config.ts';
import type { FaceDetector } from './detector.ts';
import { cosine, type FaceEmbedder } from './embedder.ts';
import { identityModelFiles, openDetector, openEmbedder } from './models.ts';
import { boxArea } from './nms.ts';

/** Faces large enough to count, best first. */
export function countableFaces(faces: FaceDetection[], minSize: number): FaceDetection[] {
  return faces.filter((f) => Math.min(f.box[2] - f.box[0], f.box[3] - f.box[1]) >= minSize);
}

export function largestFace(faces: FaceDetection[]): FaceDetection | null {
  let best: FaceDetection | null = null;
  for (const f of faces) if (!best || boxArea(f.box) > boxArea(best.box)) best = f;
  return best;
}

/** The threshold a candidate is judged against: config category map, then the prompt set's, then global. */
export function thresholdFor(config: IdentityConfig, spec: Pick<CandidateSpec, 'category' | 'identityThreshold'>): number {
  return config.category_thresholds[spec.category] ?? spec.identityThreshold ?? config.threshold;
}

function validImage(img: RgbImage): boolean {
  return Number.isInteger(img.width) && Number.isInteger(img.height) && img.width > 0 && img.height > 0 && img.data?.length === img.width * img.height * 3;
}

class Scorer implements IdentityScorer {
  constructor(readonly info: StageInfo, private readonly config: IdentityConfig, private readonly detector: FaceDetector, private readonly embedder: FaceEmbedder) {}

  private async side(img: RgbImage): Promise<{ faces: FaceDetection[]; face: FaceDetection | null; problem: string | null }> {
    if (!validImage(img)) return { faces: [], face: null, problem: 'invalid_image' };
    const faces = countableFaces(await this.detector.detect(img), this.config.min_face_size);
    if (faces.length === 0) return { faces, face: null, problem: 'no_face' };
    if (this.config.face_rule === 'single' && faces.length > 1) return { faces, face: null, problem: 'multiple_faces' };
    return { faces, face: largestFace(faces), problem: null };
  }

  async score(source: RgbImage, edited: RgbImage, spec: CandidateSpec): Promise<IdentityVerdict> {
    const threshold = thresholdFor(this.config, spec);
    const s = await this.side(source);
    const e = await this.side(edited);
    const verdict: IdentityVerdict = {
      similarity: null, sourceFaces: s.faces.length, editedFaces: e.faces.length,
      sourceFace: s.face, editedFace: e.face, threshold, accepted: false, rejectReason: null,
    };
    if (s.face && e.face) {
      const [a, b] = await this.embedder.embed([this.embedder.align(source, s.face), this.embedder.align(edited, e.face)]);
      verdict.similarity = cosine(a, b);
    }
    if (s.problem) verdict.rejectReason = `${s.problem}_source`;
    else if (e.problem) verdict.rejectReason = `${e.problem}_edited`;
    else if ((verdict.similarity as number) < threshold) verdict.rejectReason = 'identity_below_threshold';
    verdict.accepted = verdict.rejectReason === null;
    return verdict;
  }

  async close(): Promise<void> {
    await this.detector.close();
    await this.embedder.close();
  }
}

export async function createIdentityScorer(config: IdentityConfig, runtime: RuntimeConfig): Promise<IdentityScorer> {
  const files = identityModelFiles(config);
  const detector = await openDetector(config, runtime);
  let embedder: FaceEmbedder;
  try {
    embedder = await openEmbedder(config, runtime);
  } catch (e) {
    await detector.close();
    throw e;
  }
  const info: StageInfo = {
    name: `identity:${detector.name}+${embedder.name}`,
    modelDigest: (await digestFiles(files)).digest,
    settings: {
      threshold: config.threshold, category_thresholds: config.category_thresholds, face_rule: config.face_rule,
      min_face_size: config.min_face_size, detector: { ...config.detector, model: undefined }, embedder: { kind: config.embedder.kind },
    },
  };
  return new Scorer(info, config, detector, embedder);
}
