/**
 * The candidates of a run and their verdicts: per-pair seeds and ids (seeds.ts), the explicit candidate
 * table of a derived run (table.ts), the run's teacher that draws them (draw.ts), and the identity accept
 * rule every path judges them by (verdict.ts).
 */
export { pairSeed, pairId, candidateSlot } from './seeds.ts';
export { encodeCandidates, specOfRow, readCandidateSpecs, type SpecColumns } from './table.ts';
export { runTeacher } from './draw.ts';
export {
  thresholdFor, judgeAt, judgeCandidate, identityVerdict, recordedEvidence, BELOW_THRESHOLD,
  type IdentityEvidence, type Verdict,
} from './verdict.ts';
