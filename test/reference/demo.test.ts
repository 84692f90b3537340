import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import { ensureReferenceTeacher, precisionRecall } from '../../src/reference/index.ts';
import { FIXTURES } from '../helpers/fixtures.ts';

/** pipelines/demo.yaml end to end through the CLI, as `make demo` runs it (with few pairs). */
const run = promisify(execFile);
const BIN = new URL('../../bin/pairgen.js', import.meta.url).pathname;
const DEMO = new URL('../../pipelines/demo.yaml', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'pairgen-demo-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

// The demo config points at the default cache; tests that set PAIRGEN_CACHE elsewhere would miss it.
await ensureReferenceTeacher();

async function pairgen(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [BIN, ...args], { maxBuffer: 1 << 24 });
}

async function manifest(dir: string): Promise<Record<string, unknown>[]> {
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  const r = await c.runAndReadAll(`select pair_id, category, accepted, reject_reason, identity_similarity, extra from read_parquet('${join(dir, 'manifest.parquet')}') order by pair_id`);
  return r.getRowObjectsJS().map((row) => ({ ...row, ...(JSON.parse(String(row.extra)) as Record<string, unknown>) }));
}

test('the demo pipeline runs end to end, records ground truth, and twice gives byte-identical shards', async () => {
  const a = join(tmp, 'a');
  const b = join(tmp, 'b');
  await pairgen('run', DEMO, '--out', a, '--pairs', '8');
  await pairgen('run', DEMO, '--out', b, '--pairs', '8');
  const shards = readdirSync(join(a, 'shards')).sort();
  assert.ok(shards.some((f) => f.endsWith('.parquet')), `no shard files in ${shards.join(', ')}`);
  for (const f of shards) {
    if (!f.endsWith('.parquet')) continue;
    assert.ok(readFileSync(join(a, 'shards', f)).equals(readFileSync(join(b, 'shards', f))), `${f} differs between two runs`);
  }
  const rows = await manifest(a);
  assert.equal(rows.length, 8);
  for (const r of rows) {
    assert.match(String(r.source_item), /^source\/\d\d$/);
    assert.equal(typeof r.identity_kept, 'boolean');
    assert.ok(Number(r.edited_distance) < 1e-4, `pair ${r.pair_id} did not converge to a bank item`);
  }
  const pr = precisionRecall(rows as { accepted: boolean; identity_kept: boolean }[]);
  assert.equal(pr.unlabelled, 0);
  assert.equal(pr.truePositives + pr.falsePositives + pr.falseNegatives + pr.trueNegatives, 8);

  // The bytes a code change must not move by accident (the restructuring of issue 10 kept them; a change
  // that means to change the output format updates them, and says so).
  const sha = (f: string) => createHash('sha256').update(readFileSync(join(a, f))).digest('hex');
  assert.deepEqual(Object.fromEntries(GOLDEN.map(([f]) => [f, sha(f)])), Object.fromEntries(GOLDEN));
});

const GOLDEN = [
  ['prompts.parquet', '34b62438e685d658916456a24090caa3dbd5af132fbd86b3918ea3c75849a881'],
  ['shards/shard-00000.parquet', 'd6ff4a6ca3be836cd661d467c6718319d3397c2098e7d61cab42b36d241e60e1'],
  ['shards/shard-00000.rejects.parquet', '9c0d3571b1ada2d2f7ac84745a15cc0ff0512b6e7ae6281ab6e31e195049d962'],
  ['manifest.parquet', 'b14e3d0f347f9d61a222b5a06525aba2aa3c0c0db33505261709cf553b10ee03'],
] as const;

test('the tiny fixture teacher swaps in by config only', async () => {
  const out = join(tmp, 'tiny');
  await pairgen('run', DEMO, '--out', out, '--pairs', '4', '--set', `teacher.model=${FIXTURES}/tiny-sd`, '--set', `teacher.edit_model=${FIXTURES}/tiny-sd-ip2p`, '--set', 'teacher.steps=4');
  const plan = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as { models: { teacher: { files: { path: string }[] } } };
  const files = plan.models.teacher.files.map((f) => f.path);
  assert.ok(files.includes(`${FIXTURES}/tiny-sd/unet/model.onnx`) && files.includes(`${FIXTURES}/tiny-sd-ip2p/unet/model.onnx`), files.join('\n'));
  assert.ok(!files.some((f) => f.includes('reference-teacher')));
  const rows = await manifest(out);
  assert.equal(rows.length, 4);
  // No reference bank behind these models: no ground truth, and tiny noise images show no faces.
  for (const r of rows) {
    assert.equal(r.identity_kept, undefined);
    assert.equal(r.accepted, false);
  }
});

test('a demo config pointing at a missing reference teacher fails with a user error naming the folder', async () => {
  const err = await pairgen('run', DEMO, '--out', join(tmp, 'missing'), '--pairs', '2', '--set', `teacher.edit_model=${join(tmp, 'no-such-teacher')}`).then(
    () => null,
    (e: { code: number; stderr: string }) => e,
  );
  assert.ok(err, 'the run should fail');
  assert.equal(err.code, 2);
  assert.match(err.stderr, /no-such-teacher/);
});
