/**
 * A run on its store, as every verb reads and writes it: the file keys (layout.ts), run.json
 * (run-file.ts), committing a shard and reading its marker (commit.ts), failure records (failures.ts),
 * scanning markers/ (scan.ts), splits by pair_id (splits.ts), the one DuckDB opener over a run's
 * Parquet files (db.ts) and reading chosen rows back from shard files. See docs/architecture.md.
 */
export * from './layout.ts';
export { RUN_FORMAT, modelDigests, openRun, planConflict, planId, readPlan, serializePlan, type RunPlan } from './run-file.ts';
export { isCommitted, markerProblems, readMarker, readTimings, writeShard } from './commit.ts';
export { clearFailure, describeError, readFailure, recordFailure, FAILURE_FORMAT, type FailureRecord } from './failures.ts';
export { failedShards, scanShards, type FailedShard } from './scan.ts';
export { checkSplits, DEFAULT_SPLITS, parseSplits, splitOf, SPLIT_NAMES, type SplitFractions } from './splits.ts';
