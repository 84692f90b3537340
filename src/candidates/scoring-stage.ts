/**
 * The scoring stage of one thread: the identity scorer (when enabled), then the pair scorers with the
 * faces it found, on one pair at a time. What each thread of the scoring pool runs (scoring-worker.ts),
 * and the pool itself with 0 threads.
 */
import type { CandidateSpec, IdentityScore, IdentityScorer, RgbImage, StageInfo } from '../types.ts';
import type { IdentityConfig } from '../identity/config.ts';
import type { RuntimeConfig } from '../onnx/session.ts';
import type { PairFaces, PairScores, ScorersConfig } from '../scorers/index.ts';

export interface ScoringStageOptions {
  identity: IdentityConfig;
  scorers: ScorersConfig;
  runtime: RuntimeConfig;
  /** The scorer models' cache (default: env PAIRGEN_CACHE, else .cache/models). */
  cacheDir?: string;
}

export interface PoolScore {
  /** The identity stage's faces and similarity; null when identity is disabled. */
  identity: IdentityScore | null;
  scores: PairScores;
}

export interface ScoringInfo {
  identity: StageInfo | null;
  scorers: StageInfo;
}

/** What the scorers see when identity is disabled: no faces, so the face scores are null. */
const NO_FACES: PairFaces = { sourceFace: null, editedFace: null };

/**
 * The identity scorer (when enabled) and the pair scorers, open on this thread: what each pool thread
 * runs, and `work` itself with a test's injected identity scorer (`identityScorer`: used instead of
 * opening options.identity's; null: no identity stage).
 */
export async function openScoringStage(options: ScoringStageOptions, identityScorer?: IdentityScorer | null) {
  // Imported here, so importing this module (work.ts, status) does not load onnxruntime.
  const [{ createIdentityScorer }, { createScorers, scorePair }] = await Promise.all([import('../identity/index.ts'), import('../scorers/index.ts')]);
  const identity = identityScorer !== undefined ? identityScorer : options.identity.enabled ? await createIdentityScorer(options.identity, options.runtime) : null;
  let scorers;
  try {
    scorers = await createScorers(options.scorers, options.runtime, { cacheDir: options.cacheDir });
  } catch (e) {
    await identity?.close();
    throw e;
  }
  const info: ScoringInfo = { identity: identity?.info ?? null, scorers: scorers.info };
  return {
    info,
    async score(source: RgbImage, edited: RgbImage, spec: CandidateSpec): Promise<PoolScore> {
      const faces = identity ? await identity.score(source, edited, spec) : null;
      const scores = await scorePair(scorers, { source, edited, faces: faces ?? NO_FACES, instruction: spec.instruction, category: spec.category, sourcePrompt: spec.sourcePrompt, targetPrompt: spec.targetPrompt });
      return { identity: faces, scores };
    },
    async close(): Promise<void> {
      await scorers.close();
      await identity?.close();
    },
  };
}

