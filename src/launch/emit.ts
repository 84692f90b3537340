/**
 * `pairgen emit k8s|slurm|batch`: the files that launch a planned run as an array job on an existing
 * engine. Every task runs `pairgen work <run> --index i --count N --retry-failed`, the index spelled out
 * from the engine's own variable (JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID, AWS_BATCH_JOB_ARRAY_INDEX),
 * so task i does shards s ≡ i (mod N). Kubernetes and Batch retry failed tasks; Slurm never does, so the
 * sbatch script retries the worker itself. pairgen makes any retry safe. GPUs are requested only when the
 * plan's execution providers use one. Every file is checked before it is returned.
 *
 * Exit codes the files rely on (see src/cli/run.ts): 0 share done, 2 user error (retrying cannot help:
 * fail the job), 3 some shards failed (retry the task), 130/143 stopped by a signal (retry).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { UserError } from '../errors.ts';
import { hasCredentials } from '../store/config.ts';
import type { RunPlan } from '../dataset/run-file.ts';
import { ENGINES, type Engine } from './engines.ts';

export { ENGINES, type Engine };

export interface EmitOptions {
  /** The run's normalised URI (Store.uri): s3://... for k8s and batch, an absolute path or s3://... for slurm. */
  runUri: string;
  /** Array size N (tasks); default min(shards, 100). */
  workers?: number;
  /** Tasks running at once; default N. */
  parallelism?: number;
  /** Container image with pairgen on PATH (k8s, batch). */
  image?: string;
  /** Command that runs pairgen: on the cluster's nodes (slurm; default: this node and this pairgen, by absolute paths), in the image (k8s, batch; default "pairgen"). */
  command?: string;
  gpus?: number;
  cpus?: number;
  /** e.g. "16Gi", "16G", "16000Mi", "16384M". */
  memory?: string;
  /** Seconds the worker takes to stop after SIGTERM (its --grace). */
  grace?: number;
  /** Retries of one task: k8s backoffLimitPerIndex, Batch attempts - 1, the sbatch script's own retries. */
  retries?: number;
  /** k8s: the job fails once more indexes than this have failed; default max(1, N/10). */
  maxFailedIndexes?: number;
  name?: string;
  /** k8s namespace. */
  namespace?: string;
  /** k8s Secret with the S3 settings and credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL_S3...). */
  secret?: string;
  /** Plain environment variables (no secrets) for every task. */
  env?: string[];
  /** slurm: --time limit; --partition, --account. */
  time?: string;
  partition?: string;
  account?: string;
  /** batch: job queue for the submit-job input, and the IAM role the container runs as (S3 access). */
  queue?: string;
  jobRoleArn?: string;
}

export interface EmittedFile {
  /** Suggested file name. */
  name: string;
  text: string;
}

const SECRET_NAMES = /SECRET|TOKEN|PASSWORD|CREDENTIAL|PRIVATE_KEY/i;
const BIN = fileURLToPath(new URL('../../bin/pairgen.js', import.meta.url));

/** onnxruntime execution providers that run on a GPU, and whose GPUs they are. */
const GPU_PROVIDERS: Record<string, 'nvidia' | 'amd'> = { cuda: 'nvidia', tensorrt: 'nvidia', rocm: 'amd', migraphx: 'amd' };

/** The GPU maker the plan's execution providers need, or null when they run on CPUs. */
function planGpu(plan: RunPlan): 'nvidia' | 'amd' | null {
  const gpus = plan.config.runtime.execution_providers.map((p) => GPU_PROVIDERS[p.toLowerCase()]).filter((v) => v !== undefined);
  return gpus[0] ?? null;
}

/** The files for one engine; every option is checked first and a mistake is a UserError naming it. */
export function emitJob(engine: Engine, plan: RunPlan, o: EmitOptions): EmittedFile[] {
  const r = resolve(engine, plan, o);
  if (engine === 'k8s') return [{ name: `${r.name}.yaml`, text: kubernetesJob(plan, r) }];
  if (engine === 'slurm') return [{ name: `${r.name}.sbatch`, text: slurmScript(plan, r) }];
  return batchFiles(plan, r);
}

/** A file that fails its check is a bug in emit (every option was checked first), not the user's doing. */
class InvalidEmit extends Error {}

interface Resolved {
  runUri: string;
  workers: number;
  parallelism: number;
  image: string | undefined;
  command: string;
  gpus: number;
  gpu: 'nvidia' | 'amd' | null;
  cpus: number;
  memoryMiB: number;
  grace: number;
  retries: number;
  maxFailedIndexes: number;
  name: string;
  namespace?: string;
  secret: string;
  env: [string, string][];
  time: string;
  partition?: string;
  account?: string;
  queue?: string;
  jobRoleArn?: string;
}

