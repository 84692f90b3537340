/**
 * The spine end to end: plan → work → finalize on a local folder and on a real S3 server on loopback,
 * with the test-only teacher and scorer (the real ones have their own suites and the demo test); and
 * through the real CLI, finalize's and `status --verify`'s sha256 checks and two workers racing on a shard.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';
import sharp from 'sharp';
import { planRun } from '../../src/run/plan.ts';
import { workRun } from '../../src/run/work.ts';
import { finalizeRun } from '../../src/run/finalize.ts';
import { runStatus } from '../../src/run/status.ts';
import { openStore } from '../../src/store/index.ts';
import { isDataKey, shardMarkerKey, shardTimingsKey } from '../../src/dataset/layout.ts';
import { parseMarker } from '../../src/shards/index.ts';
import { startS3Server, type S3Server } from '../helpers/s3server.ts';
import { TestScorer, TestTeacher } from '../helpers/test-teacher.ts';
import { BIN, FIXTURES, REPO, readTree, runAsync, sqlRows, tempDir, writeConfig } from '../helpers/run-fixture.ts';

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

function pairgen(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stderr: r.stderr, stdout: r.stdout };
}

/** Several pairgen calls at once (each spends seconds starting up); only for calls that do not depend on one another. */
async function pairgenAll(...calls: string[][]) {
  const results = await Promise.all(calls.map((args) => runAsync(process.execPath, [BIN, ...args], { timeout: 300_000 })));
  return results.map((r) => ({ code: r.status, stderr: r.stderr, stdout: r.stdout }));
}

/** The files that hold a shard's content: data, rejects and markers (not the timings, which vary between attempts). */
const shardContent = (rel: string) => rel.endsWith('.parquet') || (rel.startsWith('markers/') && !rel.endsWith('.timings.json'));

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
  // Markers hold no timings: they too are identical; so is finalize's checksums.sha256.
  const shardFiles = (m: Map<string, Buffer>) => new Map([...m].filter(([k]) => shardContent(k) || k === 'run.json' || k === 'checksums.sha256'));
  const a = shardFiles(readTree(local));
  const b = shardFiles(await s3Tree('runs/a'));
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  assert.deepEqual([...a.keys()].filter((k) => k.startsWith('markers/')).sort(), ['markers/shard-00000.json', 'markers/shard-00001.json', 'markers/shard-00002.json']);
  for (const [k, v] of a) assert.ok(v.equals(b.get(k)!), `${k} differs between local and S3`);

  const stats = JSON.parse(readFileSync(join(local, 'stats.json'), 'utf8'));
  const db = await (await DuckDBInstance.create(':memory:')).connect();
  const count = async (sql: string) => Number((await (await db.runAndReadAll(sql)).getRowObjects())[0].n);
  assert.equal(await count(`select count(*) n from read_parquet('${local}/data/*.parquet')`), stats.accepted);
  assert.equal(await count(`select count(*) n from read_parquet('${local}/rejects/*.parquet')`), stats.rejected);
  // Every row of data/<split>-*.parquet is in that split, and the manifest names the file each row is in.
  assert.equal(await count(`select count(*) n from read_parquet('${local}/data/*.parquet', filename = true) where not starts_with(filename, '${local}/data/' || split || '-')`), 0);
  assert.equal(await count(`select count(*) n from read_parquet('${local}/data/*.parquet', filename = true) d join read_parquet('${local}/manifest.parquet') m on m.pair_id = d.pair_id and '${local}/' || m.file = d.filename and m.split = d.split`), stats.accepted);
  assert.equal(await count(`select count(*) n from read_parquet('${local}/manifest.parquet') where not accepted and file = 'rejects/shard-' || lpad(shard::varchar, 5, '0') || '.parquet'`), stats.rejected);
  assert.equal(await count(`select count(*) n from read_parquet('${local}/manifest.parquet')`), 24);
  assert.equal(await count(`select count(distinct pair_id) n from read_parquet('${local}/manifest.parquet')`), 24);
  assert.equal(await count(`select count(*) n from read_parquet('${local}/manifest.parquet') where accepted`), stats.accepted);
  const images = (await db.runAndReadAll(`select source_image.bytes as s, edited_image.bytes as e, width, height from read_parquet('${local}/data/*.parquet')`)).getRowObjects();
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
  const name = dataFileOf(out, 1);
  const file = join(out, name);
  const good = readFileSync(file);
  writeFileSync(file, good.subarray(0, good.length - 10));
  const status = await runStatus(out);
  assert.deepEqual(status.shards.invalid, [1]);
  await assert.rejects(finalizeRun(out), new RegExp(`1 shard has a marker that do(?:es)? not match (?:its|their) files \\(shard-00001: ${escape(name)}: size ${good.length - 10}, marker says ${good.length}\\)`));
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
  for (const f of ['manifest.parquet', 'stats.json', 'README.md', 'checksums.sha256']) assert.equal(existsSync(join(out, f)), false, `${f} written`);
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
  // Each split's accepted pairs are exactly the rows of its data files, and the manifest agrees.
  for (const [split, c] of Object.entries(stats.splits.counts)) {
    const files = readdirSync(join(out, 'data')).filter((f) => f.startsWith(`${split}-`));
    const glob = `read_parquet('${out}/data/${split}-*.parquet')`;
    assert.equal(files.length ? await sqlCount(`select count(*) n from ${glob}`) : 0, c.accepted, `${split}: rows in data/${split}-*.parquet`);
    if (files.length) assert.equal(await sqlCount(`select count(*) n from ${glob} where split <> '${split}'`), 0, `${split}: rows of another split`);
    assert.equal(await sqlCount(`select count(*) n from read_parquet('${out}/manifest.parquet') where split = '${split}'`), c.candidates, `${split}: manifest rows`);
  }
  assert.ok(Object.values(stats.splits.counts).filter((c) => c.accepted > 0).length >= 2, 'the pairs fall in more than one split');
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
  const ta = readTree(runs[0], shardContent);
  const tb = readTree(runs[1], shardContent);
  assert.deepEqual([...ta.keys()].sort(), [...tb.keys()].sort());
  assert.ok(ta.has(shardMarkerKey(1)));
  for (const [k, v] of ta) assert.ok(v.equals(tb.get(k)!), `${k} differs between the two checkouts`);
});

