/**
 * How a worker process is launched and stopped, wherever it runs: its share of an array job (from
 * --index/--count or the engine's environment), SIGINT/SIGTERM handling and the exit codes, and the local
 * worker processes of `pairgen run --workers N`. (The engines' launch files are emit.ts.)
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.ts';
import { log, logFormat } from '../util/log.ts';

const BIN = fileURLToPath(new URL('../../bin/pairgen.js', import.meta.url));

/** `work` exits with this when it finished but some shards of its share failed or were held back. */
export const EXIT_SHARDS_FAILED = 3;

/** A worker stopped by a signal exits with 128 + the signal's number, as a shell reports it. */
export const signalExitCode = (signal: NodeJS.Signals): number => (signal === 'SIGINT' ? 130 : 143);

/** The array index of this worker from the array-job engine's environment, when --index is not given. */
export function indexFromEnvironment(): number | undefined {
  for (const name of ['JOB_COMPLETION_INDEX', 'SLURM_ARRAY_TASK_ID', 'AWS_BATCH_JOB_ARRAY_INDEX']) {
    const v = process.env[name];
    if (v !== undefined && v !== '') {
      if (!/^\d+$/.test(v)) throw new UserError(`${name}=${v} is not a whole number`);
      return Number(v);
    }
  }
  return undefined;
}

/**
 * This worker's share of an array job: `--index`/`--count` (the index may come from the engine's
 * environment), or undefined when neither is given. Refuses `--shards` together with a share.
 */
export function workerShare(opts: { shards?: number[]; index?: number; count?: number }): { index: number; count: number } | undefined {
  if (opts.count === undefined && opts.index === undefined) return undefined;
  const index = opts.index ?? indexFromEnvironment();
  if (opts.shards) throw new UserError('give either --shards or --index/--count, not both');
  if (index === undefined || opts.count === undefined) throw new UserError('--index and --count go together (--index may come from JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID or AWS_BATCH_JOB_ARRAY_INDEX)');
  if (index >= opts.count) throw new UserError(`--index ${index} must be below --count ${opts.count}`);
  return { index, count: opts.count };
}

/** Stop taking work on SIGINT/SIGTERM; past the grace period, exit without committing the shard in progress. */
export function stopOnSignals(graceSeconds: number): AbortController {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) return;
    log.warn(`${signal}: stopping; the shard in progress will not be committed`);
    controller.abort(signal);
    setTimeout(() => process.exit(signalExitCode(signal)), graceSeconds * 1000).unref();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return controller;
}

/** `pairgen run --workers N`: N local `pairgen work` processes, each taking every N-th shard; signals are passed on. */
export async function runLocalWorkers(runUri: string, workers: number, grace: number): Promise<void> {
  const children = Array.from({ length: workers }, (_, i) =>
    spawn(process.execPath, [BIN, '--log-format', logFormat(), 'work', runUri, '--index', String(i), '--count', String(workers), '--grace', String(grace)], { stdio: ['ignore', 'inherit', 'inherit'] }),
  );
  const forward = (signal: NodeJS.Signals) => children.forEach((c) => c.kill(signal));
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  const codes = await Promise.all(children.map((c) => new Promise<number>((res) => c.on('exit', (code, sig) => res(code ?? (sig ? 128 : 1))))));
  process.off('SIGINT', forward);
  process.off('SIGTERM', forward);
  const failed = codes.filter((c) => c !== 0).length;
  if (failed > 0 && codes.every((c) => c === 0 || c === EXIT_SHARDS_FAILED)) {
    log.error(`${failed} of ${workers} workers finished with failed shards; see \`pairgen status ${runUri}\`, then run \`pairgen work ${runUri} --retry-failed\``);
    process.exitCode = EXIT_SHARDS_FAILED;
    return;
  }
  if (failed > 0) throw new UserError(`${failed} of ${workers} workers failed (exit codes ${codes.join(', ')}); run \`pairgen work ${runUri}\` again to finish the missing shards`);
}
