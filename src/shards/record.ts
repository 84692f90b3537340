import { Binary, Bool, Field, Float32, Float64, Int32, Int64, List, Schema, Struct, Utf8, type DataType } from 'apache-arrow';
import type { CandidateSpec, FaceDetection, IdentityVerdict, StageInfo } from '../types.ts';
import type { ImageFormat } from '../image/encode.ts';
import { SCORER_NAMES, scoreColumn, scoreColumns, type ScorerName } from '../scorers/config.ts';
export type { ImageFormat };

/**
 * The pair record: one row of a shard. Property names ARE the column names; `pairSchema` below is the
 * single source of truth for their order and types (the Parquet schema, the Hugging Face features
 * and the manifest schema are all derived from it). manifests/schema.md documents every column.
 */

/** A Hugging Face `Image` cell: the encoded file bytes and a file name (datasets' struct<bytes, path>). */
export interface ImageCell {
  bytes: Uint8Array;
  path: string | null;
}

/**
 * The pair scorers' columns (docs/scorers.md): `<scorer>_<score>` for each score of each scorer the run
 * enabled, float64 numbers and utf8 texts, null where the scorer could not measure. A run without
 * scorers has none of them.
 */
export type ScoreColumns = { [column: `${ScorerName}_${string}`]: number | string | null };

export interface PairRecord extends ScoreColumns {
  pair_id: string;
  run_id: string;
  shard: number;
  index: number;
  prompt_id: string;
  sample_index: number;
  category: string;
  /** train / validation / test, by a hash of pair_id (src/dataset/splits.ts). */
  split: string;
  source_prompt: string;
  instruction: string;
  target_prompt: string;
  attributes: Record<string, string>;
  seed: number;
  teacher: string;
  teacher_digest: string;
  sampler: Record<string, unknown>;
  identity_model: string;
  identity_digest: string;
  identity_settings: Record<string, unknown>;
  code_version: string;
  width: number;
  height: number;
  image_format: ImageFormat;
  /** Present in shards (accepted pairs); rejects files drop both image columns, so null is fine there. */
  source_image: ImageCell | null;
  edited_image: ImageCell | null;
  identity_similarity: number | null;
  identity_threshold: number;
  source_faces: number;
  edited_faces: number;
  source_face_box: number[] | null;
  source_face_score: number | null;
  source_face_keypoints: number[] | null;
  edited_face_box: number[] | null;
  edited_face_score: number | null;
  edited_face_keypoints: number[] | null;
  accepted: boolean;
  reject_reason: string | null;
  extra: Record<string, string | number | boolean | null>;
  /** Derived runs (regenerate): the pair this one was made from; null in ordinary runs. */
  parent_pair_id: string | null;
  /** Derived runs: the settings that differ from the parent's, {"key.path": {from, to}}; {} otherwise. */
  changes: Record<string, unknown>;
}

/** Where a regenerated pair came from (src/candidates/table.ts). */
export interface Lineage {
  parentPairId: string | null;
  changes: Record<string, unknown>;
}

/** A candidate read from a candidate table carries its lineage into its record. */
export type LineageSpec = CandidateSpec & { lineage?: Lineage };

/** Field metadata key marking a utf8 column that holds canonical JSON (an object in PairRecord). */
export const JSON_FIELD = 'pairgen:json';
const json = new Map([[JSON_FIELD, 'true']]);

const utf8 = (name: string, nullable = false) => new Field(name, new Utf8(), nullable);
const jsonText = (name: string) => new Field(name, new Utf8(), false, json);
const int32 = (name: string) => new Field(name, new Int32(), false);
const int64 = (name: string) => new Field(name, new Int64(), false);
// Hugging Face's Image feature is struct<bytes: binary, path: string> with every level nullable;
// `datasets` only recognises the column as an Image when the Arrow field matches that exactly.
const image = (name: string) =>
  new Field(name, new Struct([new Field('bytes', new Binary(), true), new Field('path', new Utf8(), true)]), true);
const floats = (name: string) => new Field(name, new List(new Field('element', new Float32(), true)), true);

