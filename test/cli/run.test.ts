/** The run verbs through the real CLI: bad input gives one clear message, exit 2, and nothing written. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { shardMarkerKey } from '../../src/dataset/layout.ts';
import { parseMarker } from '../../src/shards/index.ts';
import { startS3Server, type S3Server } from '../helpers/s3server.ts';
import { BIN, tempDir, writeConfig } from '../helpers/run-fixture.ts';

let s3: S3Server;
before(async () => {
  s3 = await startS3Server();
});
after(async () => {
  await s3.stop();
});

function pairgen(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });
  return { code: r.status, stderr: r.stderr, stdout: r.stdout };
}

function expectUserError(r: { code: number | null; stderr: string }, message: RegExp) {
  assert.equal(r.code, 2, `exit code 2 expected; stderr: ${r.stderr}`);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'a user error prints no stack trace');
}

function assertNothingWritten(out: string) {
  assert.ok(!existsSync(out) || readdirSync(out).length === 0, `${out} should hold nothing`);
}

test('plan: malformed YAML, unknown key, wrong type → exit 2 naming file and line, nothing written', () => {
  const dir = tempDir();
  const out = join(dir, 'run');
  const cases: [string, RegExp][] = [
    ['seed: 7\nprompts: [oops\n', /bad\.yaml:\d+:\d+: not valid YAML\/JSON/],
    ['seed: 7\nprompts:\n  set: x.yaml\nteacher:\n  model: m\nshard_sise: 3\n', /bad\.yaml:6:1: shard_sise: unknown key/],
    ['seed: seven\nprompts:\n  set: x.yaml\nteacher:\n  model: m\n', /bad\.yaml:1:1: seed: expected integer, got string "seven"/],
  ];
  for (const [text, message] of cases) {
    writeFileSync(join(dir, 'bad.yaml'), text);
    expectUserError(pairgen(['plan', join(dir, 'bad.yaml'), '--out', out]), message);
    assertNothingWritten(out);
  }
});

test('plan: a missing prompt set, or a category with no templates → exit 2, nothing written', () => {
  const dir = tempDir();
  const out = join(dir, 'run');
  const config = writeConfig(dir, { name: 'missing' });
  writeFileSync(config, readFileSafe(config).replace(/set: .*/, 'set: /nonexistent/prompts.yaml'));
  expectUserError(pairgen(['plan', config, '--out', out]), /\/nonexistent\/prompts\.yaml/);
  assertNothingWritten(out);

  const promptSet = join(dir, 'empty-category.yaml');
  writeFileSync(promptSet, 'name: t\nslots:\n  who: [a person]\nsources: ["a photo of {who}"]\ncategories:\n  style:\n    edits: []\n');
  const config2 = writeConfig(dir, { name: 'empty' });
  writeFileSync(config2, readFileSafe(config2).replace(/set: .*/, `set: ${promptSet}`));
  expectUserError(pairgen(['plan', config2, '--out', out]), /empty-category\.yaml.*style/);
  assertNothingWritten(out);
});

test('plan: an unknown URI scheme → exit 2', () => {
  const dir = tempDir();
  expectUserError(pairgen(['plan', writeConfig(dir), '--out', 'gs://bucket/run']), /gs:\/\/bucket\/run.*(scheme|not supported)/i);
});

test('plan: an S3 endpoint that denies the credentials, or that does not answer → exit 2, nothing written', async () => {
  const dir = tempDir();
  const config = writeConfig(dir);
  const denied = pairgen(['plan', config, '--out', `s3://${s3.bucket}/denied`], { ...s3.env, AWS_ACCESS_KEY_ID: 'WRONG', AWS_SECRET_ACCESS_KEY: 'WRONG' });
  expectUserError(denied, /credential|access key|denied|signature/i);
  const missingBucket = pairgen(['plan', config, '--out', 's3://no-such-bucket/run'], s3.env);
  expectUserError(missingBucket, /no-such-bucket/);
  // A port with nothing listening: grab a free one and close it.
  const port = await new Promise<number>((res) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => res(p));
    });
  });
  const unreachable = pairgen(['plan', config, '--out', `s3://${s3.bucket}/x`, '--set', `storage.endpoint=http://127.0.0.1:${port}`, '--set', 'storage.max_attempts=2'], s3.env);
  expectUserError(unreachable, new RegExp(`127\\.0\\.0\\.1:${port}`));
  // nothing reached the real server either
  const listed = pairgen(['status', `s3://${s3.bucket}/denied`], s3.env);
  expectUserError(listed, /no run here/);
});

test('plan: the same plan again is a no-op; a different plan over an existing run is refused', () => {
  const dir = tempDir();
  const out = join(dir, 'run');
  const config = writeConfig(dir, { pairs: 6, shardSize: 3 });
  assert.equal(pairgen(['plan', config, '--out', out]).code, 0);
  const again = pairgen(['plan', config, '--out', out]);
  assert.equal(again.code, 0);
  assert.match(again.stderr, /already holds this exact plan/);
  expectUserError(pairgen(['plan', config, '--out', out, '--pairs', '9']), /already holds a different run \(config.pairs is 6 there, 9 here\)/);
});

test('work and status: bad shard lists and missing runs are user errors', () => {
  const dir = tempDir();
  expectUserError(pairgen(['status', join(dir, 'nothing')]), /no run here/);
  expectUserError(pairgen(['work', join(dir, 'nothing'), '--shards', '3-1']), /backwards/);
  const out = join(dir, 'run');
  assert.equal(pairgen(['plan', writeConfig(dir, { pairs: 6, shardSize: 3 }), '--out', out]).code, 0);
  expectUserError(pairgen(['work', out, '--shards', '5']), /shard 5 is not in this run \(it has shards 0-1\)/);
  expectUserError(pairgen(['work', out, '--index', '2', '--count', '2']), /--index 2 must be below --count 2/);
  expectUserError(pairgen(['finalize', out]), /2 of 2 shards are not committed/);
  const status = pairgen(['status', out, '--json']);
  assert.equal(status.code, 0);
  assert.equal(JSON.parse(status.stdout).shards.pending, 2);
});

test('work: SIGTERM stops the worker with nothing partial committed', async () => {
  const dir = tempDir();
  const out = join(dir, 'run');
  assert.equal(pairgen(['plan', writeConfig(dir, { pairs: 4, shardSize: 2, extra: 'runtime:\n  batch_size: 1\n' }), '--out', out]).code, 0);
  const child = spawn(process.execPath, [BIN, 'work', out, '--grace', '20'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  // Ask the worker to stop once its first shard is committed, i.e. while it works on the second.
  for (let waited = 0; !existsSync(join(out, shardMarkerKey(0))) && waited < 120_000; waited += 100) await new Promise((r) => setTimeout(r, 100));
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  assert.equal(code, 143, stderr);
  assert.match(stderr, /SIGTERM: stopping/);
  const markers = existsSync(join(out, 'markers')) ? readdirSync(join(out, 'markers')).filter((f) => /^shard-\d+\.json$/.test(f)) : [];
  for (const m of markers) {
    for (const f of parseMarker(readFileSync(join(out, 'markers', m)), m).files) assert.ok(existsSync(join(out, f.name)), `${m} committed without ${f.name}`);
  }
  assert.ok(markers.length < 2, 'the worker stopped before finishing every shard');
  const status = JSON.parse(pairgen(['status', out, '--json']).stdout);
  assert.deepEqual(status.shards.invalid, []);
});

function readFileSafe(p: string): string {
  return readFileSync(p, 'utf8');
}
