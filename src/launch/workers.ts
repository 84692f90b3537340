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

/** The engines a worker runs under: a variable only that engine sets, and the one that holds the array index. */
const ENGINE_INDEX = [
  { engine: 'Kubernetes', marker: 'KUBERNETES_SERVICE_HOST', index: 'JOB_COMPLETION_INDEX' },
  { engine: 'Slurm', marker: 'SLURM_JOB_ID', index: 'SLURM_ARRAY_TASK_ID' },
  { engine: 'AWS Batch', marker: 'AWS_BATCH_JOB_ID', index: 'AWS_BATCH_JOB_ARRAY_INDEX' },
] as const;

/**
 * The array index of this worker from the environment, when --index is not given. Under an engine (its
 * own job variable is set) only that engine's index counts: a variable exported from the submitting
 * shell (say JOB_COMPLETION_INDEX into a Slurm job) must not make every task do the same share.
 */
export function indexFromEnvironment(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const set = (name: string) => env[name] !== undefined && env[name] !== '';
  // Every Kubernetes pod has KUBERNETES_SERVICE_HOST; only an Indexed Job's pod also has its index.
  const running = ENGINE_INDEX.filter((e) => set(e.marker) && (e.engine !== 'Kubernetes' || set(e.index)));
  if (running.length > 1) {
    throw new UserError(`the environment says this worker runs under ${running.map((e) => `${e.engine} (${e.marker}=${env[e.marker]}, ${e.index}=${env[e.index] ?? 'unset'})`).join(' and ')}; give --index`);
  }
  let name: string;
  if (running.length === 1) {
    const e = running[0];
    if (!set(e.index)) return undefined;
    name = e.index;
  } else {
    const given = ENGINE_INDEX.filter((e) => set(e.index));
    if (given.length === 0) return undefined;
    if (given.length > 1) throw new UserError(`${given.map((e) => `${e.index}=${env[e.index]}`).join(' and ')} are set together and no engine's job variable (${ENGINE_INDEX.map((e) => e.marker).join(', ')}) says which one applies; give --index`);
    name = given[0].index;
  }
  const v = env[name]!;
  if (!/^\d+$/.test(v)) throw new UserError(`${name}=${v} is not a whole number`);
  return Number(v);
}

/**
 * This worker's share of an array job: `--index`/`--count` (the index may come from the engine's
 * environment), or undefined when neither is given. Refuses `--shards` together with a share.
 */
export function workerShare(opts: { shards?: number[]; index?: number; count?: number }): { index: number; count: number } | undefined {
  if (opts.count === undefined && opts.index === undefined) return undefined;
  const index = opts.index ?? indexFromEnvironment();
  if (opts.shards) throw new UserError('give either --shards or --index/--count, not both');
  if (index === undefined || opts.count === undefined) throw new UserError('--index and --count go together (under an engine --index may come from its JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID or AWS_BATCH_JOB_ARRAY_INDEX)');
  if (index >= opts.count) throw new UserError(`--index ${index} must be below --count ${opts.count}`);
  return { index, count: opts.count };
}

/**
 * Stop taking work on SIGINT/SIGTERM; past the grace period, exit without committing the shard in progress.
 * Further signals change nothing: an engine that signals every process of a job (Slurm's scancel,
 * requeue, time limit, preemption) plus the job script passing the signal on must not cut the grace short.
 */
export function stopOnSignals(graceSeconds: number): AbortController {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) return;
    log.warn(`${signal}: stopping; the shard in progress will not be committed`);
    controller.abort(signal);
    setTimeout(() => process.exit(signalExitCode(signal)), graceSeconds * 1000).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
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