export const IMAGE_COLUMNS = ['source_image', 'edited_image'] as const;

export const pairSchema = new Schema([
  utf8('pair_id'),
  utf8('run_id'),
  int32('shard'),
  int64('index'),
  utf8('prompt_id'),
  int32('sample_index'),
  utf8('category'),
  utf8('split'),
  utf8('source_prompt'),
  utf8('instruction'),
  utf8('target_prompt'),
  jsonText('attributes'),
  int64('seed'),
  utf8('teacher'),
  utf8('teacher_digest'),
  jsonText('sampler'),
  utf8('identity_model'),
  utf8('identity_digest'),
  jsonText('identity_settings'),
  utf8('code_version'),
  int32('width'),
  int32('height'),
  utf8('image_format'),
  image('source_image'),
  image('edited_image'),
  new Field('identity_similarity', new Float64(), true),
  new Field('identity_threshold', new Float64(), false),
  int32('source_faces'),
  int32('edited_faces'),
  floats('source_face_box'),
  new Field('source_face_score', new Float32(), true),
  floats('source_face_keypoints'),
  floats('edited_face_box'),
  new Field('edited_face_score', new Float32(), true),
  floats('edited_face_keypoints'),
  new Field('accepted', new Bool(), false),
  utf8('reject_reason', true),
  jsonText('extra'),
  utf8('parent_pair_id', true),
  jsonText('changes'),
]);

/** Every column but the image bytes: the rejects files. */
export const rejectsSchema = new Schema(pairSchema.fields.filter((f) => !(IMAGE_COLUMNS as readonly string[]).includes(f.name)));

/** The score columns of a run's scorers, after the fixed columns. */
export function scoreFields(enabled: readonly ScorerName[]): Field[] {
  return scoreColumns(enabled).map((c) => new Field(c.column, c.kind === 'number' ? new Float64() : new Utf8(), true));
}

/** Manifest column (runs with the duplicates scorer): the earlier accepted pair whose source this one nearly copies. */
export const DUPLICATE_OF = 'duplicate_of';

/** The three schemas of one run: its data files, its rejects files and its manifest. */
export interface RunSchemas {
  pair: Schema;
  rejects: Schema;
  manifest: Schema;
}

const schemasByScorers = new Map<string, RunSchemas>();

/** The schemas of a run whose scorers are `enabled` (none: the fixed columns only). */
export function runSchemas(enabled: readonly ScorerName[] = []): RunSchemas {
  const key = enabled.join();
  let schemas = schemasByScorers.get(key);
  if (!schemas) {
    const scores = scoreFields(enabled);
    const rejects = new Schema([...rejectsSchema.fields, ...scores]);
    // With the duplicates scorer, finalize marks near-duplicate sources across the run in the manifest.
    const marks = enabled.includes('duplicates') ? [utf8(DUPLICATE_OF, true)] : [];
    schemas = { pair: new Schema([...pairSchema.fields, ...scores]), rejects, manifest: new Schema([...rejects.fields, utf8('file'), int64('file_row'), ...marks]) };
    schemasByScorers.set(key, schemas);
  }
  return schemas;
}

/** The scorers whose columns a file holds (by its column names), in scorer order. */
export function scorersInColumns(columns: Iterable<string>): ScorerName[] {
  const names = new Set(columns);
  return SCORER_NAMES.filter((s) => scoreColumns([s]).some((c) => names.has(c.column)));
}

/** A manifest row: a record without its images, plus where it is stored. */
export type ManifestRow = Omit<PairRecord, 'source_image' | 'edited_image'> & {
  /** The data file holding the row, relative to the run root, e.g. "data/train-00000-of-00004.parquet". */
  file: string;
  /** The row's position in that file (0-based). */
  file_row: number;
};

export const manifestSchema = new Schema([
  ...rejectsSchema.fields,
  utf8('file'),
  int64('file_row'),
]);

export function isJsonField(f: Field<DataType>): boolean {
  return f.metadata.get(JSON_FIELD) === 'true';
}

