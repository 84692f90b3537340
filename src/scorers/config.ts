import { UserError } from '../errors.ts';
import { EMOTION_LABELS, NSFW_LABELS } from './labels.ts';

/**
 * Which pair scorers run. Every score a scorer returns is named `<scorer>.<score>`, so a rule's score
 * name tells which scorer it needs. The pipeline config's `scorers` section is this type.
 */
export const SCORER_NAMES = ['pose', 'expression', 'age', 'edit', 'background', 'quality', 'safety', 'duplicates', 'clip'] as const;
export type ScorerName = (typeof SCORER_NAMES)[number];

export interface ScorersConfig {
  /** The scorers to run, in this order; the others open no session and cost nothing. */
  enabled: ScorerName[];
  /** A CLIP ONNX export folder (docs/clip.md); required when clip is enabled. */
  clip_model?: string;
}

/** Every scorer whose model ships with pairgen: clip needs a CLIP export the user brings (clip_model). */
export const DEFAULT_SCORERS: ScorersConfig = { enabled: SCORER_NAMES.filter((n) => n !== 'clip') };

const sides = (names: readonly string[]) => ['source', 'edited'].flatMap((side) => names.map((n) => `${side}_${n}`));

/**
 * Every number each scorer returns, known without opening a model (for rule validation at plan time and
 * for the columns of shards and the manifest). A scorer returns exactly these keys, null where it cannot
 * measure (no face on a side, no age head).
 */
export const SCORE_NAMES: Record<ScorerName, readonly string[]> = {
  pose: [...sides(['yaw', 'pitch', 'roll', 'face']), 'yaw_delta', 'pitch_delta', 'roll_delta', 'landmark_distance'].map((n) => `pose.${n}`),
  expression: [...sides(EMOTION_LABELS), ...EMOTION_LABELS.map((l) => `${l}_gain`)].map((n) => `expression.${n}`),
  age: ['source', 'edited', 'delta'].map((n) => `age.${n}`),
  edit: ['magnitude', 'changed_fraction', 'face_magnitude'].map((n) => `edit.${n}`),
  background: ['change', 'fraction'].map((n) => `background.${n}`),
  quality: [...sides(['sharpness', 'noise', 'clipped']), 'sharpness_ratio'].map((n) => `quality.${n}`),
  safety: sides(NSFW_LABELS).map((n) => `safety.${n}`),
  duplicates: [],
  clip: ['source_caption', 'edited_caption', 'directional', 'image'].map((n) => `clip.${n}`),
};

/** Strings a scorer returns beside its numbers (a hash cannot be a float64 column). */
export const TEXT_NAMES: Record<ScorerName, readonly string[]> = {
  pose: [], expression: [], age: [], edit: [], background: [], quality: [], safety: [],
  duplicates: ['duplicates.source_dhash'],
  clip: [],
};

/** The section's JSON schema (for src/config/schema.ts, as identity's is composed there); defaults are DEFAULT_SCORERS's. */
export const scorersConfigSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'The pair scorers (docs/scorers.md): named numbers about each pair beyond identity. Scorers not listed cost nothing.',
  properties: {
    enabled: {
      type: 'array', uniqueItems: true, items: { enum: [...SCORER_NAMES] }, default: [...DEFAULT_SCORERS.enabled],
      description: `Scorers to run, in order: ${SCORER_NAMES.join(', ')} (clip needs clip_model). Default: all but clip.`,
    },
    clip_model: {
      type: 'string',
      'x-path': true,
      description: 'Folder of a CLIP ONNX export (optimum-cli export onnx, or text_model.onnx + vision_model.onnx) with its tokenizer files, relative to the config file; required when clip is enabled (docs/clip.md).',
    },
  },
  // clip reads the user's CLIP export: enabling it without one is refused (x-message: the error the loader prints).
  if: { properties: { enabled: { contains: { const: 'clip' } } }, required: ['enabled'] },
  then: { required: ['clip_model'] },
} as const;

/** The `scorers` section of a config, checked without the schema (for callers that have no validator): unknown or repeated scorer names are user errors naming `where`. */
export function parseScorersConfig(value: unknown, where = 'scorers'): ScorersConfig {
  if (value === undefined) return { enabled: [...DEFAULT_SCORERS.enabled] };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UserError(`${where}: expected an object like {enabled: [${SCORER_NAMES.join(', ')}]}`);
  const extra = Object.keys(value).filter((k) => k !== 'enabled' && k !== 'clip_model');
  if (extra.length) throw new UserError(`${where}: unknown key ${extra.join(', ')} (known: enabled, clip_model)`);
  const clipModel = (value as { clip_model?: unknown }).clip_model;
  if (clipModel !== undefined && typeof clipModel !== 'string') throw new UserError(`${where}.clip_model: expected the path of a CLIP ONNX export folder (docs/clip.md)`);
  const withClip = (c: ScorersConfig): ScorersConfig => (clipModel === undefined ? c : { ...c, clip_model: clipModel });
  const enabled = (value as { enabled?: unknown }).enabled;
  if (enabled === undefined) return withClip({ enabled: [...DEFAULT_SCORERS.enabled] });
  if (!Array.isArray(enabled) || enabled.some((n) => typeof n !== 'string')) throw new UserError(`${where}.enabled: expected a list of scorer names (${SCORER_NAMES.join(', ')})`);
  for (const n of enabled) if (!(SCORER_NAMES as readonly string[]).includes(n)) throw new UserError(`${where}.enabled: unknown scorer ${n} (known: ${SCORER_NAMES.join(', ')})`);
  const repeated = enabled.filter((n, i) => enabled.indexOf(n) !== i);
  if (repeated.length) throw new UserError(`${where}.enabled: ${repeated[0]} is listed twice`);
  if (enabled.includes('clip') && clipModel === undefined) throw new UserError(`${where}.clip_model: required when clip is enabled: a CLIP ONNX export folder (docs/clip.md)`);
  return withClip({ enabled: enabled as ScorerName[] });
}

/** The scorer a score or text name belongs to, or null when no scorer returns it. */
export function scorerOf(name: string): ScorerName | null {
  for (const s of SCORER_NAMES) if (SCORE_NAMES[s].includes(name) || TEXT_NAMES[s].includes(name)) return s;
  return null;
}

/** A score's Parquet column: its name with the first dot made an underscore (`edit.magnitude` → `edit_magnitude`), like `identity_similarity`. */
export function scoreColumn(name: string): string {
  return name.replace('.', '_');
}

/** The columns a run's enabled scorers add to every shard, rejects and manifest row, in scorer then name order. */
export function scoreColumns(enabled: readonly ScorerName[]): { name: string; column: string; kind: 'number' | 'text' }[] {
  const ordered = SCORER_NAMES.filter((s) => enabled.includes(s));
  return ordered.flatMap((s) => [
    ...SCORE_NAMES[s].map((name) => ({ name, column: scoreColumn(name), kind: 'number' as const })),
    ...TEXT_NAMES[s].map((name) => ({ name, column: scoreColumn(name), kind: 'text' as const })),
  ]);
}
