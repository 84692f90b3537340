import type { FaceDetection, RgbImage } from '../types.ts';
import type { OnnxModel } from '../onnx/model.ts';
import type { ScorerName } from './config.ts';

/** The faces the identity stage found and described, so no scorer detects a face again. */
export interface PairFaces {
  /** The face the identity stage compared on each side (its largest), null when it found none. */
  sourceFace: FaceDetection | null;
  editedFace: FaceDetection | null;
  /** faceres's age head on those faces (identity stage, packaged embedder); null or absent otherwise. */
  sourceAge?: number | null;
  editedAge?: number | null;
}

/** One pair as every scorer sees it: decoded RGB images, the identity stage's faces, the pair's text. */
export interface PairInput {
  source: RgbImage;
  edited: RgbImage;
  faces: PairFaces;
  instruction: string;
  category: string;
  /** The source image's caption and the edited image's (the target prompt), for the clip scorer; absent or '': its text numbers are null. */
  sourcePrompt?: string;
  targetPrompt?: string;
}

export interface ScorerResult {
  /** Exactly the scorer's SCORE_NAMES, null where it could not measure. */
  scores: Record<string, number | null>;
  /** Exactly the scorer's TEXT_NAMES (e.g. a hash in hex). */
  texts: Record<string, string | null>;
}

export interface Scorer {
  readonly name: ScorerName;
  /** The ONNX files this scorer opened (none for the closed-form ones). */
  readonly models: string[];
  score(pair: PairInput): Promise<ScorerResult>;
  close(): Promise<void>;
}

/** A score from two sides, null unless both are known. */
export const both = (a: number | null, b: number | null, f: (a: number, b: number) => number): number | null => (a === null || b === null ? null : f(a, b));

/** A scorer that runs one ONNX model: it names that model's file and releases its session on close. */
export abstract class ModelScorer implements Scorer {
  abstract readonly name: ScorerName;
  constructor(protected readonly model: OnnxModel) {}

  get models(): string[] {
    return [this.model.path];
  }

  abstract score(pair: PairInput): Promise<ScorerResult>;

  close(): Promise<void> {
    return this.model.release();
  }
}
