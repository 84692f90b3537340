/**
 * The identity accept rule, in one place: a candidate is accepted when both images had a usable face
 * and the similarity of the two faces is at least the threshold of its category. The work loop judges
 * fresh scores with it; refilter and the report's threshold sweep judge recorded ones.
 */
import type { IdentityConfig } from '../identity/config.ts';
import type { CandidateSpec, IdentityScore, IdentityVerdict } from '../types.ts';

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
 * The verdict on one candidate: its evidence judged against its category's threshold, where
 * `spec.identityThreshold` is the prompt set's threshold for the category (null: none).
 */
export function judgeCandidate(evidence: IdentityEvidence, spec: Pick<CandidateSpec, 'category' | 'identityThreshold'>, identity: IdentityConfig): Verdict {
  return judgeAt(evidence, thresholdFor(identity, spec));
}

/** A fresh identity score and its verdict, as a pair record stores them. */
export function identityVerdict(score: IdentityScore, spec: Pick<CandidateSpec, 'category' | 'identityThreshold'>, identity: IdentityConfig): IdentityVerdict {
  const { faceProblem: _faceProblem, ...measured } = score;
  return { ...measured, ...judgeCandidate(score, spec, identity) };
}

/**
 * The evidence a recorded pair holds: a reject reason other than BELOW_THRESHOLD is a face problem,
 * which stays whatever the threshold.
 */
export function recordedEvidence(row: { identity_similarity: number | null; reject_reason: string | null }): IdentityEvidence {
  const faceProblem = row.reject_reason === null || row.reject_reason === BELOW_THRESHOLD ? null : row.reject_reason;
  return { similarity: row.identity_similarity, faceProblem };
}
