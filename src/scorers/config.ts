import { UserError } from '../errors.ts';
import { EMOTION_LABELS, NSFW_LABELS } from './models.ts';

/**
 * Which pair scorers run. Every score a scorer returns is named `<scorer>.<score>`, so a rule's score
 * name tells which scorer it needs. The pipeline config's `scorers` section is this type.
 */
export const SCORER_NAMES = ['pose', 'expression', 'age', 'edit', 'background', 'quality', 'safety', 'duplicates'] as const;
export type ScorerName = (typeof SCORER_NAMES)[number];

export interface ScorersConfig {
  /** The scorers to run, in this order; the others open no session and cost nothing. */
  enabled: ScorerName[];
}

export const DEFAULT_SCORERS: ScorersConfig = { enabled: [...SCORER_NAMES] };

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
};

/** Strings a scorer returns beside its numbers (a hash cannot be a float64 column). */
export const TEXT_NAMES: Record<ScorerName, readonly string[]> = {
  pose: [], expression: [], age: [], edit: [], background: [], quality: [], safety: [],
  duplicates: ['duplicates.source_dhash'],
};

/** The section's JSON schema (for src/config/schema.ts, as identity's is composed there); defaults are DEFAULT_SCORERS's. */
export const scorersConfigSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'The pair scorers (docs/scorers.md): named numbers about each pair beyond identity. Scorers not listed cost nothing.',
  properties: {
    enabled: {
      type: 'array', uniqueItems: true, items: { enum: [...SCORER_NAMES] }, default: [...DEFAULT_SCORERS.enabled],
      description: `Scorers to run, in order: ${SCORER_NAMES.join(', ')}.`,
    },
  },
} as const;

/** The `scorers` section of a config, checked without the schema (for callers that have no validator): unknown or repeated scorer names are user errors naming `where`. */
export function parseScorersConfig(value: unknown, where = 'scorers'): ScorersConfig {
  if (value === undefined) return { enabled: [...DEFAULT_SCORERS.enabled] };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UserError(`${where}: expected an object like {enabled: [${SCORER_NAMES.join(', ')}]}`);
  const extra = Object.keys(value).filter((k) => k !== 'enabled');
  if (extra.length) throw new UserError(`${where}: unknown key ${extra.join(', ')} (known: enabled)`);
  const enabled = (value as { enabled?: unknown }).enabled;
  if (enabled === undefined) return { enabled: [...DEFAULT_SCORERS.enabled] };
  if (!Array.isArray(enabled) || enabled.some((n) => typeof n !== 'string')) throw new UserError(`${where}.enabled: expected a list of scorer names (${SCORER_NAMES.join(', ')})`);
  for (const n of enabled) if (!(SCORER_NAMES as readonly string[]).includes(n)) throw new UserError(`${where}.enabled: unknown scorer ${n} (known: ${SCORER_NAMES.join(', ')})`);
  const repeated = enabled.filter((n, i) => enabled.indexOf(n) !== i);
  if (repeated.length) throw new UserError(`${where}.enabled: ${repeated[0]} is listed twice`);
  return { enabled: enabled as ScorerName[] };
}

/** The scorer a score or text name belongs to, or null when no scorer returns it. */
export function scorerOf(name: string): ScorerName | null {
  for (const s of SCORER_NAMES) if (SCORE_NAMES[s].includes(name) || TEXT_NAMES[s].includes(name)) return s;
  return null;
}
