/**
 * The spine end to end: plan → work → finalize on a local folder and on a real S3 server on loopback,
 * with the test-only teacher and scorer (the real ones have their own suites and the demo test).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';
import sharp from 'sharp';
import { planRun } from '../../src/run/plan.ts';
import { workRun } from '../../src/run/work.ts';
import { finalizeRun } from '../../src/run/finalize.ts';
import { runStatus } from '../../src/run/status.ts';
import { openStore } from '../../src/store/index.ts';
import { startS3Server, type S3Server } from '../helpers/s3server.ts';
import { TestScorer, TestTeacher } from '../helpers/test-teacher.ts';
import { FIXTURES, REPO, readTree, tempDir, writeConfig } from '../helpers/run-fixture.ts';

const inject = { teacherFactory: async () => new TestTeacher(), scorerFactory: async () => new TestScorer() };
let s3: S3Server;

before(async () => {
  s3 = await startS3Server({ processEnv: true });
});
after(() => s3.stop());

async function s3Tree(prefix: string): Promise<Map<string, Buffer>> {
  const store = openStore(`s3://${s3.bucket}/${prefix}`);
  const out = new Map<string, Buffer>();
  for await (const e of store.list('')) out.set(e.key, Buffer.from(await store.get(e.key)));
  return out;
}

test('a run on a local folder and on S3 gives byte-identical shards; DuckDB reads shards, rejects and manifest; counts agree with stats', async () => {
  const dir = tempDir();
  const config = writeConfig(dir);
  const local = join(dir, 'run');
  const remote = `s3://${s3.bucket}/runs/a`;
  for (const out of [local, remote]) {
    const { plan, created } = await planRun(config, out);
    assert.equal(created, true);
    assert.equal(plan.shards, 3);
    const summary = await workRun(out, inject);
    assert.equal(summary.committed.length, 3);
    assert.ok(summary.rejected > 0 && summary.accepted > 0, `the test scorer should accept some and reject some (${summary.accepted}/${summary.rejected})`);
    await finalizeRun(out);
  }
  const shardFiles = (m: Map<string, Buffer>) => new Map([...m].filter(([k]) => k.endsWith('.parquet') || k === 'run.json'));
  const a = shardFiles(readTree(local));
  const b = shardFiles(await s3Tree('runs/a'));
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [k, v] of a) assert.ok(v.equals(b.get(k)!), `${k} differs between local and S3`);

  const stats = JSON.parse(readFileSync(join(local, 'stats.json'), 'utf8'));
  const db = await (await DuckDBInstance.create(':memory:')).connect();
  const count = async (sql: string) => Number((await (await db.runAndReadAll(sql)).getRowObjects())[0].n);
  assert.equal(await count(`select count(*) n from read_parquet('${local}/shards/shard-*[0-9].parquet')`), stats.accepted);
  assert.equal(await count(`select count(*) n from read_parquet('${local}/shards/*.rejects.parquet')`), stats.rejected);
  assert.equal(await count(`select count(*) n from read_parquet('${local}/manifest.parquet')`), 24);
  assert.equal(await count(`select count(distinct pair_id) n from read_parquet('${local}/manifest.parquet')`), 24);
  assert.equal(await count(`select count(*) n from read_parquet('${local}/manifest.parquet') where accepted`), stats.accepted);
  const images = (await db.runAndReadAll(`select source_image.bytes as s, edited_image.bytes as e, width, height from read_parquet('${local}/shards/shard-*[0-9].parquet')`)).getRowObjects();
  for (const row of images) {
    for (const blob of [row.s, row.e]) {
      const bytes = Buffer.from((blob as { bytes: Uint8Array }).bytes);
      const meta = await sharp(bytes).metadata();
      assert.equal(meta.width, Number(row.width));
      assert.equal(meta.height, Number(row.height));
      assert.equal(meta.format, 'jpeg');
    }
  }
  const status = await runStatus(local);
  assert.equal(status.shards.committed, 3);
  assert.equal(status.pairs.accepted, stats.accepted);
  assert.equal(status.finalized, true);
  const perCategory = Object.values(status.by_category);
  assert.ok(perCategory.length >= 2);
  assert.equal(perCategory.reduce((n, c) => n + c.accepted, 0), stats.accepted);
  assert.equal(status.rejected_by_reason.identity_below_threshold, stats.rejected);
});

test('planning is idempotent; work skips committed shards; finalize is idempotent', async () => {
  const dir = tempDir();
  const config = writeConfig(dir, { pairs: 10, shardSize: 5 });
  const out = join(dir, 'run');
  await planRun(config, out);
  const first = readFileSync(join(out, 'run.json'));
  assert.equal((await planRun(config, out)).created, false);
  assert.ok(readFileSync(join(out, 'run.json')).equals(first));
  const teacher = new TestTeacher();
  await workRun(out, { ...inject, teacherFactory: async () => teacher });
  assert.equal(teacher.generated, 10);
  const again = new TestTeacher();
  const summary = await workRun(out, { ...inject, teacherFactory: async () => again });
  assert.deepEqual(summary.skipped, [0, 1]);
  assert.equal(again.generated, 0);
  await finalizeRun(out);
  const before = readTree(out);
  await finalizeRun(out);
  const afterTree = readTree(out);
  for (const [k, v] of before) assert.ok(v.equals(afterTree.get(k)!), `${k} changed on a second finalize`);
});

test('a shard whose data file was damaged after commit is not committed and is redone', async () => {
  const dir = tempDir();
  const out = join(dir, 'run');
  await planRun(writeConfig(dir, { pairs: 6, shardSize: 3 }), out);
  await workRun(out, inject);
  const file = join(out, 'shards/shard-00001.parquet');
  const good = readFileSync(file);
  const { writeFileSync } = await import('node:fs');
  writeFileSync(file, good.subarray(0, good.length - 10));
  const status = await runStatus(out);
  assert.deepEqual(status.shards.invalid, [1]);
  await assert.rejects(finalizeRun(out), /1 of 2 shards are not committed/);
  const summary = await workRun(out, inject);
  assert.deepEqual(summary.committed, [1]);
  assert.ok(readFileSync(file).equals(good));
});

test('finalize refuses a run with pending shards and writes nothing', async () => {
  const dir = tempDir();
  const out = join(dir, 'run');
  await planRun(writeConfig(dir, { pairs: 6, shardSize: 3 }), out);
  await workRun(out, { ...inject, shards: [0] });
  await assert.rejects(finalizeRun(out), /1 of 2 shards are not committed \(shard-00001\)/);
  assert.equal(existsSync(join(out, 'manifest.parquet')), false);
  assert.equal(existsSync(join(out, 'stats.json')), false);
});

test('output.splits in the config reaches run.json, the manifest and stats.json; bad fractions are user errors', async () => {
  const dir = tempDir();
  const out = join(dir, 'run');
  const config = writeConfig(dir, { pairs: 12, shardSize: 6 });
  const { plan } = await planRun(config, out, { sets: ['output.splits={train: 0.5, validation: 0.25, test: 0.25}'] });
  assert.deepEqual(plan.splits, { train: 0.5, validation: 0.25, test: 0.25 });
  await workRun(out, inject);
  const { stats } = await finalizeRun(out);
  assert.deepEqual(stats.splits.fractions, plan.splits);
  const total = Object.values(stats.splits.counts).reduce((n, c) => n + c.candidates, 0);
  assert.equal(total, 12);
  await assert.rejects(planRun(config, join(dir, 'bad'), { sets: ['output.splits={train: 0.5, test: 0.25}'] }), /output\.splits: the fractions must sum to 1/);
  assert.equal(existsSync(join(dir, 'bad')), false);
});

test('the same config and models planned from two different folders get the same run_id and the same shard bytes', async () => {
  const { cpSync } = await import('node:fs');
  const runs: string[] = [];
  for (const where of ['a', 'b']) {
    const dir = join(tempDir(`pairgen-${where}-`), 'checkout');
    cpSync(join(REPO, 'prompts/demo.yaml'), join(dir, 'prompts/demo.yaml'));
    cpSync(join(FIXTURES, 'tiny-sd'), join(dir, 'models/tiny-sd'), { recursive: true });
    const config = writeConfig(dir, { pairs: 6, shardSize: 3 });
    const { writeFileSync: write } = await import('node:fs');
    write(config, readFileSync(config, 'utf8').replace(/set: .*/, 'set: prompts/demo.yaml').replace(/model: .*/, 'model: models/tiny-sd'));
    const out = join(dir, 'run');
    await planRun(config, out);
    await workRun(out, inject);
    runs.push(out);
  }
  const [a, b] = runs.map((r) => JSON.parse(readFileSync(join(r, 'run.json'), 'utf8')));
  assert.notEqual(a.config.teacher.model, b.config.teacher.model);
  assert.equal(a.run_id, b.run_id);
  const parquet = (rel: string) => rel.endsWith('.parquet');
  const ta = readTree(runs[0], parquet);
  const tb = readTree(runs[1], parquet);
  for (const [k, v] of ta) assert.ok(v.equals(tb.get(k)!), `${k} differs between the two checkouts`);
});