function resolve(engine: Engine, plan: RunPlan, o: EmitOptions): Resolved {
  if (engine !== 'slurm' && !o.runUri.startsWith('s3://')) {
    throw new UserError(`${o.runUri}: ${engine} workers reach a run through object storage; plan the run at s3://bucket/prefix (a local folder works with slurm on a shared file system)`);
  }
  const workers = o.workers ?? Math.min(plan.shards, 100);
  if (workers > plan.shards) throw new UserError(`--workers ${workers}: the run has only ${plan.shards} shards, so ${workers - plan.shards} tasks would have nothing to do; give --workers ${plan.shards} or fewer`);
  const parallelism = o.parallelism ?? workers;
  if (engine === 'batch' && o.parallelism !== undefined) throw new UserError('--parallelism: an AWS Batch array job has no parallelism of its own; cap the compute environment\'s maxvCpus instead');
  if (engine === 'batch' && !o.queue) throw new UserError('--queue: required for batch: the job queue the array job is submitted to');
  if (parallelism > workers) throw new UserError(`--parallelism ${parallelism} exceeds --workers ${workers}`);
  const retries = o.retries ?? 3;
  const maxFailedIndexes = o.maxFailedIndexes ?? Math.max(1, Math.floor(workers / 10));
  if (maxFailedIndexes > workers) throw new UserError(`--max-failed-indexes ${maxFailedIndexes} exceeds --workers ${workers}`);
  const env: [string, string][] = (o.env ?? []).map((kv) => {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(kv);
    if (!m) throw new UserError(`--env ${kv}: expected NAME=VALUE`);
    if (SECRET_NAMES.test(m[1]) || /^AWS_ACCESS_KEY_ID$/.test(m[1])) {
      throw new UserError(`--env ${m[1]}: credentials do not belong in a job file; put them in the Kubernetes Secret (--secret), the AWS Batch job role (--job-role-arn) or the Slurm user's ~/.aws files`);
    }
    if (/^AWS_ENDPOINT_URL/.test(m[1]) && hasCredentials(m[2])) throw new UserError(`--env ${m[1]}: credentials in the URL are not allowed; give the endpoint without user:password and the credentials through the Secret, job role or ~/.aws`);
    return [m[1], m[2]];
  });
  const gpu = planGpu(plan);
  const providers = `runtime.execution_providers [${plan.config.runtime.execution_providers.join(', ')}]`;
  const gpus = o.gpus ?? (gpu ? 1 : 0);
  if (gpus > 0 && !gpu) throw new UserError(`--gpus ${gpus}: the plan's ${providers} run on CPUs only, so the tasks would hold GPUs they never use; give --gpus 0, or plan with a GPU provider first (e.g. --set runtime.execution_providers=[cuda,cpu])`);
  if (gpus === 0 && gpu && !plan.config.runtime.execution_providers.includes('cpu')) throw new UserError(`--gpus 0: the plan's ${providers} need a GPU and have no cpu fallback; give --gpus 1 or more`);
  if (engine === 'batch' && gpus > 0 && gpu === 'amd') throw new UserError(`--gpus ${gpus}: AWS Batch offers NVIDIA GPUs only, and the plan's ${providers} use AMD's; plan with cuda or cpu for batch`);
  const name = o.name ?? jobName(plan);
  if (engine === 'k8s' && !(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name) && name.length <= 63)) throw new UserError(`--name ${name}: a Kubernetes Job name is a DNS-1123 label: lower-case letters, digits and '-', at most 63 characters, a letter or digit at both ends`);
  if (engine !== 'k8s' && !/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/.test(name)) throw new UserError(`--name ${name}: expected letters, digits, '-' and '_' (at most 128, starting with a letter or digit)`);
  const grace = o.grace ?? 25;
  const time = o.time ?? '24:00:00';
  if (engine === 'slurm') {
    const seconds = slurmSeconds(time);
    const lead = grace + 60;
    if (seconds <= lead) throw new UserError(`--time ${time}: Slurm signals the task ${lead} s before its time limit (--grace ${grace} + 60 s), so the limit must be longer than that`);
  }
  return {
    runUri: o.runUri,
    workers,
    parallelism,
    image: o.image,
    command: o.command ?? (engine === 'slurm' ? `${sh(process.execPath)} ${sh(BIN)}` : 'pairgen'),
    gpus,
    gpu,
    // A CPU-only plan on a small node: 4 CPUs or 16 GiB would be refused where 2 CPUs and 8 GiB fit.
    cpus: o.cpus ?? (gpus > 0 ? 4 : 2),
    memoryMiB: parseMemory(o.memory ?? (gpus > 0 ? '16Gi' : '8Gi')),
    grace,
    retries,
    maxFailedIndexes,
    name,
    namespace: o.namespace,
    secret: o.secret ?? 'pairgen-s3',
    env,
    time,
    partition: o.partition,
    account: o.account,
    queue: o.queue,
    jobRoleArn: o.jobRoleArn,
  };
}

