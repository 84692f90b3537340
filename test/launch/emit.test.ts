/**
 * `pairgen emit`: the Kubernetes Indexed Job validates against the batch/v1 Job schema (kubernetes-models,
 * generated from the Kubernetes OpenAPI spec); the sbatch script and the AWS Batch files carry the fields
 * that matter, an explicit --index, and a GPU only when the plan's execution providers use one; the sbatch
 * script really runs the workers under bash, stays graceful when Slurm signals every process of the job,
 * and does not retry a user error; the index comes from the engine the worker runs under; bad options
 * are user errors (exit 2) and write nothing. (A real Slurm cluster runs the script in slurm.test.ts.)
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { planRun } from '../../src/run/plan.ts';
import { readPlan } from '../../src/dataset/run-file.ts';
import { MARKERS_PREFIX, shardMarkerKey } from '../../src/dataset/layout.ts';
import { emitJob, type EmitOptions, type Engine } from '../../src/launch/emit.ts';
import { indexFromEnvironment } from '../../src/launch/workers.ts';
import type { RunPlan } from '../../src/dataset/run-file.ts';
import { UserError } from '../../src/errors.ts';
import { openStore } from '../../src/store/index.ts';
import { startS3Server, type S3Server } from '../helpers/s3server.ts';
import { BIN, tempDir, writeConfig } from '../helpers/run-fixture.ts';

let s3: S3Server;
let runUri: string;
/** The same run planned for GPUs: runtime.execution_providers [cuda, cpu]. */
let gpuRunUri: string;
let dir: string;

before(async () => {
  s3 = await startS3Server();
  dir = tempDir();
  runUri = `s3://${s3.bucket}/runs/emit`;
  gpuRunUri = `s3://${s3.bucket}/runs/emit-gpu`;
  await withEnv(s3.env, () => planRun(writeConfig(dir, { pairs: 40, shardSize: 4 }), runUri));
  await withEnv(s3.env, () => planRun(writeConfig(dir, { pairs: 40, shardSize: 4, name: 'gpu', extra: 'runtime:\n  execution_providers: [cuda, cpu]\n' }), gpuRunUri));
});
after(async () => {
  await s3.stop();
});

async function withEnv<T>(env: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    return await fn();
  } finally {
    process.env = saved;
  }
}

function pairgen(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...s3.env, ...env }, timeout: 120_000 });
  return { code: r.status, stderr: r.stderr, stdout: r.stdout };
}

function expectUserError(r: { code: number | null; stderr: string }, message: RegExp) {
  assert.equal(r.code, 2, `exit code 2 expected; stderr: ${r.stderr}`);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'a user error prints no stack trace');
}