/** The first data file listed in a shard's marker. */
function dataFileOf(out: string, shard: number): string {
  const marker = parseMarker(readFileSync(join(out, shardMarkerKey(shard))), shardMarkerKey(shard));
  const f = marker.files.find((x) => isDataKey(x.name));
  assert.ok(f, `shard ${shard} has accepted pairs`);
  return f.name;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const sqlCount = async (sql: string) => Number((await sqlRows(sql))[0].n);

/**
 * Flip one byte inside the first JPEG image of a data file (its size stays the same), where no Parquet
 * structure or metadata column is: only a sha256 check can find it. Returns the original bytes.
 */
function flipImageByte(file: string): Buffer {
  const good = readFileSync(file);
  const start = good.indexOf(Buffer.from([0xff, 0xd8, 0xff]));
  const end = good.indexOf(Buffer.from([0xff, 0xd9]), start);
  assert.ok(start > 0 && end > start + 64, `${file} holds a JPEG image`);
  const bad = Buffer.from(good);
  bad[end - 16] ^= 0x01;
  writeFileSync(file, bad);
  return good;
}

function assertSameTree(before: Map<string, Buffer>, after: Map<string, Buffer>, what: string) {
  assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort(), `${what}: files were added or removed`);
  for (const [k, v] of before) assert.ok(v.equals(after.get(k)!), `${what}: ${k} changed`);
}