/** A Slurm time limit in seconds: "M", "M:S", "H:M:S", "D-H", "D-H:M", "D-H:M:S" (sbatch --time). */
function slurmSeconds(text: string): number {
  const m = /^(?:(\d+)-(\d+)(?::(\d+)(?::(\d+))?)?|(\d+)(?::(\d+)(?::(\d+))?)?)$/.exec(text);
  if (!m) throw new UserError(`--time ${text}: expected a Slurm time limit such as 24:00:00, 90 (minutes) or 2-00:00:00`);
  const n = m.map((v) => Number(v ?? 0));
  if (m[1] !== undefined) return ((n[1] * 24 + n[2]) * 60 + n[3]) * 60 + n[4];
  if (m[7] !== undefined) return (n[5] * 60 + n[6]) * 60 + n[7];
  return n[5] * 60 + n[6];
}

/** A DNS-1123 label from the run's name and id: "pairgen-<name>-<run_id[0:8]>", at most 52 characters. */
function jobName(plan: RunPlan): string {
  const base = plan.name.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 34);
  return `pairgen-${base ? base + '-' : ''}${plan.run_id.slice(0, 8)}`;
}

/** "16Gi", "16G", "512Mi", "16384M", "16384" (MiB) → MiB. */
function parseMemory(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(Gi|G|GB|Mi|M|MB)?$/i.exec(text.trim());
  if (!m) throw new UserError(`--memory ${text}: expected an amount such as 16Gi, 16G or 16384Mi`);
  const n = Number(m[1]);
  const unit = (m[2] ?? 'Mi').toLowerCase();
  const mib = unit.startsWith('g') ? n * 1024 : n;
  if (!(mib >= 64)) throw new UserError(`--memory ${text}: at least 64Mi expected`);
  return Math.round(mib);
}

/** `pairgen work`'s arguments; `index` is a number, the engine's way of naming its variable, or null when a shell appends it. */
function workArgs(r: Resolved, index: string | null): string[] {
  return ['--log-format', 'json', 'work', r.runUri, ...(index === null ? [] : ['--index', index]), '--count', String(r.workers), '--grace', String(r.grace), '--retry-failed'];
}

function header(engine: string, plan: RunPlan, r: Resolved, launch: string[]): string[] {
  return [
    `pairgen emit ${engine}: run "${plan.name}" (${plan.run_id}) at ${r.runUri}`,
    `${plan.shards} shards over ${r.workers} tasks (task i does shards s with s mod ${r.workers} = i), ${r.parallelism} at a time`,
    `per task: ${r.cpus} CPUs, ${r.memoryMiB} MiB, ${r.gpus} GPUs (${r.gpu ? `the plan's execution providers use ${r.gpu === 'nvidia' ? 'NVIDIA' : 'AMD'} GPUs` : 'the plan runs on CPUs'})`,
    ...launch,
    `watch: pairgen status ${r.runUri}    when every shard is committed: pairgen finalize ${r.runUri}`,
  ];
}

