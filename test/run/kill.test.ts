/**
 * Crash safety with real processes: a worker killed with SIGKILL in the middle of a shard, then run
 * again, ends with the same committed bytes as an uninterrupted run, and at no moment is a shard
 * marked committed while its data differs (a watcher checks every marker it sees, deeply).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { planRun } from '../../src/run/plan.ts';
import { workRun } from '../../src/run/work.ts';
import { isCommitted } from '../../src/dataset/commit.ts';
import { openStore } from '../../src/store/index.ts';
import { TestScorer, TestTeacher } from '../helpers/test-teacher.ts';
import { readTree, tempDir, writeConfig } from '../helpers/run-fixture.ts';

const WORKER = fileURLToPath(new URL('./work-process.ts', import.meta.url));

function startWorker(runUri: string, delayMs: number) {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, runUri, String(delayMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on('exit', (code, signal) => res({ code, signal })));
  return { child, exited, output: () => out };
}

test('SIGKILL mid-shard, then rerun: same committed bytes as an uninterrupted run; never a committed shard with wrong data', async (t) => {
  const dir = tempDir();
  const config = writeConfig(dir, { pairs: 32, shardSize: 8, extra: 'runtime:\n  batch_size: 2\n' });
  const reference = join(dir, 'reference');
  await planRun(config, reference);
  await workRun(reference, { teacherFactory: async () => new TestTeacher(), scorerFactory: async () => new TestScorer() });

  const crashed = join(dir, 'crashed');
  await planRun(config, crashed);
  const store = openStore(crashed);
  const violations: string[] = [];
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const markers = existsSync(join(crashed, 'markers')) ? readdirSync(join(crashed, 'markers')).filter((f) => /^shard-\d+\.json$/.test(f)) : [];
      for (const m of markers) {
        const shard = Number(m.slice(6, 11));
        if (!(await isCommitted(store, shard, true))) violations.push(`${m} present while its data did not match`);
      }
      await new Promise((r) => setTimeout(r, 15));
    }
  })();

  let kills = 0;
  for (let round = 0; round < 6; round++) {
    const w = startWorker(crashed, 40);
    // Once the worker is up (it reports its first shard, committed or skipped), kill it a little later
    // — a different moment each round, so kills land mid-shard, between data files and marker, or between shards.
    const killer = (async () => {
      while (w.child.exitCode === null && !w.output().includes('\n')) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 40 + round * 60));
      if (w.child.exitCode === null && !w.output().includes('"done":true')) {
        w.child.kill('SIGKILL');
        kills++;
      }
    })();
    const { signal } = await w.exited;
    await killer;
    if (signal === null && w.output().includes('"done":true')) break;
  }
  // Finish whatever is left without interference.
  const last = startWorker(crashed, 0);
  const { code } = await last.exited;
  assert.equal(code, 0);
  watching = false;
  await watcher;

  assert.ok(kills >= 1, 'at least one worker was killed mid-run');
  assert.deepEqual(violations, []);
  const parquet = (rel: string) => rel.endsWith('.parquet');
  const a = readTree(reference, parquet);
  const b = readTree(crashed, parquet);
  assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
  for (const [k, v] of a) assert.ok(v.equals(b.get(k)!), `${k} differs after kills`);
  t.diagnostic(`SIGKILLs: ${kills}; markers checked continuously, violations: ${violations.length}`);
});
