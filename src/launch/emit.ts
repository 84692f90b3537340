/**
 * `pairgen emit k8s|slurm|batch`: the files that launch a planned run as an array job on an existing
 * engine. Every task runs `pairgen work <run> --count N --retry-failed` and takes its index from the
 * engine's environment (JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID, AWS_BATCH_JOB_ARRAY_INDEX), so task i
 * does shards s ≡ i (mod N). The engine retries failed tasks; pairgen makes any retry safe.
 *
 * Exit codes the files rely on (see src/cli/run.ts): 0 share done, 2 user error (retrying cannot help:
 * fail the job), 3 some shards failed (retry the task), 130/143 stopped by a signal (retry).
 */
import { stringify } from 'yaml';
import { UserError } from '../errors.ts';
import { hasCredentials } from '../store/config.ts';
import type { RunPlan } from '../dataset/run-file.ts';

export const ENGINES = ['k8s', 'slurm', 'batch'] as const;
export type Engine = (typeof ENGINES)[number];

export interface EmitOptions {
  /** The run's normalised URI (Store.uri): s3://... for k8s and batch, an absolute path or s3://... for slurm. */
  runUri: string;
  /** Array size N (tasks); default min(shards, 100). */
  workers?: number;
  /** Tasks running at once; default N. */
  parallelism?: number;
  /** Container image with pairgen on PATH (k8s, batch). */
  image?: string;
  /** Command that runs pairgen on the cluster's nodes (slurm); default "pairgen". */
  command?: string;
  gpus?: number;
  cpus?: number;
  /** e.g. "16Gi", "16G", "16000Mi", "16384M". */
  memory?: string;
  /** Seconds the worker takes to stop after SIGTERM (its --grace). */
  grace?: number;
  /** Retries of one task: k8s backoffLimitPerIndex, Batch attempts - 1. */
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

/** The files for one engine; every option is checked first and a mistake is a UserError naming it. */
export function emitJob(engine: Engine, plan: RunPlan, o: EmitOptions): EmittedFile[] {
  const r = resolve(engine, plan, o);
  if (engine === 'k8s') return [{ name: `${r.name}.yaml`, text: kubernetesJob(plan, r) }];
  if (engine === 'slurm') return [{ name: `${r.name}.sbatch`, text: slurmScript(plan, r) }];
  return batchFiles(plan, r);
}

interface Resolved {
  runUri: string;
  workers: number;
  parallelism: number;
  image: string | undefined;
  command: string;
  gpus: number;
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
  return {
    runUri: o.runUri,
    workers,
    parallelism,
    image: o.image,
    command: o.command ?? 'pairgen',
    gpus: o.gpus ?? 1,
    cpus: o.cpus ?? 4,
    memoryMiB: parseMemory(o.memory ?? '16Gi'),
    grace: o.grace ?? 25,
    retries,
    maxFailedIndexes,
    name: o.name ?? jobName(plan),
    namespace: o.namespace,
    secret: o.secret ?? 'pairgen-s3',
    env,
    time: o.time ?? '24:00:00',
    partition: o.partition,
    account: o.account,
    queue: o.queue,
    jobRoleArn: o.jobRoleArn,
  };
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

function workArgs(r: Resolved, index: number | null): string[] {
  return ['--log-format', 'json', 'work', r.runUri, ...(index === null ? [] : ['--index', String(index)]), '--count', String(r.workers), '--grace', String(r.grace), '--retry-failed'];
}

function header(engine: string, plan: RunPlan, r: Resolved, launch: string[]): string[] {
  return [
    `pairgen emit ${engine}: run "${plan.name}" (${plan.run_id}) at ${r.runUri}`,
    `${plan.shards} shards over ${r.workers} tasks (task i does shards s with s mod ${r.workers} = i), ${r.parallelism} at a time`,
    ...launch,
    `watch: pairgen status ${r.runUri}    when every shard is committed: pairgen finalize ${r.runUri}`,
  ];
}

function kubernetesJob(plan: RunPlan, r: Resolved): string {
  if (!r.image) throw new UserError('--image: required for k8s: the container image that has pairgen on its PATH');
  const labels = { 'app.kubernetes.io/name': 'pairgen', 'app.kubernetes.io/component': 'worker', 'pairgen.dev/run-id': plan.run_id };
  const resources: Record<string, string> = { cpu: String(r.cpus), memory: `${r.memoryMiB}Mi` };
  if (r.gpus > 0) resources['nvidia.com/gpu'] = String(r.gpus);
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
              command: [r.command, ...workArgs(r, null)],
              env: r.env.map(([name, value]) => ({ name, value })),
              envFrom: [{ secretRef: { name: r.secret } }],
              resources: { requests: resources, limits: { memory: resources.memory, ...(r.gpus > 0 ? { 'nvidia.com/gpu': resources['nvidia.com/gpu'] } : {}) } },
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
  return comment.map((l) => `# ${l}`).join('\n') + '\n' + stringify(job, { lineWidth: 0, aliasDuplicateObjects: false });
}

/** Single-quote a word for bash. */
function sh(word: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function slurmScript(plan: RunPlan, r: Resolved): string {
  if (!/^(\d+-)?\d{1,3}(:\d{2}){0,2}$/.test(r.time)) throw new UserError(`--time ${r.time}: expected a Slurm time limit such as 24:00:00 or 2-00:00:00`);
  const lines = [
    '#!/bin/bash',
    ...header('slurm', plan, r, [`launch: sbatch ${r.name}.sbatch    progress: squeue -r -n ${r.name}`, 'S3 settings and credentials: the submitting environment (exported) or ~/.aws on the nodes']).map((l) => `# ${l}`),
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
    '#SBATCH --export=ALL',
    'set -uo pipefail',
    ...r.env.map(([k, v]) => `export ${k}=${sh(v)}`),
    // The shard share comes from SLURM_ARRAY_TASK_ID. The worker runs in the background so that this
    // shell can pass SIGTERM (from --signal, scancel or preemption) on to it and wait for it to stop.
    `${r.command} ${workArgs(r, null).map(sh).join(' ')} &`,
    'worker=$!',
    `trap 'kill -TERM "$worker" 2>/dev/null' TERM INT`,
    'wait "$worker"',
    'code=$?',
    // A trapped signal ends the first wait early; wait again for the worker's own exit code.
    'while kill -0 "$worker" 2>/dev/null; do wait "$worker"; code=$?; done',
    'exit "$code"',
  ];
  return lines.join('\n') + '\n';
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
  const array = r.workers >= 2;
  const definition = {
    jobDefinitionName: r.name,
    type: 'container',
    platformCapabilities: ['EC2'],
    containerProperties: {
      image: r.image,
      command: [r.command, ...workArgs(r, array ? null : 0)],
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
