/**
 * Starting and stopping workers: a worker's share of an array job, SIGINT/SIGTERM and exit codes, the
 * local worker processes of `pairgen run --workers N` (workers.ts), and the files that launch a planned
 * run on Kubernetes, Slurm or AWS Batch (emit.ts).
 */
export { EXIT_SHARDS_FAILED, indexFromEnvironment, runLocalWorkers, signalExitCode, stopOnSignals, workerShare } from './workers.ts';
export { emitJob, launchHint, ENGINES, type EmitOptions, type EmittedFile, type Engine } from './emit.ts';