test('a data file corrupted without changing its size: finalize exits 2 naming it and writes nothing; status --verify exits 3 and never says finalized', async () => {
  const dir = tempDir();
  const out = join(dir, 'run');
  await planRun(writeConfig(dir, { pairs: 6, shardSize: 3 }), out);
  await workRun(out, inject);
  const name = dataFileOf(out, 1);
  const good = flipImageByte(join(out, name));
  const problem = new RegExp(`shard-00001: ${escape(name)}: sha256 differs from the marker`);

  // A refused finalize and two kinds of status, run at once: none of them writes.
  const untouched = readTree(out);
  const [refused, verified, quick] = await pairgenAll(['finalize', out], ['status', out, '--verify'], ['status', out]);

  // finalize checks sha256 by default: one line naming the shard and the file, exit 2, nothing written.
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, problem);
  assert.doesNotMatch(refused.stderr, /\n\s+at /, 'no stack trace');
  for (const f of ['manifest.parquet', 'stats.json', 'README.md', 'checksums.sha256']) assert.equal(existsSync(join(out, f)), false, `${f} written`);
  assertSameTree(untouched, readTree(out), 'a refused finalize');

  // status --verify hashes every file: shard 1 does not match its marker, exit 3.
  assert.equal(verified.code, 3, verified.stderr);
  assert.match(verified.stdout, /shards: 1\/2 committed, 1 pending, 1 with a marker that does not match its files \(1\)/);
  assert.match(verified.stdout, /^not finalized: some shards do not match their markers/m);
  // Plain status compares sizes only (no reads), which a flipped byte keeps: it cannot see this.
  assert.equal(quick.code, 0, quick.stderr);
  assert.match(quick.stdout, /shards: 2\/2 committed, 0 pending\n/);

  // --trust-sizes finalizes over it (sizes match), as documented; then plain status says finalized,
  // status --verify still exits 3 and does not, and the checksums file lets any reader find the damage.
  const trusted = pairgen(['finalize', out, '--trust-sizes', '--no-preview']);
  assert.equal(trusted.code, 0, trusted.stderr);
  assert.match(trusted.stdout, /^written: .*README\.md; no preview\/ \(`pairgen preview .* --all` writes it\)$/m, 'the summary names no pictures it did not write');
  const [plain, afterFinalize, text] = await pairgenAll(['status', out], ['status', out, '--verify', '--json'], ['status', out, '--verify']);
  assert.match(plain.stdout, /^finalized: /m);
  assert.equal(afterFinalize.code, 3, afterFinalize.stderr);
  const json = JSON.parse(afterFinalize.stdout);
  assert.deepEqual([json.shards.invalid, json.finalized], [[1], false]);
  assert.equal(text.code, 3);
  assert.doesNotMatch(text.stdout, /^finalized/m);
  const sums = spawnSync('sha256sum', ['-c', 'checksums.sha256'], { cwd: out, encoding: 'utf8' });
  assert.notEqual(sums.status, 0);
  assert.match(sums.stdout, new RegExp(`^${escape(name)}: FAILED$`, 'm'));

  // A sha256 finalize over the finalized run refuses again and leaves its outputs as they were.
  const finalized = readTree(out);
  const again = pairgen(['finalize', out]);
  assert.equal(again.code, 2, again.stderr);
  assert.match(again.stderr, problem);
  assertSameTree(finalized, readTree(out), 'a refused finalize of a finalized run');

  // With the byte restored everything checks: finalize, status --verify, sha256sum -c.
  writeFileSync(join(out, name), good);
  assert.equal(pairgen(['finalize', out, '--no-preview']).code, 0);
  const ok = pairgen(['status', out, '--verify']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^finalized: /m);
  const checked = spawnSync('sha256sum', ['-c', 'checksums.sha256'], { cwd: out, encoding: 'utf8' });
  assert.equal(checked.status, 0, checked.stdout + checked.stderr);
  assert.match(checked.stdout, new RegExp(`^${escape(name)}: OK$`, 'm'));
});

test('two `pairgen work --shards 0 --force` racing on one shard of a local run leave the marker and files one process writes', async () => {
  const dir = tempDir();
  const config = writeConfig(dir, { pairs: 4, shardSize: 2, steps: 2 });
  // The bytes a single process writes for shard 0 (same plan, so the same run_id).
  const single = join(dir, 'single');
  const raced = join(dir, 'raced');
  for (const r of await pairgenAll(['plan', config, '--out', single], ['plan', config, '--out', raced])) assert.equal(r.code, 0, r.stderr);
  const alone = pairgen(['work', single, '--shards', '0']);
  assert.equal(alone.code, 0, alone.stderr);

  // --force on both, so that both write the shard whichever one commits first.
  const work = () =>
    new Promise<{ code: number | null; stderr: string }>((res) => {
      const child = spawn(process.execPath, [BIN, 'work', raced, '--shards', '0', '--force'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.on('exit', (code) => res({ code, stderr }));
    });
  const results = await Promise.all([work(), work()]);
  for (const r of results) {
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /work done: 1 shards committed/, 'each process wrote shard 0');
  }

  const marker = readFileSync(join(raced, shardMarkerKey(0)));
  const parsed = parseMarker(marker, shardMarkerKey(0));
  assert.equal(parsed.shard, 0);
  assert.equal('timings' in parsed, false, 'markers hold no timings');
  assert.ok(marker.equals(readFileSync(join(single, shardMarkerKey(0)))), 'the marker equals the single process\'s, byte for byte');
  const want = readTree(single, (k) => k !== shardTimingsKey(0));
  const got = readTree(raced, (k) => k !== shardTimingsKey(0));
  assertSameTree(want, got, 'the raced run');
  const timings = JSON.parse(readFileSync(join(raced, shardTimingsKey(0)), 'utf8'));
  assert.ok(Object.values(timings).length > 0 && Object.values(timings).every((v) => typeof v === 'number'), 'the timings live in their own file');
  const verify = pairgen(['status', raced, '--verify', '--json']);
  assert.equal(verify.code, 0, verify.stderr);
  assert.deepEqual([JSON.parse(verify.stdout).shards.committed, JSON.parse(verify.stdout).shards.invalid], [1, []]);
});