/** The file extension `datasets` and image viewers expect for a format. */
export function imageExtension(format: ImageFormat): string {
  return format === 'jpeg' ? 'jpg' : format;
}

function faceColumns(face: FaceDetection | null) {
  return {
    box: face ? [...face.box] : null,
    score: face ? face.score : null,
    keypoints: face ? face.keypoints.flat() : null,
  };
}

export interface RecordParts {
  spec: LineageSpec;
  runId: string;
  shard: number;
  split: string;
  teacher: StageInfo;
  identity: StageInfo;
  codeVersion: string;
  verdict: IdentityVerdict;
  width: number;
  height: number;
  imageFormat: ImageFormat;
  /** Encoded images (see encodeImage); null for a reject whose images are not kept. */
  images: { source: Uint8Array; edited: Uint8Array } | null;
  extra?: Record<string, string | number | boolean | null>;
  /** The enabled scorers' numbers and texts by score name (`edit.magnitude`); each becomes its column. */
  scores?: Record<string, number | string | null>;
}

/** Assemble a PairRecord from the stage outputs for one candidate. Image paths are "<pair_id>_source.<ext>". */
export function toPairRecord(p: RecordParts): PairRecord {
  const ext = imageExtension(p.imageFormat);
  const src = faceColumns(p.verdict.sourceFace);
  const edt = faceColumns(p.verdict.editedFace);
  return {
    pair_id: p.spec.pairId,
    run_id: p.runId,
    shard: p.shard,
    index: p.spec.index,
    prompt_id: p.spec.promptId,
    sample_index: p.spec.sampleIndex,
    category: p.spec.category,
    split: p.split,
    source_prompt: p.spec.sourcePrompt,
    instruction: p.spec.instruction,
    target_prompt: p.spec.targetPrompt,
    attributes: p.spec.attributes,
    seed: p.spec.seed,
    teacher: p.teacher.name,
    teacher_digest: p.teacher.modelDigest,
    sampler: p.teacher.settings,
    identity_model: p.identity.name,
    identity_digest: p.identity.modelDigest,
    identity_settings: p.identity.settings,
    code_version: p.codeVersion,
    width: p.width,
    height: p.height,
    image_format: p.imageFormat,
    source_image: p.images ? { bytes: p.images.source, path: `${p.spec.pairId}_source.${ext}` } : null,
    edited_image: p.images ? { bytes: p.images.edited, path: `${p.spec.pairId}_edited.${ext}` } : null,
    identity_similarity: p.verdict.similarity,
    identity_threshold: p.verdict.threshold,
    source_faces: p.verdict.sourceFaces,
    edited_faces: p.verdict.editedFaces,
    source_face_box: src.box,
    source_face_score: src.score,
    source_face_keypoints: src.keypoints,
    edited_face_box: edt.box,
    edited_face_score: edt.score,
    edited_face_keypoints: edt.keypoints,
    accepted: p.verdict.accepted,
    reject_reason: p.verdict.rejectReason,
    extra: p.extra ?? {},
    parent_pair_id: p.spec.lineage?.parentPairId ?? null,
    changes: p.spec.lineage?.changes ?? {},
    ...scoreCells(p.scores ?? {}),
  };
}

function scoreCells(scores: Record<string, number | string | null>): ScoreColumns {
  const out: ScoreColumns = {};
  for (const [name, v] of Object.entries(scores)) out[scoreColumn(name) as keyof ScoreColumns] = v;
  return out;
}

/** A column's line for the dataset card and docs: the fixed columns' own, or the score it holds. */
export function describeColumn(name: string): string {
  if (columnDescriptions[name]) return columnDescriptions[name];
  const scorer = name.slice(0, name.indexOf('_'));
  return `Score ${scorer}.${name.slice(scorer.length + 1)} of the ${scorer} scorer (docs/scorers.md); null where it could not be measured.`;
}

