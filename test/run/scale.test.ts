/**
 * Scale-out with real processes against a real S3 server on loopback (s3rver): array-job workers
 * (`--index i --count N`) killed with SIGKILL at random moments and restarted, round after round, until
 * the run completes; and two workers started at the same instant on the same shards (on a local folder:
 * see that test for why not s3rver). In both, the committed
 * shards (data and rejects files, manifest parts and markers) are byte-identical to a single-process run, and a watcher
 * that reads every marker it sees, all the time, never finds one whose data files do not match it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { planRun } from '../../src/run/plan.ts';
import { workRun } from '../../src/run/work.ts';
import { runStatus } from '../../src/run/status.ts';
import { finalizeRun } from '../../src/run/finalize.ts';
import { DATA_PREFIX, MANIFEST_PARTS_PREFIX, markerShard, MARKERS_PREFIX, REJECTS_PREFIX } from '../../src/dataset/layout.ts';
import { markerFiles, parseMarker, verifyMarker } from '../../src/shards/index.ts';
import { openStore, type Store } from '../../src/store/index.ts';
import { startS3Server, type S3Server } from '../helpers/s3server.ts';
import { TestScorer, TestTeacher } from '../helpers/test-teacher.ts';
import { readTree, tempDir, writeConfig } from '../helpers/run-fixture.ts';
import { mulberry32 as prng } from '../helpers/prng.ts';

const WORKER = fileURLToPath(new URL('./work-process.ts', import.meta.url));
let s3: S3Server;

before(async () => {
  s3 = await startS3Server({ processEnv: true });
});
after(() => s3.stop());

function startWorker(runUri: string, delayMs: number, args: string[] = [], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, runUri, String(delayMs), ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on('exit', (code, signal) => res({ code, signal })));
  return { child, exited, output: () => out };
}

/** Reads every marker on the store again and again; any whose files do not match it is a violation. */
function watchMarkers(store: Store) {
  const violations: string[] = [];
  let checks = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      for await (const e of store.list(MARKERS_PREFIX)) {
        if (markerShard(e.key) === null) continue;
        const marker = parseMarker(await store.get(e.key), e.key);
        const files = new Map<string, Uint8Array | null>();
        for (const f of markerFiles(marker)) files.set(f.name, await store.getIfExists(f.name));
        const check = verifyMarker(marker, files);
        checks++;
        if (!check.ok) violations.push(`${e.key}: ${check.problems.join('; ')}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    violations,
    checks: () => checks,
    async stop() {
      running = false;
      await loop;
    },
  };
}

/** A clean single-process run of the same config on a local folder: the bytes every other run must match. */
async function referenceRun(config: string, dir: string): Promise<Map<string, Buffer>> {
  const reference = join(dir, 'reference');
  await planRun(config, reference);
  await workRun(reference, { teacherFactory: async () => new TestTeacher(), scorerFactory: async () => new TestScorer() });
  return readTree(reference, isShardContent);
}

/** A shard's content: its data and rejects files, its manifest part and its marker (markers hold no timings, so they are identical too). */
const isShardContent = (key: string) => key.startsWith(DATA_PREFIX) || key.startsWith(REJECTS_PREFIX) || key.startsWith(MANIFEST_PARTS_PREFIX) || markerShard(key) !== null;

async function assertSameAsReference(store: Store, want: Map<string, Buffer>) {
  const got = new Map<string, Buffer>();
  for (const prefix of [DATA_PREFIX, REJECTS_PREFIX, MANIFEST_PARTS_PREFIX, MARKERS_PREFIX]) {
    for await (const e of store.list(prefix)) if (isShardContent(e.key)) got.set(e.key, Buffer.from(await store.get(e.key)));
  }
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
  for (const [k, v] of want) assert.ok(v.equals(got.get(k)!), `${k} differs from the single-process run`);
}


test('3 array-job workers on S3, SIGKILLed at random moments and restarted until done: shards identical to one process, no torn commit', async (t) => {
  const dir = tempDir();
  const config = writeConfig(dir, { pairs: 48, shardSize: 4, extra: 'runtime:\n  batch_size: 2\n' });
  const want = await referenceRun(config, dir);
  const uri = `s3://${s3.bucket}/scale/killed`;
  await planRun(config, uri);
  const store = openStore(uri);
  const watcher = watchMarkers(store);

  const N = 3;
  const random = prng(6);
  let kills = 0;
  let rounds = 0;
  const done = new Set<number>();
  // A round starts every worker whose share is not done yet; each is killed at a random moment with
  // probability 0.75. Kills stop after 5 rounds so that the run can finish.
  while (done.size < N) {
    rounds++;
    assert.ok(rounds <= 12, 'the run completes');
    const workers = [...Array(N).keys()].filter((i) => !done.has(i)).map((i) => ({ i, w: startWorker(uri, 150, ['--index', String(i), '--count', String(N)]) }));
    const timers = workers.map(({ w }) => {
      if (rounds > 5 || random() >= 0.75) return null;
      return setTimeout(() => {
        if (w.child.exitCode === null && w.child.signalCode === null) {
          w.child.kill('SIGKILL');
          kills++;
        }
      }, 800 + random() * 2700);
    });
    for (const [k, { i, w }] of workers.entries()) {
      const { code, signal } = await w.exited;
      if (timers[k]) clearTimeout(timers[k]!);
      if (signal === null) {
        assert.equal(code, 0, `worker ${i} failed: ${w.output()}`);
        done.add(i);
      }
    }
  }
  await watcher.stop();

  assert.ok(kills >= 3, `workers were killed (${kills})`);
  assert.deepEqual(watcher.violations, []);
  assert.ok(watcher.checks() > 12, 'the watcher saw markers while the workers ran');
  const status = await runStatus(uri, { verify: true });
  assert.deepEqual([status.shards.committed, status.shards.invalid.length, status.shards.failed.length], [12, 0, 0]);
  await assertSameAsReference(store, want);
  t.diagnostic(`rounds: ${rounds}; SIGKILLs: ${kills}; marker checks: ${watcher.checks()}, violations: 0; 12 shards byte-identical to a single-process run`);
});

test('two workers running the same shards at the same time end with one committed copy whose marker matches', async (t) => {
  const dir = tempDir();
  const config = writeConfig(dir, { pairs: 24, shardSize: 4, extra: 'runtime:\n  batch_size: 2\n' });
  const want = await referenceRun(config, dir);
  // On a local folder: writes there are atomic (temp file + rename), as PUTs are on S3, MinIO and GCS.
  // s3rver is not: two PUTs of one key at the same instant can interleave in its file, so a truly
  // simultaneous pair of workers can leave it a torn marker that no real object store would.
  const uri = join(dir, 'twice');
  await planRun(config, uri);
  const store = openStore(uri);
  const watcher = watchMarkers(store);
  // Both take every shard (as two pods of one index would); neither sees the other's commit in time.
  // A barrier starts both at the same instant, so neither finds the other's shards committed on a slow machine.
  const barrier = join(dir, 'go');
  const a = startWorker(uri, 30, ['--index', '0', '--count', '1'], { PAIRGEN_TEST_BARRIER: barrier });
  const b = startWorker(uri, 30, ['--index', '0', '--count', '1'], { PAIRGEN_TEST_BARRIER: barrier });
  while (!a.output().includes('"ready"') || !b.output().includes('"ready"')) await new Promise((r) => setTimeout(r, 10));
  writeFileSync(barrier, '');
  const [ra, rb] = await Promise.all([a.exited, b.exited]);
  await watcher.stop();
  assert.deepEqual([ra.code, rb.code], [0, 0], a.output() + b.output());
  const committedBy = (out: string) => new Set(out.split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((e) => e.status === 'committed').map((e) => e.shard as number));
  const both = [...committedBy(a.output())].filter((s) => committedBy(b.output()).has(s));
  assert.ok(both.length > 0, 'some shards were committed by both workers');
  assert.deepEqual(watcher.violations, []);
  const status = await runStatus(uri, { verify: true });
  assert.deepEqual([status.shards.committed, status.shards.invalid.length], [6, 0]);
  await assertSameAsReference(store, want);

  // finalize reads big shard files by ranges (footer + metadata columns); forced here on every file, it
  // writes the same manifest as whole-file reads.
  await finalizeRun(uri);
  const whole = await store.get('manifest.parquet');
  await finalizeRun(uri, { rangeReadBytes: 1 });
  assert.ok(Buffer.from(whole).equals(Buffer.from(await store.get('manifest.parquet'))), 'the same manifest from ranged reads');
  t.diagnostic(`shards committed by both workers: ${both.length} of 6; marker checks: ${watcher.checks()}, violations: 0`);
});
