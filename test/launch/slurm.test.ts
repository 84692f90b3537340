/**
 * `pairgen emit slurm` on a real Slurm cluster: scripts/slurm-cluster.sh brings up one node from Debian's
 * packages (slurm-wlm 22.05, munge), sbatch runs the emitted script unchanged, and the run ends
 * byte-identical to one process: with the CPU-only defaults and a stray JOB_COMPLETION_INDEX exported
 * from the submitting shell (every task still does its own share), and with one task's worker killed
 * (-9: the script retries it) and the other task requeued (its log keeps both attempts). Exit codes come
 * from Slurm's job completion log. Where Slurm cannot be installed (no root or no apt-get) the test is
 * skipped and says so.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { shardMarkerKey } from '../../src/dataset/layout.ts';
import { readPlan } from '../../src/dataset/run-file.ts';
import { emitJob, type EmitOptions } from '../../src/launch/emit.ts';
import { planRun, runStatus, workRun } from '../../src/run/index.ts';
import { openStore } from '../../src/store/index.ts';
import { BIN, FIXTURES, readTree, REPO, tempDir, writeFlowConfig } from '../helpers/run-fixture.ts';

const CLUSTER = join(REPO, 'scripts/slurm-cluster.sh');
const clusterEnv: Record<string, string> = {};
let skip: string | false = false;
let dir: string;
let reference: string;
let config: string;

function run(command: string, args: string[], options: { cwd?: string; env?: Record<string, string>; timeout?: number } = {}) {
  const r = spawnSync(command, args, { encoding: 'utf8', cwd: options.cwd, env: { ...process.env, ...clusterEnv, ...options.env }, timeout: options.timeout ?? 120_000 });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

before(async () => {
  const up = run('bash', [CLUSTER, 'up'], { timeout: 600_000 });
  if (up.code === 3) {
    skip = `the Slurm engine test was NOT run: ${up.stderr.trim()}`;
    return;
  }
  assert.equal(up.code, 0, `scripts/slurm-cluster.sh up failed:\n${up.stderr}`);
  clusterEnv.SLURM_CONF = /^SLURM_CONF=(.*)$/m.exec(up.stdout)![1];

  // One process's run of the same plan: what every Slurm round must equal byte for byte.
  dir = tempDir('pairgen-slurm-');
  // Two denoising steps without guidance: a shard takes about a second, so a task outlives a kill or a requeue.
  config = writeFlowConfig(dir, 'slurm', { seed: 7, pairs: 6, shardSize: 1, teacher: `model: ${join(FIXTURES, 'tiny-sd')}, steps: 2, guidance_scale: 1`, identity: 'enabled: false' });
  reference = join(dir, 'reference');
  await planRun(config, reference);
  await workRun(reference);
});

after(() => {
  if (skip === false && clusterEnv.SLURM_CONF) {
    const down = run('bash', [CLUSTER, 'down']);
    assert.equal(down.code, 0, down.stderr);
  }
});

/**
 * Plan the config at `name`, emit its sbatch script (what `pairgen emit slurm` writes, made in this
 * process: each pairgen process costs seconds on a busy machine) and submit it unchanged.
 */
async function submit(name: string, options: Omit<EmitOptions, 'runUri'>, submitEnv: Record<string, string> = {}) {
  const runDir = join(dir, name);
  await planRun(config, runDir);
  const files = join(dir, `${name}-files`);
  mkdirSync(files);
  const [script] = emitJob('slurm', await readPlan(openStore(runDir)), { runUri: openStore(runDir).uri, workers: 2, ...options });
  writeFileSync(join(files, script.name), script.text, { mode: 0o755 });
  const sbatch = run('sbatch', ['--parsable', script.name], { cwd: files, env: submitEnv });
  assert.equal(sbatch.code, 0, sbatch.stderr);
  return { jobId: sbatch.stdout.trim().split(';')[0], runDir, files, script: script.text };
}

/** The job-completion records of each array task of `jobId`, oldest first: task id → their fields. */
function completions(jobId: string): Map<number, Record<string, string>[]> {
  const log = readFileSync(join(dirname(clusterEnv.SLURM_CONF), 'log/jobcomp.txt'), 'utf8');
  const tasks = new Map<number, Record<string, string>[]>();
  for (const line of log.split('\n')) {
    const fields = Object.fromEntries([...line.matchAll(/(\w+)=(\S*)/g)].map((m) => [m[1], m[2]]));
    if (fields.ArrayJobId === jobId) tasks.set(Number(fields.ArrayTaskId), [...(tasks.get(Number(fields.ArrayTaskId)) ?? []), fields]);
  }
  return tasks;
}

/** Job states after which Slurm does not run the task again (a requeue is recorded as PENDING). */
const FINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL', 'OUT_OF_MEMORY', 'BOOT_FAIL', 'DEADLINE', 'PREEMPTED']);