function kubernetesJob(plan: RunPlan, r: Resolved): string {
  if (!r.image) throw new UserError('--image: required for k8s: the container image that has pairgen on its PATH');
  const labels = { 'app.kubernetes.io/name': 'pairgen', 'app.kubernetes.io/component': 'worker', 'pairgen.dev/run-id': plan.run_id };
  const gpuResource = r.gpu === 'amd' ? 'amd.com/gpu' : 'nvidia.com/gpu';
  const gpuLimit: Record<string, string> = r.gpus > 0 ? { [gpuResource]: String(r.gpus) } : {};
  const resources: Record<string, string> = { cpu: String(r.cpus), memory: `${r.memoryMiB}Mi`, ...gpuLimit };
  const job = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: r.name, ...(r.namespace ? { namespace: r.namespace } : {}), labels },
    spec: {
      completionMode: 'Indexed',
      completions: r.workers,
      parallelism: r.parallelism,
      // Per-index retries: one bad node or preempted pod does not use up the whole job's budget.
      backoffLimitPerIndex: r.retries,
      maxFailedIndexes: r.maxFailedIndexes,
      podFailurePolicy: {
        rules: [
          // Exit 2 is a user error (bad credentials, config, models): every retry would fail the same way.
          { action: 'FailJob', onExitCodes: { containerName: 'worker', operator: 'In', values: [2] } },
          // Evictions, preemption, node drains: not the worker's fault; retry without counting.
          { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
        ],
      },
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: 'Never',
          // Kubernetes sends SIGTERM, then SIGKILL after this; the worker stops within --grace.
          terminationGracePeriodSeconds: r.grace + 15,
          containers: [
            {
              name: 'worker',
              image: r.image,
              // Kubernetes expands $(JOB_COMPLETION_INDEX): the variable it sets in every container of an Indexed Job.
              command: [r.command, ...workArgs(r, '$(JOB_COMPLETION_INDEX)')],
              env: r.env.map(([name, value]) => ({ name, value })),
              envFrom: [{ secretRef: { name: r.secret } }],
              resources: { requests: resources, limits: { memory: resources.memory, ...gpuLimit } },
            },
          ],
        },
      },
    },
  };
  const comment = header('k8s', plan, r, [
    `needs: a Secret "${r.secret}" with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL_S3, AWS_REGION off AWS), e.g.`,
    `  kubectl create secret generic ${r.secret} --from-env-file=s3.env`,
    `launch: kubectl apply -f ${r.name}.yaml    progress: kubectl get job ${r.name}`,
  ]);
  try {
    new Job(job as ConstructorParameters<typeof Job>[0]).validate();
  } catch (e) {
    throw new InvalidEmit(`the emitted Job does not validate against the batch/v1 Job schema: ${(e as Error).message}`);
  }
  return comment.map((l) => `# ${l}`).join('\n') + '\n' + stringify(job, { lineWidth: 0, aliasDuplicateObjects: false });
}