test('k8s: an Indexed Job that validates against the batch/v1 Job schema, with the failure policy, resources and Secret', () => {
  const r = pairgen(['emit', 'k8s', gpuRunUri, '--image', 'registry.example/pairgen:1.0', '--workers', '5', '--parallelism', '2', '--gpus', '1', '--cpus', '6', '--memory', '24Gi', '--grace', '40', '--retries', '4', '--namespace', 'gen', '--env', 'AWS_REGION=eu-west-1']);
  assert.equal(r.code, 0, r.stderr);
  const manifest = parse(r.stdout);
  assert.doesNotThrow(() => new Job(manifest).validate(), 'the manifest validates against the Job schema');

  const spec = manifest.spec;
  assert.equal(manifest.metadata.namespace, 'gen');
  assert.match(manifest.metadata.name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'a DNS-1123 name');
  assert.deepEqual([spec.completionMode, spec.completions, spec.parallelism, spec.backoffLimitPerIndex, spec.maxFailedIndexes], ['Indexed', 5, 2, 4, 1]);
  assert.equal(spec.backoffLimit, undefined, 'per-index retries only');
  const rules = spec.podFailurePolicy.rules;
  assert.deepEqual(rules[0], { action: 'FailJob', onExitCodes: { containerName: 'worker', operator: 'In', values: [2] } }, 'a user error fails the job');
  assert.deepEqual(rules[1], { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] }, 'evictions are retried without counting');
  const pod = spec.template.spec;
  assert.equal(pod.restartPolicy, 'Never', 'podFailurePolicy requires restartPolicy Never');
  assert.ok(pod.terminationGracePeriodSeconds > 40, 'Kubernetes waits longer than the worker\'s --grace');
  const [c] = pod.containers;
  assert.equal(c.name, 'worker');
  assert.equal(c.image, 'registry.example/pairgen:1.0');
  // Kubernetes expands $(JOB_COMPLETION_INDEX) in the command: the index is explicit, not guessed from the environment.
  assert.deepEqual(c.command, ['pairgen', '--log-format', 'json', 'work', gpuRunUri, '--index', '$(JOB_COMPLETION_INDEX)', '--count', '5', '--grace', '40', '--retry-failed']);
  assert.deepEqual(c.envFrom, [{ secretRef: { name: 'pairgen-s3' } }]);
  assert.deepEqual(c.env, [{ name: 'AWS_REGION', value: 'eu-west-1' }]);
  assert.deepEqual(c.resources.requests, { cpu: '6', memory: '24576Mi', 'nvidia.com/gpu': '1' });
  assert.deepEqual(c.resources.limits, { memory: '24576Mi', 'nvidia.com/gpu': '1' });
  assert.match(r.stdout, /^# launch: kubectl apply -f /m);
  assert.match(r.stdout, new RegExp(`^# watch: pairgen status ${gpuRunUri}`, 'm'));

  // The emitted worker command, expanded as Kubernetes does, is a valid `pairgen work` command line (it parses and reaches the run).
  const dry = pairgen(c.command.slice(1).map((a: string) => a.replace('$(JOB_COMPLETION_INDEX)', '7')));
  expectUserError(dry, /--index 7 must be below --count 5/);

  // The schema check is not a no-op: what Kubernetes would refuse, it refuses.
  for (const broken of [
    { ...manifest, spec: { ...spec, completionMode: 'indexed' } },
    { ...manifest, spec: { ...spec, completions: 'five' } },
    { ...manifest, spec: { ...spec, template: undefined } },
    { ...manifest, spec: { ...spec, podFailurePolicy: { rules: [{ ...rules[0], action: 'Explode' }] } } },
    { ...manifest, spec: { ...spec, template: { ...spec.template, spec: { ...pod, restartPolicy: 'Sometimes' } } } },
  ]) assert.throws(() => new Job(broken).validate());
});

