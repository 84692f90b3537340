import { digestFiles } from '../util/digest.ts';
import type { FaceDetection, IdentityScore, IdentityScorer, RgbImage, StageInfo } from '../types.ts';
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

  /** The faces and their similarity; accepting or rejecting is src/candidates/verdict.ts's. */
  async score(source: RgbImage, edited: RgbImage): Promise<IdentityScore> {
    const s = await this.side(source);
    const e = await this.side(edited);
    const score: IdentityScore = {
      similarity: null, sourceFaces: s.faces.length, editedFaces: e.faces.length,
      sourceFace: s.face, editedFace: e.face, faceProblem: s.problem ? `${s.problem}_source` : e.problem ? `${e.problem}_edited` : null,
    };
    if (s.face && e.face) {
      const [a, b] = await this.embedder.describe([this.embedder.align(source, s.face), this.embedder.align(edited, e.face)]);
      score.similarity = cosine(a.embedding, b.embedding);
      score.sourceAge = a.age;
      score.editedAge = b.age;
    }
    return score;
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
