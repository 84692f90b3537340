import { Command, InvalidArgumentError, Option } from 'commander';
import type { FinalizeResult } from '../run/finalize.ts';
import { log, logFormat, progress, type Progress } from '../util/log.ts';
import { action, collectSet, wholeNumber } from './common.ts';

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

function planOptions(cmd: Command): Command {
  return cmd
    .option('--pairs <n>', 'candidate pairs to generate (overrides `pairs`)', positiveInt('--pairs'))
    .option('--shard-size <k>', 'candidates per shard (overrides `shard_size`)', positiveInt('--shard-size'))
    .option('--set <key.path=value>', 'override a config key (repeatable), e.g. --set identity.threshold=0.5', collectSet, []);
}

interface PlanCliOptions {
  out: string;
  uploadModels?: boolean;
  pairs?: number;
  shardSize?: number;
  set: string[];
}

async function doPlan(config: string, opts: PlanCliOptions): Promise<void> {
  const { planRun } = await import('../run/plan.ts');
  const { plan, store, created, restored } = await planRun(config, opts.out, { sets: opts.set, pairs: opts.pairs, shardSize: opts.shardSize, uploadModels: opts.uploadModels });
  if (created) log.info(`planned ${plan.name} at ${store.uri}: ${plan.pairs} candidate pairs in ${plan.shards} shards of ${plan.shard_size}`, { prompts: plan.prompts.train_rows, eval_prompts: plan.prompts.eval_rows });
  else if (restored.length) log.info(`${store.uri} holds this exact plan; restored ${restored.join(' and ')}`);
  else log.info(`${store.uri} already holds this exact plan; nothing to do`);
}

interface WorkCliOptions {
  shards?: number[];
  index?: number;
  count?: number;
  force?: boolean;
  retryFailed?: boolean;
  grace: number;
}

async function doWork(runUri: string, opts: WorkCliOptions): Promise<void> {
  const { EXIT_SHARDS_FAILED, signalExitCode, stopOnSignals, workerShare } = await import('../launch/workers.ts');
  const share = workerShare(opts);
  const { logShard, workRun, WorkAborted } = await import('../run/work.ts');
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

async function printFinalize(result: FinalizeResult, wallSeconds: number | null = null): Promise<void> {
  const { formatRunSummary } = await import('../run/summary.ts');
  if (logFormat() === 'json') log.info('finalized', { uri: result.uri, accepted: result.accepted, rejected: result.rejected, shards: result.shards, wall_seconds: wallSeconds, stats: result.stats });
  else process.stdout.write(formatRunSummary(result, wallSeconds));
}

export function registerRunVerbs(program: Command): void {
  planOptions(
    program
      .command('plan')
      .description('expand the prompts and write run.json (config, prompt table digest, model digests, shard plan) at --out')
      .argument('<pipeline>', 'pipeline config (YAML or JSON)')
      .requiredOption('--out <uri>', 'run location: a folder, file://..., or s3://bucket/prefix')
      .option('--upload-models', 'copy the config\'s local model files into the run (<out>/models/) and record those copies, so workers on any node fetch them; without it local model paths are recorded as they are'),
  ).action(action(doPlan));

  program
    .command('work')
    .description('process shards of a planned run; committed shards are skipped, so it can be re-run any number of times. Exit codes: 0 every shard of this share is committed, 2 user error, 3 some shards failed (the others were done), 130/143 stopped by SIGINT/SIGTERM')
    .argument('<run-uri>', 'run location')
    .option('--shards <list>', 'shards to process: N, A-B or a comma list', parseShardList)
    .option('--index <i>', 'this worker\'s index in an array job (default: the index of the engine it runs under: SLURM_ARRAY_TASK_ID in a Slurm job, JOB_COMPLETION_INDEX in a Kubernetes pod, AWS_BATCH_JOB_ARRAY_INDEX in an AWS Batch job)', nonNegativeInt('--index'))
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
        const { runLocalWorkers } = await import('../launch/workers.ts');
        await runLocalWorkers(opts.out, opts.workers, opts.grace);
        if (process.exitCode) return;
      } else {
        await doWork(opts.out, { grace: opts.grace });
        if (process.exitCode) return;
      }
      const { finalizeRun } = await import('../run/finalize.ts');
      await printFinalize(await finalizeRun(opts.out), (performance.now() - started) / 1000);
    }),
  );

  program
    .command('status')
    .description('shards committed / pending, pairs accepted / rejected, acceptance per category, rate and ETA. Exit codes: 0, 2 user error, 3 with --verify when a shard\'s files do not match its marker')
    .argument('<run-uri>', 'run location')
    .option('--json', 'print JSON on stdout')
    .option('--verify', 'also hash every committed shard file against its marker (downloads them); exit 3 on a mismatch')
    .action(
      action(async (runUri: string, opts: { json?: boolean; verify?: boolean }) => {
        const { runStatus, formatStatus } = await import('../run/status.ts');
        const { EXIT_SHARDS_FAILED } = await import('../launch/workers.ts');
        const status = await runStatus(runUri, { verify: opts.verify });
        process.stdout.write(opts.json ? JSON.stringify(status, null, 2) + '\n' : formatStatus(status));
        if (opts.verify && status.shards.invalid.length) process.exitCode = EXIT_SHARDS_FAILED;
      }),
    );

  program
    .command('finalize')
    .description('check every data file and manifest part against its marker (sha256), then write manifest.parquet (one row per candidate, merged from the shards\' manifest parts), stats.json, the README.md dataset card and preview/; idempotent')
    .argument('<run-uri>', 'run location')
    .option('--no-preview', 'skip preview/ (contact sheets, histogram); `pairgen preview` writes it later')
    .option('--trust-sizes', 'check data files and manifest parts against their markers by size only, not sha256 (skips reading every byte; for very large runs)')
    .action(
      action(async (runUri: string, opts: { preview: boolean; trustSizes?: boolean }) => {
        const { finalizeRun } = await import('../run/finalize.ts');
        await printFinalize(await finalizeRun(runUri, { preview: opts.preview, trustSizes: opts.trustSizes }));
      }),
    );
}
