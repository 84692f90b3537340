/**
 * Workers racing on the same shards of a run on the loopback S3 server: markers hold nothing that varies
 * between attempts and go in with a conditional write (or, where the server ignores it, the same bytes
 * from every racer), so every marker a reader sees while they race is whole and parses, and the run ends
 * byte-identical to one process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MARKERS_PREFIX, markerShard } from '../../src/dataset/layout.ts';
import { planRun } from '../../src/run/plan.ts';
import { workRun } from '../../src/run/work.ts';
import { parseMarker } from '../../src/shards/index.ts';
import { openStore } from '../../src/store/index.ts';
import { startS3Server } from '../helpers/s3server.ts';
import { TestScorer, TestTeacher } from '../helpers/test-teacher.ts';
import { readTree, tempDir, writeConfig } from '../helpers/run-fixture.ts';

const WORKER = fileURLToPath(new URL('./work-process.ts', import.meta.url));

test('three workers racing on every shard over S3: every marker read is whole; the result equals one process', async (t) => {
  const s3 = await startS3Server({ processEnv: true });
  t.after(() => s3.stop());
  const dir = tempDir();
  const config = writeConfig(dir, { pairs: 24, shardSize: 4 });

  const reference = join(dir, 'reference');
  await planRun(config, reference);
  await workRun(reference, { teacherFactory: async () => new TestTeacher(), scorerFactory: async () => new TestScorer() });

  const uri = `s3://${s3.bucket}/race`;
  await planRun(config, uri);
  const store = openStore(uri);
  const barrier = join(dir, 'go');
  const workers = [0, 1, 2].map(() => {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER, uri, '20'], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, PAIRGEN_TEST_BARRIER: barrier } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    return { child, output: () => out, exited: new Promise<number | null>((r) => child.on('exit', (code) => r(code))) };
  });
  while (workers.some((w) => !w.output().includes('"ready":true'))) await new Promise((r) => setTimeout(r, 20));
  writeFileSync(barrier, '');

  let reads = 0;
  const torn: string[] = [];
  let racing = true;
  const reader = (async () => {
    while (racing) {
      for await (const e of store.list(MARKERS_PREFIX)) {
        if (markerShard(e.key) === null) continue;
        const bytes = await store.getIfExists(e.key);
        if (!bytes) continue;
        reads++;
        try {
          parseMarker(bytes, e.key);
        } catch (err) {
          torn.push(`${e.key}: ${(err as Error).message}`);
        }
      }
    }
  })();
  const codes = await Promise.all(workers.map((w) => w.exited));
  racing = false;
  await reader;

  assert.deepEqual(codes, [0, 0, 0], workers.map((w) => w.output()).join('\n'));
  assert.ok(reads > 0, 'the reader saw markers while the workers raced');
  assert.deepEqual(torn, []);
  // Every data file and marker equals the single-process run's (markers name files relative to the root).
  const local = readTree(reference, (k) => k.startsWith('data/') || k.startsWith('rejects/') || (k.startsWith('markers/') && !k.endsWith('.timings.json')));
  for (const [key, bytes] of local) assert.ok(Buffer.from(await store.get(key)).equals(bytes), `${key} differs from one process's`);
  t.diagnostic(`marker reads while racing: ${reads}; conditional writes on this server: ${await store.conditionalWrites()}`);
});