test('defaults follow the plan: a CPU plan requests no GPU and fits a small node (2 CPUs, 8 GiB); a GPU plan gets 1 GPU, 4 CPUs, 16 GiB', async () => {
  const [cpuPlan, gpuPlan] = await withEnv(s3.env, () => Promise.all([runUri, gpuRunUri].map((u) => readPlan(openStore(u)))));
  const m = parse(emitJob('k8s', cpuPlan, { runUri, image: 'img:1' })[0].text);
  new Job(m).validate();
  assert.deepEqual([m.spec.completions, m.spec.parallelism, m.spec.maxFailedIndexes], [10, 10, 1]);
  assert.deepEqual(m.spec.template.spec.containers[0].resources, { requests: { cpu: '2', memory: '8192Mi' }, limits: { memory: '8192Mi' } });

  const gpu = parse(emitJob('k8s', gpuPlan, { runUri: gpuRunUri, image: 'img:1' })[0].text);
  assert.deepEqual(gpu.spec.template.spec.containers[0].resources.requests, { cpu: '4', memory: '16384Mi', 'nvidia.com/gpu': '1' });
  const slurm = emitJob('slurm', cpuPlan, { runUri })[0].text;
  assert.doesNotMatch(slurm, /--gres/);
  assert.match(slurm, /^#SBATCH --cpus-per-task=2$/m);
  // The default Slurm command is the pairgen that emitted the script, by absolute paths (no PATH needed on the nodes).
  assert.match(slurm, new RegExp(`^  ${process.execPath} ${BIN} --log-format json work `, 'm'));
  assert.match(emitJob('slurm', gpuPlan, { runUri: gpuRunUri })[0].text, /^#SBATCH --gres=gpu:1$/m);
  const def = JSON.parse(emitJob('batch', cpuPlan, { runUri, image: 'i', queue: 'q' })[0].text);
  assert.deepEqual(def.containerProperties.resourceRequirements, [{ type: 'VCPU', value: '2' }, { type: 'MEMORY', value: '8192' }]);
});

test('slurm: an sbatch array script with requeue, a signal before the time limit, and resources', () => {
  const r = pairgen(['emit', 'slurm', gpuRunUri, '--workers', '8', '--parallelism', '3', '--gpus', '2', '--cpus', '8', '--memory', '32G', '--time', '12:00:00', '--partition', 'gpu', '--grace', '30']);
  assert.equal(r.code, 0, r.stderr);
  const s = r.stdout;
  const directives = Object.fromEntries([...s.matchAll(/^#SBATCH --([a-z-]+)(?:=(.*))?$/gm)].map((m) => [m[1], m[2] ?? true]));
  assert.equal(directives.array, '0-7%3');
  assert.equal(directives.requeue, true);
  assert.match(directives.signal as string, /^B:TERM@(\d+)$/);
  assert.ok(Number((directives.signal as string).split('@')[1]) > 30, 'SIGTERM comes earlier than the grace period before the limit');
  assert.deepEqual([directives.time, directives['cpus-per-task'], directives.mem, directives.gres, directives.partition], ['12:00:00', '8', '32768M', 'gpu:2', 'gpu']);
  assert.equal(directives['open-mode'], 'append', 'a requeued task appends to its log');
  assert.match(s, new RegExp(`^  \\S+ \\S+ --log-format json work ${gpuRunUri} --count 8 --grace 30 --retry-failed --index "\\$index" &$`, 'm'));
  assert.match(s, /^index=\$\{SLURM_ARRAY_TASK_ID:\?/m, 'the index is Slurm\'s own, passed explicitly');
  assert.match(s, /^trap stop TERM INT$/m);
  assert.match(s, /\[ "\$attempt" -ge 3 \]/, 'the script retries a failed worker up to --retries times');
  assert.equal(spawnSync('bash', ['-n'], { input: s }).status, 0, 'bash parses the script');
});

test('slurm script under bash: tasks 0..N-1 finish the run (a stray JOB_COMPLETION_INDEX changes nothing); SIGTERM to every process of the job, twice, stops the worker gracefully with nothing partial committed', async () => {
  const local = join(dir, 'slurm-run');
  assert.equal(pairgen(['plan', writeConfig(dir, { pairs: 2, shardSize: 1, steps: 2, name: 'slurm' }), '--out', local]).code, 0);
  const out = join(dir, 'slurm-files');
  const r = pairgen(['emit', 'slurm', local, '--workers', '2', '--command', `${process.execPath} ${BIN}`, '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const [script] = readdirSync(out);
  for (const task of ['0', '1']) {
    const run = spawnSync('bash', [join(out, script)], { encoding: 'utf8', env: { ...process.env, SLURM_ARRAY_TASK_ID: task, JOB_COMPLETION_INDEX: '0' }, timeout: 120_000 });
    assert.equal(run.status, 0, run.stderr);
  }
  const status = JSON.parse(pairgen(['status', local, '--json']).stdout);
  assert.deepEqual([status.shards.committed, status.shards.pending], [2, 0]);

  // A longer run, stopped by SIGTERM as Slurm does before the time limit or on preemption.
  const long = join(dir, 'slurm-long');
  assert.equal(pairgen(['plan', writeConfig(dir, { pairs: 4, shardSize: 2, name: 'long', extra: 'runtime:\n  batch_size: 1\n' }), '--out', long]).code, 0);
  const longOut = join(dir, 'slurm-long-files');
  assert.equal(pairgen(['emit', 'slurm', long, '--workers', '1', '--grace', '20', '--command', `${process.execPath} ${BIN}`, '--out', longOut]).code, 0);
  // Its own process group, so that a signal can reach every process of the "job" as Slurm's scancel does.
  const child = spawn('bash', [join(longOut, readdirSync(longOut)[0])], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, SLURM_ARRAY_TASK_ID: '0' }, detached: true });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  // Stop it once the first shard is committed, i.e. while the second one is being made (a fixed delay
  // would race the worker's start-up on a loaded machine).
  for (let waited = 0; !existsSync(join(long, shardMarkerKey(0))) && waited < 120_000; waited += 100) await new Promise((res) => setTimeout(res, 100));
  const exited = new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  // The worker gets SIGTERM from the engine, again from the script's trap, and once more: it stays graceful.
  process.kill(-child.pid!, 'SIGTERM');
  await new Promise((res) => setTimeout(res, 200));
  // On a fast stop the job may already be gone (ESRCH): the worker then saw the engine's and the trap's signals.
  try {
    process.kill(-child.pid!, 'SIGTERM');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
  const code = await exited;
  assert.equal(code, 143, `the script exits with the worker's signal code; stderr: ${stderr}`);
  assert.equal(stderr.match(/SIGTERM: stopping/g)?.length, 1, stderr);
  assert.match(stderr, /stopped by signal before the shard was committed/, 'the worker stopped through its graceful path, not killed by the second signal');
  assert.doesNotMatch(stderr, /retry/, 'a task being stopped is not retried');
  const markers = existsSync(join(long, MARKERS_PREFIX)) ? readdirSync(join(long, MARKERS_PREFIX)) : [];
  assert.ok(markers.filter((f) => /^shard-\d+\.json$/.test(f)).length < 2, 'stopped before the end');
  const after = JSON.parse(pairgen(['status', long, '--json']).stdout);
  assert.deepEqual(after.shards.invalid, []);
});

test('batch: a job definition with retryStrategy and resources, and a submit-job input with arrayProperties.size', () => {
  const out = join(dir, 'batch');
  const r = pairgen(['emit', 'batch', gpuRunUri, '--image', 'acct.dkr.ecr/pairgen:1', '--queue', 'gpu-queue', '--workers', '6', '--retries', '2', '--memory', '15000Mi', '--job-role-arn', 'arn:aws:iam::1:role/pairgen', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const files = readdirSync(out).sort();
  assert.equal(files.length, 2);
  const def = JSON.parse(readFileSync(join(out, files.find((f) => f.endsWith('.job-definition.json'))!), 'utf8'));
  const submit = JSON.parse(readFileSync(join(out, files.find((f) => f.endsWith('.submit-job.json'))!), 'utf8'));
  assert.equal(def.type, 'container');
  const command: string[] = def.containerProperties.command;
  const args = ['--log-format', 'json', 'work', gpuRunUri, '--count', '6', '--grace', '25', '--retry-failed'];
  assert.deepEqual(command, ['sh', '-c', 'exec "$@" --index "${AWS_BATCH_JOB_ARRAY_INDEX:?not an AWS Batch array child}"', 'pairgen-worker', 'pairgen', ...args]);
  // Batch does not expand variables in a command; the shell appends the child's index: run it as a Batch child would.
  const asChild = (index: string | undefined) => spawnSync(command[0], [...command.slice(1, 4), process.execPath, BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...s3.env, AWS_BATCH_JOB_ARRAY_INDEX: index } });
  const child7 = asChild('7');
  expectUserError({ code: child7.status, stderr: child7.stderr }, /--index 7 must be below --count 6/);
  assert.match(asChild(undefined).stderr, /AWS_BATCH_JOB_ARRAY_INDEX: not an AWS Batch array child/);
  assert.deepEqual(def.containerProperties.resourceRequirements, [{ type: 'VCPU', value: '4' }, { type: 'MEMORY', value: '15000' }, { type: 'GPU', value: '1' }]);
  assert.equal(def.containerProperties.jobRoleArn, 'arn:aws:iam::1:role/pairgen');
  assert.equal(def.retryStrategy.attempts, 3);
  assert.deepEqual(def.retryStrategy.evaluateOnExit[0], { onExitCode: '2', action: 'EXIT' }, 'a user error is not retried');
  assert.ok(def.retryStrategy.evaluateOnExit.length <= 5, 'AWS Batch allows at most 5 conditions');
  assert.deepEqual([submit.jobQueue, submit.jobDefinition, submit.arrayProperties], ['gpu-queue', def.jobDefinitionName, { size: 6 }]);

  // A single task is not an array job (Batch arrays have 2..10,000 children): it names its index itself.
  const one = join(dir, 'batch-one');
  assert.equal(pairgen(['emit', 'batch', runUri, '--image', 'i', '--queue', 'q', '--workers', '1', '--out', one]).code, 0);
  const single = readdirSync(one).map((f) => JSON.parse(readFileSync(join(one, f), 'utf8')));
  assert.ok(single.every((o) => o.arrayProperties === undefined));
  assert.ok(single.some((o) => o.containerProperties?.command.join(' ').includes('--index 0 --count 1')));
});

test('bad emit options are user errors naming the option, and write nothing', async () => {
  const out = join(dir, 'nothing');
  // Through the CLI: exit 2, one line, no stack, no file.
  expectUserError(pairgen(['emit', 'batch', runUri, '--image', 'i', '--queue', 'q', '--grace', '45', '--out', out]), /--grace 45: AWS Batch kills a container 30 s after SIGTERM/);
  expectUserError(pairgen(['emit', 'batch', runUri, '--image', 'i', '--queue', 'q']), /emit batch writes 2 files .*: give --out <dir>/);
  expectUserError(pairgen(['emit', 'slurm', join(dir, 'no-run-here'), '--out', out]), /no run here/);
  expectUserError(pairgen(['emit', 'slurm', runUri, '--time', '1:20', '--out', out]), /--time 1:20: Slurm signals the task 85 s before its time limit \(--grace 25 \+ 60 s\), so the limit must be longer than that/);
  expectUserError(pairgen(['emit', 'k8s', runUri, '--image', 'i', '--gpus', '1', '--out', out]), /--gpus 1: the plan's runtime.execution_providers \[cpu\] run on CPUs only/);
  const engine = pairgen(['emit', 'nomad', runUri]);
  assert.notEqual(engine.code, 0);
  assert.match(engine.stderr, /value 'nomad' is invalid for argument 'engine'\. Allowed choices are k8s, slurm, batch/);
  assert.equal(existsSync(out), false, 'nothing was written');

  // The same checks in process, each naming its option.
  const plan = await withEnv(s3.env, () => readPlan(openStore(runUri)));
  const cases: [Engine, Omit<EmitOptions, 'runUri'> & { runUri?: string }, RegExp][] = [
    ['k8s', {}, /--image: required for k8s/],
    ['k8s', { image: 'i', workers: 11 }, /--workers 11: the run has only 10 shards/],
    ['k8s', { image: 'i', workers: 4, parallelism: 5 }, /--parallelism 5 exceeds --workers 4/],
    ['k8s', { image: 'i', workers: 4, maxFailedIndexes: 5 }, /--max-failed-indexes 5 exceeds --workers 4/],
    ['k8s', { image: 'i', memory: 'lots' }, /--memory lots: expected an amount such as 16Gi/],
    ['k8s', { image: 'i', env: ['AWS_SECRET_ACCESS_KEY=x'] }, /--env AWS_SECRET_ACCESS_KEY: credentials do not belong in a job file/],
    ['k8s', { image: 'i', env: ['novalue'] }, /--env novalue: expected NAME=VALUE/],
    ['k8s', { image: 'i', runUri: join(dir, 'slurm-run') }, /k8s workers reach a run through object storage/],
    ['batch', { image: 'i' }, /--queue: required for batch/],
    ['batch', { image: 'i', queue: 'q', retries: 10 }, /--retries 10: AWS Batch allows at most 10 attempts/],
    ['batch', { image: 'i', queue: 'q', parallelism: 2 }, /--parallelism: an AWS Batch array job has no parallelism/],
    ['slurm', { time: 'forever' }, /--time forever: expected a Slurm time limit/],
    ['slurm', { time: '1' }, /--time 1: Slurm signals the task 85 s before its time limit/],
    ['slurm', { time: '0-00:01:10', grace: 10 }, /--time 0-00:01:10: Slurm signals the task 70 s before/],
    ['slurm', { gpus: 2 }, /--gpus 2: the plan's runtime.execution_providers \[cpu\] run on CPUs only/],
    ['slurm', { name: 'two words' }, /--name two words: expected letters, digits/],
    ['k8s', { image: 'i', name: 'Upper_Case' }, /--name Upper_Case: a Kubernetes Job name is a DNS-1123 label/],
  ];
  for (const [engine, options, message] of cases) {
    assert.throws(() => emitJob(engine, plan, { runUri, ...options }), (e: Error) => e instanceof UserError && message.test(e.message), `${engine} ${JSON.stringify(options)}`);
  }
  // Long enough: one second past the signal lead.
  assert.doesNotThrow(() => emitJob('slurm', plan, { runUri, time: '1:26' }));

  // Plans whose providers need a GPU.
  const withProviders = (providers: string[]): RunPlan => ({ ...plan, config: { ...plan.config, runtime: { ...plan.config.runtime, execution_providers: providers } } });
  assert.throws(() => emitJob('slurm', withProviders(['cuda']), { runUri, gpus: 0 }), /--gpus 0: the plan's runtime.execution_providers \[cuda\] need a GPU and have no cpu fallback/);
  assert.throws(() => emitJob('batch', withProviders(['rocm', 'cpu']), { runUri, image: 'i', queue: 'q' }), /AWS Batch offers NVIDIA GPUs only/);
  const amd = parse(emitJob('k8s', withProviders(['migraphx', 'cpu']), { runUri, image: 'i' })[0].text);
  assert.deepEqual(amd.spec.template.spec.containers[0].resources.limits, { memory: '16384Mi', 'amd.com/gpu': '1' });
  assert.doesNotMatch(emitJob('slurm', withProviders(['cuda', 'cpu']), { runUri, gpus: 0 })[0].text, /--gres/, 'a GPU plan with a cpu fallback may run CPU-only');
});

test('the worker\'s index comes from the engine it runs under; an ambiguous environment is a user error', () => {
  // D1: a Slurm task submitted from a shell that had JOB_COMPLETION_INDEX set takes Slurm's index.
  assert.equal(indexFromEnvironment({ SLURM_JOB_ID: '41', SLURM_ARRAY_TASK_ID: '1', JOB_COMPLETION_INDEX: '0' }), 1);
  assert.equal(indexFromEnvironment({ KUBERNETES_SERVICE_HOST: '10.0.0.1', JOB_COMPLETION_INDEX: '3', SLURM_ARRAY_TASK_ID: '1' }), 3);
  assert.equal(indexFromEnvironment({ AWS_BATCH_JOB_ID: 'abc:2', AWS_BATCH_JOB_ARRAY_INDEX: '2', SLURM_ARRAY_TASK_ID: '1' }), 2);
  // A pod that is not part of an Indexed Job is no engine of ours; a variable set by hand still counts.
  assert.equal(indexFromEnvironment({ KUBERNETES_SERVICE_HOST: '10.0.0.1', SLURM_ARRAY_TASK_ID: '4' }), 4);
  // A Slurm job that is not an array: no index, whatever else was exported.
  assert.equal(indexFromEnvironment({ SLURM_JOB_ID: '41', JOB_COMPLETION_INDEX: '0' }), undefined);
  assert.equal(indexFromEnvironment({}), undefined);
  const bad: [NodeJS.ProcessEnv, RegExp][] = [
    [{ JOB_COMPLETION_INDEX: '0', SLURM_ARRAY_TASK_ID: '1' }, /JOB_COMPLETION_INDEX=0 and SLURM_ARRAY_TASK_ID=1 are set together and no engine's job variable .* says which one applies; give --index/],
    [{ SLURM_JOB_ID: '41', SLURM_ARRAY_TASK_ID: '1', AWS_BATCH_JOB_ID: 'x', AWS_BATCH_JOB_ARRAY_INDEX: '2' }, /runs under Slurm \(SLURM_JOB_ID=41, SLURM_ARRAY_TASK_ID=1\) and AWS Batch .*; give --index/],
    [{ SLURM_JOB_ID: '41', SLURM_ARRAY_TASK_ID: 'one' }, /SLURM_ARRAY_TASK_ID=one is not a whole number/],
  ];
  for (const [env, message] of bad) assert.throws(() => indexFromEnvironment(env), (e: Error) => e instanceof UserError && message.test(e.message), JSON.stringify(env));

  // Through the CLI: exit 2 with the message, nothing done.
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(SLURM_|KUBERNETES_|AWS_BATCH_|JOB_COMPLETION_INDEX$)/.test(k)));
  const r = spawnSync(process.execPath, [BIN, 'work', join(dir, 'slurm-run'), '--count', '2'], { encoding: 'utf8', env: { ...clean, JOB_COMPLETION_INDEX: '0', SLURM_ARRAY_TASK_ID: '1' } });
  expectUserError({ code: r.status, stderr: r.stderr }, /JOB_COMPLETION_INDEX=0 and SLURM_ARRAY_TASK_ID=1 are set together/);
});

test('slurm script: a user error (exit 2) is not retried', async () => {
  const local = join(dir, 'slurm-gone');
  await planRun(writeConfig(dir, { pairs: 2, shardSize: 1, name: 'gone' }), local);
  const [script] = emitJob('slurm', await readPlan(openStore(local)), { runUri: local, workers: 1 });
  rmSync(local, { recursive: true });
  const run = spawnSync('bash', [], { input: script.text, encoding: 'utf8', env: { ...process.env, SLURM_ARRAY_TASK_ID: '0' }, timeout: 120_000 });
  assert.equal(run.status, 2, run.stderr);
  assert.equal(run.stderr.match(/pairgen task 0: start/g)?.length, 1, run.stderr);
  assert.doesNotMatch(run.stderr, /retry/);
});
