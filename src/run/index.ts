/**
 * The job itself: `plan` (a pipeline config → run.json and the prompt table), `work` (the loop that
 * samples, scores, judges, writes and commits shards), `finalize` (manifest, stats, card, preview) and
 * `status`. Data flows one way: prompts → plan → sample → score → write → commit → finalize.
 */
export { planRun, buildPlan, type PlanOptions, type PlanResult } from './plan.ts';
export { workRun, logShard, WorkAborted, type WorkOptions, type WorkSummary, type ShardEvent, type Timings } from './work.ts';
export { finalizeRun, type FinalizeResult, type RunStats } from './finalize.ts';
export { runStatus, formatStatus, type RunStatus } from './status.ts';
export { formatRunSummary } from './summary.ts';
