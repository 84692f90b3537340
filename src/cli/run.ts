import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { UserError } from '../errors.ts';
import { finalizeRun, type FinalizeResult } from '../run/finalize.ts';
import { planRun } from '../run/plan.ts';
import { runStatus, formatStatus } from '../run/status.ts';
import { logShard, workRun, WorkAborted } from '../run/work.ts';
import { formatRunSummary } from '../run/summary.ts';
import { log, logFormat, progress, type Progress } from '../util/log.ts';
import { action, collectSet, wholeNumber } from './common.ts';

const BIN = fileURLToPath(new URL('../../bin/pairgen.js', import.meta.url));

const positiveInt = (name: string) => wholeNumber(name, 1);
const nonNegativeInt = (name: string) => wholeNumber(name, 0);

/** "3", "0-9" or "1,4,7-8" → shard numbers. */
export function parseShardList(spec: string): number[] {
  const out: number[] = [];
  for (const part of spec.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new InvalidArgumentError(`--shards takes N, A-B or a comma list of them; got "${spec}"`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new InvalidArgumentError(`--shards range ${part} is backwards`);
    for (let s = a; s <= b; s++) out.push(s);
  }
  return out;
}

/** The array index of this worker from the array-job engine's environment, when --index is not given. */
function indexFromEnvironment(): number | undefined {
  for (const name of ['JOB_COMPLETION_INDEX', 'SLURM_ARRAY_TASK_ID', 'AWS_BATCH_JOB_ARRAY_INDEX']) {
    const v = process.env[name];
    if (v !== undefined && v !== '') {
      if (!/^\d+$/.test(v)) throw new UserError(`${name}=${v} is not a whole number`);
      return Number(v);
    }
  }
  return undefined;
}

function planOptions(cmd: Command): Command {
  return cmd
    .option('--pairs <n>', 'candidate pairs to generate (overrides `pairs`)', positiveInt('--pairs'))
    .option('--shard-size <k>', 'candidates per shard (overrides `shard_size`)', positiveInt('--shard-size'))
    .option('--set <key.path=value>', 'override a config key (repeatable), e.g. --set identity.threshold=0.5', collectSet, []);
}

interface PlanCliOptions {
  out: string;
  pairs?: number;
  shardSize?: number;
  set: string[];
}

async function doPlan(config: string, opts: PlanCliOptions): Promise<void> {
  const { plan, store, created } = await planRun(config, opts.out, { sets: opts.set, pairs: opts.pairs, shardSize: opts.shardSize });
  if (created) log.info(`planned ${plan.name} at ${store.uri}: ${plan.pairs} candidate pairs in ${plan.shards} shards of ${plan.shard_size}`, { prompts: plan.prompts.train_rows, eval_prompts: plan.prompts.eval_rows });
  else log.info(`${store.uri} already holds this exact plan; nothing to do`);
}

/** Stop taking work on SIGINT/SIGTERM; past the grace period, exit without committing the shard in progress. */
const signalExitCode = (signal: NodeJS.Signals) => (signal === 'SIGINT' ? 130 : 143);

function stopOnSignals(graceSeconds: number): AbortController {
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

interface WorkCliOptions {
  shards?: number[];
  index?: number;
  count?: number;
  force?: boolean;
  retryFailed?: boolean;
  grace: number;
}

/** `work` exits with this when it finished but some shards of its share failed or were held back. */
export const EXIT_SHARDS_FAILED = 3;

async function doWork(runUri: string, opts: WorkCliOptions): Promise<void> {
  let share: { index: number; count: number } | undefined;
  const index = opts.index ?? (opts.count !== undefined ? indexFromEnvironment() : undefined);
  if (opts.count !== undefined || opts.index !== undefined) {
    if (opts.shards) throw new UserError('give either --shards or --index/--count, not both');
    if (index === undefined || opts.count === undefined) throw new UserError('--index and --count go together (--index may come from JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID or AWS_BATCH_JOB_ARRAY_INDEX)');
    if (index >= opts.count) throw new UserError(`--index ${index} must be below --count ${opts.count}`);
    share = { index, count: opts.count };
  }
  let bar: Progress | null = null;
  let done = 0;
  const controller = stopOnSignals(opts.grace);
  try {
    const summary = await workRun(runUri, {
      shards: opts.shards,
      share,
      force: opts.force,
      retryFailed: opts.retryFailed,
      signal: controller.signal,
      onStart: (shards) => (bar = progress('shards', shards.length)),
      onShard: (e) => {
        done++;
        // On a terminal the bar shows progress; elsewhere one line per shard does.
        if (logFormat() === 'json' || !process.stderr.isTTY) logShard(e);
        else bar?.update(done);
      },
    });
    (bar as Progress | null)?.stop();
    log.info(`work done: ${summary.committed.length} shards committed, ${summary.skipped.length} already committed`, { accepted: summary.accepted, rejected: summary.rejected });
    const incomplete = [...summary.failed, ...summary.held].sort((a, b) => a - b);
    if (incomplete.length) {
      log.error(
        `${summary.failed.length} shard(s) failed and ${summary.held.length} were skipped after an earlier failure (${incomplete.slice(0, 8).join(', ')}${incomplete.length > 8 ? ', ...' : ''}); ` +
          `see \`pairgen status ${runUri}\`, then run \`pairgen work ${runUri} --retry-failed\``,
      );
      process.exitCode = EXIT_SHARDS_FAILED;
    }
  } catch (e) {
    (bar as Progress | null)?.stop();
    if (e instanceof WorkAborted) {
      log.warn(e.message);
      process.exitCode = signalExitCode(controller.signal.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT');
      return;
    }
    throw e;
  }
}

async function runWorkers(runUri: string, workers: number, grace: number): Promise<void> {
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

function printFinalize(result: FinalizeResult, wallSeconds: number | null = null): void {
  if (logFormat() === 'json') log.info('finalized', { uri: result.uri, accepted: result.accepted, rejected: result.rejected, shards: result.shards, wall_seconds: wallSeconds, stats: result.stats });
  else process.stdout.write(formatRunSummary(result, wallSeconds));
}

export function registerRunVerbs(program: Command): void {
  planOptions(
    program
      .command('plan')
      .description('expand the prompts and write run.json (config, prompt table digest, model digests, shard plan) at --out')
      .argument('<pipeline>', 'pipeline config (YAML or JSON)')
      .requiredOption('--out <uri>', 'run location: a folder, file://..., or s3://bucket/prefix'),
  ).action(action(doPlan));

  program
    .command('work')
    .description('process shards of a planned run; committed shards are skipped, so it can be re-run any number of times. Exit codes: 0 every shard of this share is committed, 2 user error, 3 some shards failed (the others were done), 130/143 stopped by SIGINT/SIGTERM')
    .argument('<run-uri>', 'run location')
    .option('--shards <list>', 'shards to process: N, A-B or a comma list', parseShardList)
    .option('--index <i>', 'this worker\'s index in an array job (default: JOB_COMPLETION_INDEX / SLURM_ARRAY_TASK_ID / AWS_BATCH_JOB_ARRAY_INDEX)', nonNegativeInt('--index'))
    .option('--count <n>', 'number of workers in the array job; worker i takes shards s with s mod n = i', positiveInt('--count'))
    .option('--force', 're-run committed shards too (they are rewritten byte for byte)')
    .option('--retry-failed', 'also run shards whose earlier attempt failed (by default they are skipped and reported; exit code 3 while any remain)')
    .addOption(new Option('--grace <seconds>', 'after SIGINT/SIGTERM, exit at the latest after this many seconds').default(25).argParser(nonNegativeInt('--grace')))
    .action(action(doWork));

  planOptions(
    program
      .command('run')
      .description('plan, work every shard locally and finalize: the whole job in one command')
      .argument('<pipeline>', 'pipeline config (YAML or JSON)')
      .requiredOption('--out <uri>', 'run location: a folder, file://..., or s3://bucket/prefix')
      .option('--workers <n>', 'worker processes (each takes every n-th shard)', positiveInt('--workers'), 1)
      .addOption(new Option('--grace <seconds>', 'after SIGINT/SIGTERM, exit at the latest after this many seconds').default(25).argParser(nonNegativeInt('--grace'))),
  ).action(
    action(async (config: string, opts: PlanCliOptions & { workers: number; grace: number }) => {
      const started = performance.now();
      await doPlan(config, opts);
      if (opts.workers > 1) {
        await runWorkers(opts.out, opts.workers, opts.grace);
        if (process.exitCode) return;
      } else {
        await doWork(opts.out, { grace: opts.grace });
        if (process.exitCode) return;
      }
      printFinalize(await finalizeRun(opts.out), (performance.now() - started) / 1000);
    }),
  );

  program
    .command('status')
    .description('shards committed / pending, pairs accepted / rejected, acceptance per category, rate and ETA')
    .argument('<run-uri>', 'run location')
    .option('--json', 'print JSON on stdout')
    .option('--verify', 'also hash every committed shard file against its marker (downloads them)')
    .action(
      action(async (runUri: string, opts: { json?: boolean; verify?: boolean }) => {
        const status = await runStatus(runUri, { verify: opts.verify });
        process.stdout.write(opts.json ? JSON.stringify(status, null, 2) + '\n' : formatStatus(status));
      }),
    );

  program
    .command('finalize')
    .description('write manifest.parquet (one row per candidate), stats.json, the README.md dataset card and preview/; idempotent')
    .argument('<run-uri>', 'run location')
    .option('--no-preview', 'skip preview/ (contact sheets, histogram); `pairgen preview` writes it later')
    .action(action(async (runUri: string, opts: { preview: boolean }) => printFinalize(await finalizeRun(runUri, { preview: opts.preview }))));
}
