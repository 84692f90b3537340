/**
 * The verdict, in one place: a candidate is accepted when both images had a usable face, the similarity
 * of the two faces is at least the threshold of its category, and every rule of its category holds
 * (src/scorers/rules.ts). The work loop judges fresh scores with it; refilter, the report's
 * threshold sweep and preview judge recorded ones.
 */
import type { IdentityConfig } from '../identity/config.ts';
import type { CandidateSpec, IdentityScore, IdentityVerdict } from '../types.ts';
import { firstFailingRule, type Rule } from '../scorers/rules.ts';

/** The reject reason of a pair whose faces were compared and found too different. */
export const BELOW_THRESHOLD = 'identity_below_threshold';

/** What a verdict is made from: a fresh score, or a pair's recorded columns (see recordedEvidence). */
export interface IdentityEvidence {
  /** Cosine similarity of the two faces; null when they could not be compared. */
  similarity: number | null;
  /** Why the faces could not be compared ("no_face_edited", ...); null when they were. */
  faceProblem: string | null;
}

export interface Verdict {
  accepted: boolean;
  /** null when accepted; the face problem, or BELOW_THRESHOLD. */
  rejectReason: string | null;
  /** The threshold the pair was judged against. */
  threshold: number;
}

/** The threshold a candidate is judged against: the config's category map, then the prompt set's, then the global one. */
export function thresholdFor(identity: IdentityConfig, spec: Pick<CandidateSpec, 'category' | 'identityThreshold'>): number {
  return identity.category_thresholds[spec.category] ?? spec.identityThreshold ?? identity.threshold;
}

/** The rule at a given threshold. No threshold undoes a face problem; no similarity is never enough. */
export function judgeAt(evidence: IdentityEvidence, threshold: number): Verdict {
  if (evidence.faceProblem !== null) return { accepted: false, rejectReason: evidence.faceProblem, threshold };
  const accepted = evidence.similarity !== null && evidence.similarity >= threshold;
  return { accepted, rejectReason: accepted ? null : BELOW_THRESHOLD, threshold };
}

/**
 * The whole verdict: identity first (its face problem, then its threshold; skipped when `identity` is
 * null, i.e. the stage is disabled), then the category's rules in order. `score` reads a score by its
 * rule name (identity.similarity included).
 */
export function judge(identity: IdentityEvidence | null, threshold: number, rules: readonly Rule[], score: (name: string) => number | null): Verdict {
  if (identity) {
    const v = judgeAt(identity, threshold);
    if (!v.accepted) return v;
  }
  const failed = firstFailingRule(rules, score);
  return { accepted: failed === null, rejectReason: failed, threshold };
}

/**
 * The identity verdict on one candidate: its evidence judged against its category's threshold, where
 * `spec.identityThreshold` is the prompt set's threshold for the category (null: none).
 */
export function judgeCandidate(evidence: IdentityEvidence, spec: Pick<CandidateSpec, 'category' | 'identityThreshold'>, identity: IdentityConfig): Verdict {
  return judgeAt(evidence, thresholdFor(identity, spec));
}

/**
 * A fresh identity score and the whole verdict (identity, then the rules over `scores`), as a pair
 * record stores them.
 */
export function identityVerdict(
  score: IdentityScore,
  spec: Pick<CandidateSpec, 'category' | 'identityThreshold'>,
  identity: IdentityConfig,
  rules: readonly Rule[] = [],
  scores: Record<string, number | null> = {},
): IdentityVerdict {
  const { faceProblem: _faceProblem, ...measured } = score;
  const read = (name: string) => (name === 'identity.similarity' ? score.similarity : (scores[name] ?? null));
  return { ...measured, ...judge(score, thresholdFor(identity, spec), rules, read) };
}

/**
 * The evidence a recorded pair holds. Identity is judged first, so a pair whose faces could not be
 * compared (no similarity) was rejected for that face problem, which stays whatever the threshold or rules.
 */
export function recordedEvidence(row: { identity_similarity: number | null; reject_reason: string | null }): IdentityEvidence {
  const faceProblem = row.identity_similarity === null ? (row.reject_reason ?? 'no_face') : null;
  return { similarity: row.identity_similarity, faceProblem };
}

/** A recorded pair as the verdict reads it: a manifest, shard or rejects row (score columns included). */
export type RecordedRow = { category: string; identity_similarity: number | null; reject_reason: string | null } & Record<string, unknown>;

/** A rule's score read from a recorded row: `identity.similarity` and every scorer's column (`edit.magnitude` → edit_magnitude). */
export function recordedScore(row: Record<string, unknown>, name: string): number | null {
  const v = row[name.replace('.', '_')];
  return typeof v === 'number' ? v : null;
}

/**
 * The verdict on a recorded pair (refilter, the report's sweep, preview): the same `judge` as a fresh
 * pair, from its recorded columns. `threshold` defaults to the category's (thresholdFor).
 */
export function judgeRecorded(row: RecordedRow, identity: IdentityConfig, rules: readonly Rule[], promptThreshold: number | null, threshold?: number): Verdict {
  const t = threshold ?? thresholdFor(identity, { category: row.category, identityThreshold: promptThreshold });
  return judge(identity.enabled ? recordedEvidence(row) : null, t, rules, (name) => recordedScore(row, name));
}

/**
 * Each filter's own verdict on a recorded pair, for measuring it against ground truth apart from the
 * other (the reject reason names only the first that failed): identity at `threshold` (true when the
 * stage is off), and the category's rules over the recorded scores.
 */
export function filterVerdicts(row: RecordedRow, identity: IdentityConfig, rules: readonly Rule[], threshold: number): { identity: boolean; rules: boolean } {
  return {
    identity: !identity.enabled || judgeAt(recordedEvidence(row), threshold).accepted,
    rules: firstFailingRule(rules, (name) => recordedScore(row, name)) === null,
  };
}
