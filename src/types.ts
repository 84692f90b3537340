/**
 * The contracts between pipeline stages. Data flows one way:
 * prompts → plan → sample (Teacher) → score (IdentityScorer) → write → commit → finalize.
 * Each stage module imports these types; none imports a later stage.
 */

/** An 8-bit RGB image, row-major HWC, data.length === width * height * 3. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** One candidate pair to generate: everything the teacher and scorer need, nothing about shards. */
export interface CandidateSpec {
  /** Stable id: hash of (run seed, prompt id, sample index); never depends on shard layout. */
  pairId: string;
  /** Position of the candidate in the run (0-based); decides its shard. */
  index: number;
  /** Per-pair seed in [0, 2^53): hash of (run seed, prompt id, sample index). See src/candidates/seeds.ts. */
  seed: number;
  promptId: string;
  /** Which repetition of this prompt this candidate is (0 for the first). */
  sampleIndex: number;
  category: string;
  sourcePrompt: string;
  instruction: string;
  targetPrompt: string;
  /** Per-category identity threshold from the prompt set, when it sets one. */
  identityThreshold: number | null;
  /** The prompt set's extra per-edit values (e.g. the reference teacher's edit name), JSON-able. */
  attributes: Record<string, string>;
}

/** What the teacher made for one candidate. */
export interface GeneratedPair {
  source: RgbImage;
  edited: RgbImage;
  /** Teacher-specific facts recorded with the pair (flat, JSON-able), e.g. a ground-truth bank item. */
  extra?: Record<string, string | number | boolean | null>;
}

/** Provenance of a model-backed stage, recorded in run.json and in every pair row. */
export interface StageInfo {
  /** e.g. "diffusers:tiny-sd" or "reference-bank". */
  name: string;
  /** sha256 over the model files (hex), or "" when the stage has no model files. */
  modelDigest: string;
  /** Every setting that changes the output (scheduler, steps, guidance, size...), JSON-able. */
  settings: Record<string, unknown>;
}

/**
 * Facts about a generated pair that only the model that made it can know (the demo's reference teacher
 * knows which face each image is), recorded in the pair's `extra` column. `identity_kept` is the ground
 * truth the identity filter is measured against (precision and recall in stats.json).
 */
export interface PairLabel {
  [fact: string]: string | number | boolean;
  identity_kept: boolean;
}

export interface PairLabeller {
  /** `spec` is the candidate the pair was made for (what was asked: its prompts and attributes). */
  label(source: RgbImage, edited: RgbImage, spec: CandidateSpec): PairLabel;
}

/**
 * A hook of the teacher: a labeller the teacher's worker thread loads and applies to every pair it makes.
 * `module` (a file URL) exports `createLabeller(arg: string): Promise<PairLabeller>`; it runs beside the
 * models, so the images are labelled before they leave the worker.
 */
export interface LabellerHook {
  module: string;
  arg: string;
}

export interface Teacher {
  readonly info: StageInfo;
  /** Generate pairs for a batch of candidates, in the same order. Must be a pure function of the specs. */
  generate(specs: CandidateSpec[]): Promise<GeneratedPair[]>;
  close(): Promise<void>;
}

export interface FaceDetection {
  /** [x1, y1, x2, y2] in pixels of the scored image. */
  box: [number, number, number, number];
  score: number;
  /** Landmarks in pixels (5 for ArcFace-style alignment; the detector's own count otherwise). */
  keypoints: [number, number][];
}

/** What the identity stage measures for one pair; src/candidates/verdict.ts judges it. */
export interface IdentityScore {
  /** Cosine similarity of the two chosen faces' embeddings, null when either image has no usable face. */
  similarity: number | null;
  sourceFaces: number;
  editedFaces: number;
  sourceFace: FaceDetection | null;
  editedFace: FaceDetection | null;
  /** Why the faces could not be compared, e.g. "no_face_edited", "multiple_faces_source"; null when they were. */
  faceProblem: string | null;
  /** The embedder's age of each compared face (faceres's age head), when it has one; for the age scorer. */
  sourceAge?: number | null;
  editedAge?: number | null;
}

/** The identity result recorded for one pair (its score and verdict); every field is recorded, rejects included. */
export interface IdentityVerdict extends Omit<IdentityScore, 'faceProblem'> {
  /** The threshold this pair was judged against (global or per category). */
  threshold: number;
  accepted: boolean;
  /** Short machine-readable reason, null when accepted, e.g. "identity_below_threshold", "no_face_edited". */
  rejectReason: string | null;
}

export interface IdentityScorer {
  readonly info: StageInfo;
  score(source: RgbImage, edited: RgbImage, spec: CandidateSpec): Promise<IdentityScore>;
  close(): Promise<void>;
}
