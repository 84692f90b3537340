import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { UserError } from '../errors.ts';
import { ENGINES, type Engine } from '../launch/engines.ts';
import type { EmitOptions } from '../launch/emit.ts';
import { localPath, openStore } from '../store/index.ts';
import { log } from '../util/log.ts';
import { action, collectSet, wholeNumber } from './common.ts';
import { writeFileAtomic } from '../util/atomic.ts';

/** The verb's options: EmitOptions (the run's URI comes from the argument) and where to write the files. */
type EmitCliOptions = Omit<EmitOptions, 'runUri'> & { out?: string };

async function doEmit(engine: Engine, runUri: string, opts: EmitCliOptions): Promise<void> {
  const { emitJob, launchHint } = await import('../launch/emit.ts');
  const { readPlan } = await import('../dataset/run-file.ts');
  const store = openStore(runUri);
  const plan = await readPlan(store);
  const files = emitJob(engine, plan, { ...opts, runUri: store.uri });
  if (!opts.out) {
    if (files.length > 1) throw new UserError(`emit ${engine} writes ${files.length} files (${files.map((f) => f.name).join(', ')}): give --out <dir>`);
    process.stdout.write(files[0].text);
    return;
  }
  localPath(opts.out); // refuses special file systems (/proc, /sys, /dev) before anything is made
  mkdirSync(opts.out, { recursive: true });
  const paths = files.map((f) => join(opts.out!, f.name));
  // Each file appears whole or not at all.
  for (const [i, f] of files.entries()) await writeFileAtomic(paths[i], f.text, { context: '--out', mode: engine === 'slurm' ? 0o755 : 0o644 });
  log.info(`wrote ${paths.join(', ')}; launch with: ${launchHint(engine, paths)}; watch with: pairgen status ${runUri}`);
}

export function registerEmit(program: Command): void {
  program
    .command('emit')
    .description('write the files that run a planned run as an array job: a Kubernetes Indexed Job (k8s), an sbatch array script (slurm) or an AWS Batch job definition + submit-job input (batch)')
    .addArgument(program.createArgument('<engine>', 'k8s, slurm or batch').choices(ENGINES))
    .argument('<run-uri>', 'a planned run (pairgen plan)')
    .option('--out <dir>', 'write the file(s) into this folder (batch needs it: it writes two files); default: print to stdout')
    .option('--workers <n>', 'array size: tasks in the job; task i does shards s with s mod n = i (default: min(shards, 100))', wholeNumber('--workers', 1))
    .option('--parallelism <p>', 'tasks running at once (k8s, slurm; default: all)', wholeNumber('--parallelism', 1))
    .option('--image <image>', 'container image with pairgen on its PATH (k8s, batch)')
    .option('--command <cmd>', 'how a task runs pairgen (slurm default: this pairgen by absolute paths, e.g. /usr/bin/node /opt/pairgen/bin/pairgen.js; k8s, batch default: pairgen on the image\'s PATH)')
    .option('--gpus <g>', 'GPUs per task (default: 1 when the plan\'s runtime.execution_providers use a GPU (cuda, tensorrt, rocm, migraphx), else 0)', wholeNumber('--gpus', 0))
    .option('--cpus <c>', 'CPUs per task (default 4 with a GPU, 2 without)', wholeNumber('--cpus', 1))
    .option('--memory <m>', 'memory per task, e.g. 16Gi (default 16Gi with a GPU, 8Gi without)')
    .addOption(new Option('--grace <seconds>', 'the worker\'s --grace: seconds it takes to stop after SIGTERM (default 25)').argParser(wholeNumber('--grace', 0)))
    .option('--retries <r>', 'retries of one task (k8s backoffLimitPerIndex, batch attempts - 1, slurm: the script retries a failed worker; default 3)', wholeNumber('--retries', 0))
    .option('--max-failed-indexes <f>', 'k8s: fail the whole job once this many indexes failed (default: a tenth of --workers, at least 1)', wholeNumber('--max-failed-indexes', 0))
    .option('--name <name>', 'job name (default: pairgen-<run name>-<run id>)')
    .option('--namespace <ns>', 'k8s namespace')
    .option('--secret <name>', 'k8s Secret holding AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL_S3... (default pairgen-s3)')
    .option('--env <NAME=VALUE>', 'a plain environment variable for every task (repeatable; no secrets)', collectSet, [])
    .option('--time <limit>', 'slurm time limit, longer than --grace + 60 s (default 24:00:00)')
    .option('--partition <p>', 'slurm partition')
    .option('--account <a>', 'slurm account')
    .option('--queue <queue>', 'batch: job queue (required for batch)')
    .option('--job-role-arn <arn>', 'batch: IAM role of the container (S3 access)')
    .action(action(doEmit));
}
