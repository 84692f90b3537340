/**
 * Small helpers every layer may use and that know nothing of pairgen's data: logging and progress bars
 * (log.ts), atomic file writes (atomic.ts), cached file digests (digest.ts), TypeScript worker threads
 * (worker.ts), and the code version recorded with every pair (version.ts).
 */
export { log, logFormat, progress, setLogFormat, setQuiet, type LogFormat, type Progress } from './log.ts';
export { writeFileAtomic } from './atomic.ts';
export { digestFiles, sha256Hex, type FileDigest } from './digest.ts';
export { startTsWorker } from './worker.ts';
export { CODE_VERSION } from './version.ts';