/** Single-quote a word for bash. */
function sh(word: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function slurmScript(plan: RunPlan, r: Resolved): string {
  const lines = [
    '#!/bin/bash',
    ...header('slurm', plan, r, [
      `worker: ${r.command} (--command; every node must reach this path and the run)`,
      `launch: sbatch ${r.name}.sbatch    progress: squeue -r -n ${r.name}    log of task i: ${r.name}-<job id>_i.log`,
      `a task that ended unfinished (not exit 0): sbatch --array=<its ids> ${r.name}.sbatch (any task may run again: finished shards are skipped)`,
      'S3 settings and credentials: the submitting environment (exported) or ~/.aws on the nodes',
    ]).map((l) => `# ${l}`),
    `#SBATCH --job-name=${r.name}`,
    `#SBATCH --array=0-${r.workers - 1}%${r.parallelism}`,
    // Preempted or failed-node tasks go back in the queue instead of failing.
    '#SBATCH --requeue',
    // SIGTERM to this script (B:) well before the time limit, so the worker can stop cleanly.
    `#SBATCH --signal=B:TERM@${r.grace + 60}`,
    `#SBATCH --time=${r.time}`,
    `#SBATCH --cpus-per-task=${r.cpus}`,
    `#SBATCH --mem=${r.memoryMiB}M`,
    ...(r.gpus > 0 ? [`#SBATCH --gres=gpu:${r.gpus}`] : []),
    ...(r.partition ? [`#SBATCH --partition=${r.partition}`] : []),
    ...(r.account ? [`#SBATCH --account=${r.account}`] : []),
    `#SBATCH --output=${r.name}-%A_%a.log`,
    // A requeued task writes on after its earlier attempt's lines instead of truncating them.
    '#SBATCH --open-mode=append',
    '#SBATCH --export=ALL',
    'set -uo pipefail',
    ...r.env.map(([k, v]) => `export ${k}=${sh(v)}`),
    // The index is passed explicitly: variables exported from the submitting shell (JOB_COMPLETION_INDEX...) do not count.
    `index=\${SLURM_ARRAY_TASK_ID:?not a Slurm array task: submit with sbatch ${r.name}.sbatch}`,
    'worker=',
    'stopping=',
    // scancel, requeue, the time limit and preemption may signal every process of the job, the worker
    // included, or (--signal=B:, scancel --batch) this shell only: pass the first signal on, once.
    `stop() { [ -n "$stopping" ] && return; stopping=1; [ -n "$worker" ] && kill -TERM "$worker" 2>/dev/null; }`,
    'trap stop TERM INT',
    // Slurm does not retry a task that failed; this loop does, up to --retries times: not after exit 0,
    // nor 2 (a user error: the same again), nor once the task is being stopped (Slurm requeues or ends it).
    'attempt=0',
    'while :; do',
    // One line per start: a requeued task's log holds every attempt (--open-mode=append).
    '  echo "pairgen task $index: start $((attempt + 1)) on $(hostname -s), job ${SLURM_JOB_ID:-?}, Slurm restart ${SLURM_RESTART_COUNT:-0}" >&2',
    `  ${r.command} ${workArgs(r, null).map(sh).join(' ')} --index "$index" &`,
    '  worker=$!',
    '  wait "$worker"',
    '  code=$?',
    // A trapped signal ends the wait early; wait again for the worker's own exit code.
    '  while kill -0 "$worker" 2>/dev/null; do wait "$worker"; code=$?; done',
    '  worker=',
    `  if [ "$code" = 0 ] || [ "$code" = 2 ] || [ -n "$stopping" ] || [ "$attempt" -ge ${r.retries} ]; then exit "$code"; fi`,
    '  attempt=$((attempt + 1))',
    `  echo "pairgen task $index: worker exited with $code; retry $attempt of ${r.retries} in $((attempt * 10)) s" >&2`,
    '  sleep $((attempt * 10)) & wait $!',
    '  [ -n "$stopping" ] && exit 143',
    'done',
  ];
  const text = lines.join('\n') + '\n';
  const parsed = spawnSync('bash', ['-n'], { input: text, encoding: 'utf8' });
  if (parsed.error === undefined && parsed.status !== 0) throw new InvalidEmit(`the emitted sbatch script does not parse: ${parsed.stderr.trim()}`);
  return text;
}

function batchFiles(plan: RunPlan, r: Resolved): EmittedFile[] {
  if (!r.image) throw new UserError('--image: required for batch: the container image that has pairgen on its PATH');
  if (r.workers > 10_000) throw new UserError(`--workers ${r.workers}: an AWS Batch array job has at most 10,000 children`);
  if (r.grace >= 30) throw new UserError(`--grace ${r.grace}: AWS Batch kills a container 30 s after SIGTERM; give --grace 25 or less`);
  if (r.retries + 1 > 10) throw new UserError(`--retries ${r.retries}: AWS Batch allows at most 10 attempts (--retries 9)`);
  const resourceRequirements = [
    { type: 'VCPU', value: String(r.cpus) },
    { type: 'MEMORY', value: String(r.memoryMiB) },
    ...(r.gpus > 0 ? [{ type: 'GPU', value: String(r.gpus) }] : []),
  ];
  // A child of an array job gets AWS_BATCH_JOB_ARRAY_INDEX; a single job (size 1) does not, so it says --index 0.
  // Batch does not expand variables in a command: a shell puts the child's index after the worker's arguments.
  const array = r.workers >= 2;
  const command = array
    ? ['sh', '-c', 'exec "$@" --index "${AWS_BATCH_JOB_ARRAY_INDEX:?not an AWS Batch array child}"', 'pairgen-worker', r.command, ...workArgs(r, null)]
    : [r.command, ...workArgs(r, '0')];
  const definition = {
    jobDefinitionName: r.name,
    type: 'container',
    platformCapabilities: ['EC2'],
    containerProperties: {
      image: r.image,
      command,
      resourceRequirements,
      environment: r.env.map(([name, value]) => ({ name, value })),
      ...(r.jobRoleArn ? { jobRoleArn: r.jobRoleArn } : {}),
    },
    retryStrategy: {
      attempts: r.retries + 1,
      evaluateOnExit: [
        { onExitCode: '2', action: 'EXIT' },
        { onStatusReason: 'Host EC2*', action: 'RETRY' },
        { onReason: '*', action: 'RETRY' },
      ],
    },
    propagateTags: true,
    tags: { 'pairgen-run-id': plan.run_id },
  };
  const submit = {
    jobName: r.name,
    jobQueue: r.queue,
    jobDefinition: r.name,
    ...(array ? { arrayProperties: { size: r.workers } } : {}),
    tags: { 'pairgen-run-id': plan.run_id },
  };
  const json = (o: unknown) => JSON.stringify(o, null, 2) + '\n';
  return [
    { name: `${r.name}.job-definition.json`, text: json(definition) },
    { name: `${r.name}.submit-job.json`, text: json(submit) },
  ];
}

/** How to launch what was emitted (printed by the CLI after writing the files). */
export function launchHint(engine: Engine, files: string[]): string {
  if (engine === 'k8s') return `kubectl apply -f ${files[0]}`;
  if (engine === 'slurm') return `sbatch ${files[0]}`;
  return `aws batch register-job-definition --cli-input-json file://${files[0]} && aws batch submit-job --cli-input-json file://${files[1]}`;
}