const queued = (jobId: string) => run('squeue', ['-h', '-r', '-j', jobId, '-o', '%i %T']).stdout.trim();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait until no task of the job is pending or running and both have a completion record; cancel it on time-out. */
async function finish(jobId: string, files: string): Promise<Map<number, Record<string, string>[]>> {
  for (let waited = 0; waited < 400_000; waited += 500) {
    const tasks = completions(jobId);
    if (queued(jobId) === '' && tasks.size === 2 && [...tasks.values()].every((records) => FINAL.has(records.at(-1)!.JobState))) return tasks;
    await sleep(500);
  }
  run('scancel', [jobId]);
  const logs = readdirSync(files).filter((f) => f.endsWith('.log')).map((f) => `${f}:\n${readFileSync(join(files, f), 'utf8')}`);
  assert.fail(`job ${jobId} did not finish in 400 s; squeue: ${queued(jobId)}\n${logs.join('\n')}`);
}

async function waitFor(what: string, ready: () => boolean): Promise<void> {
  for (let waited = 0; !ready(); waited += 100) {
    if (waited > 300_000) assert.fail(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Every task COMPLETED with exit 0, `status --verify` clean, and every data file and marker equal to one process's. */
async function assertFinished(tasks: Map<number, Record<string, string>[]>, runDir: string, logs: string) {
  for (const [task, records] of tasks) assert.deepEqual([records.at(-1)!.JobState, records.at(-1)!.ExitCode], ['COMPLETED', '0:0'], `task ${task}: ${JSON.stringify(records)}\n${logs}`);
  const status = await runStatus(runDir, { verify: true });
  assert.deepEqual([status.shards.committed, status.shards.pending, status.shards.invalid, status.shards.failed], [6, 0, [], []]);
  const files = (k: string) => k.startsWith('data/') || k.startsWith('rejects/') || (k.startsWith('markers/') && !k.endsWith('.timings.json'));
  const expected = readTree(reference, files);
  const got = readTree(runDir, files);
  assert.deepEqual([...got.keys()].sort(), [...expected.keys()].sort());
  for (const [key, bytes] of expected) assert.ok(got.get(key)!.equals(bytes), `${key} differs from one process's`);
}

const taskLogs = (files: string) => readdirSync(files).filter((f) => f.endsWith('.log')).sort().map((f) => readFileSync(join(files, f), 'utf8'));

test('slurm: the emitted script with its defaults on a CPU-only node, submitted with a stray JOB_COMPLETION_INDEX: every task does its own share', async (t) => {
  if (skip) return t.skip(skip);
  const { jobId, runDir, files, script } = await submit('defaults', {}, { JOB_COMPLETION_INDEX: '0' });
  assert.doesNotMatch(script, /--gres/, 'a CPU-only plan requests no GPU');
  assert.match(script, new RegExp(`^# worker: ${process.execPath} ${BIN} `, 'm'), 'the default command is this pairgen, by absolute paths');
  const tasks = await finish(jobId, files);
  const logs = taskLogs(files);
  await assertFinished(tasks, runDir, logs.join('\n'));
  assert.equal(logs.length, 2);
  // Each task did its own three shards (0,2,4 and 1,3,5), none twice.
  logs.forEach((log, task) => {
    const committed = [...log.matchAll(/shard-(\d+) committed/g)].map((m) => Number(m[1]));
    assert.deepEqual(committed, [0, 2, 4].map((s) => s + task), log);
  });
});

test('slurm: a worker killed with -9 is retried by the script; a requeued task starts again and appends to its log', async (t) => {
  if (skip) return t.skip(skip);
  // One CPU per task: both tasks run at once on this node.
  const { jobId, runDir, files } = await submit('faults', { cpus: 1, memory: '1Gi' });

  // Both watched at once: each task is acted on as soon as it has committed its first shard, while it
  // makes the next (one after the other, a task that started early could finish before the other's turn).
  const killTask0 = async () => {
    // Task 0: kill -9 its worker.
    await waitFor('shard 0', () => existsSync(join(runDir, shardMarkerKey(0))));
    const pid = workerPid(runDir, 0);
    assert.ok(pid, 'the worker of task 0 is running');
    process.kill(pid, 'SIGKILL');
  };
  const requeueTask1 = async () => {
    // Task 1: requeue it (Slurm stops it, then starts it again after the credential expired).
    await waitFor('shard 1', () => existsSync(join(runDir, shardMarkerKey(1))));
    const requeue = run('scontrol', ['requeue', `${jobId}_1`]);
    assert.equal(requeue.code, 0, requeue.stderr);
  };
  await Promise.all([killTask0(), requeueTask1()]);

  const tasks = await finish(jobId, files);
  const [log0, log1] = taskLogs(files);
  await assertFinished(tasks, runDir, `${log0}\n${log1}`);
  assert.equal(tasks.get(1)![0].JobState, 'PENDING', 'Slurm recorded the requeue of task 1');
  assert.match(log0, /pairgen task 0: worker exited with 137; retry 1 of 3/);
  assert.match(log0, /pairgen task 0: start 2 /);
  assert.match(log1, /pairgen task 1: start 1 .*Slurm restart 0/, 'the first attempt\'s lines are kept');
  assert.match(log1, /pairgen task 1: start 1 .*Slurm restart 1/, 'the requeued attempt appended its own');
});

/** The pid of the `pairgen work <runDir> ... --index <index>` process, from /proc. */
function workerPid(runDir: string, index: number): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const at = argv.indexOf('--index');
    if (argv.includes('work') && argv.includes(runDir) && at > 0 && argv[at + 1] === String(index)) return Number(entry);
  }
  return undefined;
}