/** One line per column, for the dataset card and manifests/schema.md (a test keeps them in step with pairSchema). */
export const columnDescriptions: Record<string, string> = {
  pair_id: 'Stable pair id: hash of (run seed, prompt id, sample index); never depends on the shard layout.',
  run_id: 'Id of the run that produced the pair (as recorded in run.json).',
  shard: 'Shard number the pair was generated in.',
  index: 'Position of the candidate in the run (0-based); decides its shard.',
  prompt_id: 'Id of the prompt in the expanded prompt table (prompts.parquet).',
  sample_index: 'Which repetition of this prompt the candidate is (0 for the first).',
  category: 'Edit category from the prompt set (e.g. hair, expression, style).',
  source_prompt: 'Text prompt the source portrait was generated from.',
  instruction: 'The edit instruction (what a model trained on the pair is asked to do).',
  target_prompt: 'Text prompt describing the edited portrait.',
  attributes: 'JSON object: the prompt set\'s extra per-edit values.',
  seed: 'Per-pair seed in [0, 2^53): hash of (run seed, prompt id, sample index).',
  teacher: 'Teacher (generator) name, e.g. "diffusers:tiny-sd".',
  teacher_digest: 'sha256 over the teacher\'s model files ("" when it has none).',
  sampler: 'JSON object: every teacher setting that changes the output (scheduler, steps, guidance, size...).',
  identity_model: 'Identity scorer name (face detector + embedder).',
  identity_digest: 'sha256 over the identity model files.',
  identity_settings: 'JSON object: every identity-scoring setting (detector thresholds, alignment...).',
  code_version: 'pairgen version (and git commit when known) that wrote the pair.',
  width: 'Image width in pixels (both images).',
  height: 'Image height in pixels (both images).',
  image_format: 'Encoding of both images: jpeg, png or webp.',
  source_image: 'Source portrait, Hugging Face Image struct<bytes, path>; path is "<pair_id>_source.<ext>". Not in rejects files or the manifest.',
  edited_image: 'Edited portrait, Hugging Face Image struct<bytes, path>; path is "<pair_id>_edited.<ext>". Not in rejects files or the manifest.',
  identity_similarity: 'Cosine similarity of the two chosen faces\' embeddings; null when either image has no usable face.',
  identity_threshold: 'Threshold the pair was judged against (global or per category).',
  source_faces: 'Number of faces detected in the source image.',
  edited_faces: 'Number of faces detected in the edited image.',
  source_face_box: '[x1, y1, x2, y2] in pixels of the chosen source face; null when none.',
  source_face_score: 'Detector confidence of the chosen source face; null when none.',
  source_face_keypoints: 'Landmarks of the chosen source face, flattened [x0, y0, x1, y1, ...] in pixels; null when none.',
  edited_face_box: '[x1, y1, x2, y2] in pixels of the chosen edited face; null when none.',
  edited_face_score: 'Detector confidence of the chosen edited face; null when none.',
  edited_face_keypoints: 'Landmarks of the chosen edited face, flattened [x0, y0, ...] in pixels; null when none.',
  accepted: 'Whether the pair passed the filters (always true in shards, false in rejects files).',
  reject_reason: 'Short machine-readable reason, e.g. identity_below_threshold, no_face_edited; null when accepted.',
  extra: 'JSON object: teacher-specific facts recorded with the pair.',
  file: 'Manifest only: the data file holding the row, relative to the run root.',
  duplicate_of: 'Manifest only, runs with the duplicates scorer: the pair_id of the earliest accepted pair (in pair_id order) whose source dHash is within 6 bits of this pair\'s, null when none (docs/scorers.md, duplicates).',
  file_row: 'Manifest only: the row\'s position in that file (0-based).',
  parent_pair_id: 'Regenerated pairs: the pair_id of the pair this one was regenerated from; null in ordinary runs.',
  changes: 'JSON object: regenerated pairs: the settings that differ from the parent run, {"key.path": {"from": old, "to": new}}; {} otherwise.',
  split: 'train, validation or test, by a hash of pair_id (stable as the dataset grows; fractions in run.json `splits` or the defaults); the data files of a split are data/<split>-*.parquet.',
};
