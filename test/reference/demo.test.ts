import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
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

test('the demo pipeline runs end to end, records ground truth, and twice gives byte-identical shards', async (t) => {
  const a = join(tmp, 'a');
  const b = join(tmp, 'b');
  const first = await pairgen('run', DEMO, '--out', a, '--pairs', '8');
  await pairgen('run', DEMO, '--out', b, '--pairs', '8');
  assert.match(first.stdout, /^written: .*README\.md; pictures: .*\/preview\/index\.html$/m);
  assert.ok(existsSync(join(a, 'preview/index.html')), 'the summary names preview/index.html, which finalize wrote');
  const files = ['data', 'rejects', 'markers'].flatMap((d) => readdirSync(join(a, d)).map((f) => `${d}/${f}`)).filter((f) => !f.endsWith('.timings.json')).sort();
  assert.ok(files.some((f) => f.startsWith('data/')), `no data files in ${files.join(', ')}`);
  for (const f of [...files, 'manifest.parquet', 'checksums.sha256']) {
    assert.ok(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), `${f} differs between two runs`);
  }
  const rows = await manifest(a);
  assert.equal(rows.length, 8);
  for (const r of rows) {
    assert.match(String(r.source_item), /^source\/\d\d$/);
    assert.equal(typeof r.identity_kept, 'boolean');
    // The edit's truth: the prompt's edit, and what the edited image got.
    assert.ok(['right', 'none', 'wrong'].includes(String(r.edit_made)), `pair ${r.pair_id}: edit_made ${r.edit_made}`);
    assert.equal(r.edit_kept, r.edit_made === 'right');
    assert.ok(Number(r.edited_distance) < 1e-4, `pair ${r.pair_id} did not converge to a bank item`);
  }
  const pr = precisionRecall(rows as { accepted: boolean; identity_kept: boolean }[]);
  assert.equal(pr.unlabelled, 0);
  assert.equal(pr.truePositives + pr.falsePositives + pr.falseNegatives + pr.trueNegatives, 8);

  // The bytes a code change must not move by accident (the restructuring of issue 10 kept them; a change
  // that means to change the output format updates them, and says so: issue 12's run layout 2, split
  // column, OPTIONAL columns, v1 list pages, page index, bloom filter and adaptive PNG filtering did).
  // Issue 11's scorer columns and rules moved them again; issue 15's prompt table layout (one page per
  // column chunk, written from the rows' UTF-8 bytes) moved them once more: the same prompt rows, but the
  // table's sha256 is recorded in run.json, so the run_id and every file carrying it changed. Then the
  // manifest parts (issue 15): the marker lists the shard's part, and finalize merges the parts' pages
  // into row groups of whole shards; the data and rejects files stayed the same.
  const sha = (f: string) => createHash('sha256').update(readFileSync(join(a, f))).digest('hex');
  const names = ['prompts.parquet', 'data/train-00000-of-00001.parquet', 'rejects/shard-00000.parquet', 'markers/shard-00000.json', 'manifest.parquet'];
  const actual = Object.fromEntries(names.map((f) => [f, sha(f)]));
  assert.equal(actual['prompts.parquet'], PROMPTS_SHA256, 'the prompt table has no model floats: the same on every CPU');
  const pinned = Object.fromEntries(Object.entries(GOLDEN).filter(([f]) => f in actual));
  assert.deepEqual(Object.fromEntries(Object.keys(pinned).map((f) => [f, actual[f]])), pinned);
  // Files not pinned for this kind of CPU yet: the bytes above are still checked to repeat; print them to pin.
  if (Object.keys(pinned).length < names.length) t.diagnostic(`demo golden hashes on this CPU kind (${CPU_KIND}; not all pinned yet): ${JSON.stringify(actual)}`);
});

// onnxruntime's CPU kernels are chosen by the CPU's instruction set, and kernels round differently
// between kinds of machine (AVX2 against AVX-512, and Intel's AVX-512 against AMD's): the demo's images
// (one pixel off by 1 here and there) and so the shards and the manifest differ between them, while each
// is byte-identical run after run (checked above). The prompt table has no floats from a model and is the
// same everywhere. Each kind pins what was measured on it; another kind prints its own.
const CPUINFO = readFileSync('/proc/cpuinfo', 'utf8');
const CPU_KIND = `${/AuthenticAMD/.test(CPUINFO) ? 'amd' : /GenuineIntel/.test(CPUINFO) ? 'intel' : 'other'}-${/\bavx512f\b/.test(CPUINFO) ? 'avx512' : 'avx2'}`;
const PROMPTS_SHA256 = 'a620eb325815ba835f7cc2c3aeb0742824ddb2d221ac1b534209584f16a0807c';
const GOLDENS: Record<string, Record<string, string>> = {
  // The marker and manifest moved with the manifest parts after this kind was last measured: not pinned.
  'intel-avx512': {
    'data/train-00000-of-00001.parquet': '247e2232338be8ef501ef2d7e659b2f76ab55ea8fff6e58fd730d220255fbf5d',
    'rejects/shard-00000.parquet': '8e55a2f9f0c8765d75781d5d61237a1aec5e74d6941b10dbe45f7a3a2ccee8cf',
  },
  'amd-avx512': {
    'data/train-00000-of-00001.parquet': '3a1a9c79bb9fcf10b44f867217bd80d20fee6834b13633181b3cbdb99e254ae0',
    'rejects/shard-00000.parquet': '01c306e743390f37318588cc4aab8e6ff14f7f59857107e2d3f5491e72ee77e3',
    'markers/shard-00000.json': 'aa1de251fe998bc98538a95ce7cf1542e44d15a918ced3bbfc3f77ca679cb643',
    'manifest.parquet': 'fab44010e0b49a2be9db887b234d8311111ab2edec69dc97ea8100f16fce5e09',
  },
};
const GOLDEN = GOLDENS[CPU_KIND] ?? {};

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
