// A scoring thread of the pool (scoring.ts): opens its own identity scorer and pair scorers, then scores
// one pair per request, in arrival order.
import { serveThread } from '../util/thread-pool.ts';
import { openScoringStage, type PoolScore, type ScoringInfo, type ScoringStageOptions } from './scoring-stage.ts';
import type { CandidateSpec, RgbImage } from '../types.ts';

interface ScoringRequest {
  source: RgbImage;
  edited: RgbImage;
  spec: CandidateSpec;
}

await serveThread<ScoringRequest, PoolScore, ScoringInfo>(async (data) => {
  const stage = await openScoringStage(data.options as ScoringStageOptions);
  return {
    ready: stage.info,
    handle: (r) => stage.score(r.source, r.edited, r.spec),
    close: () => stage.close(),
  };
});
