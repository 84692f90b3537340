import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parquetReadObjects } from 'hyparquet';
import { BIN, REPO, readTree, tempDir } from '../helpers/run-fixture.ts';
import { checkSplits, splitOf } from '../../src/dataset/splits.ts';

// test/fixtures/layout1-run: a 6-pair run written by pairgen at commit 35abac1 (layout 1, shards/);
// test/fixtures/layout1-run.md says how it was made.
const OLD = join(REPO, 'test/fixtures/layout1-run');
const run = promisify(execFile);
const tmp = tempDir('pairgen-upgrade-');
test.after(() => rmSync(tmp, { recursive: true, force: true }));

async function pairgen(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { cwd: REPO });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

async function rows(file: string): Promise<Record<string, unknown>[]> {
  const b = readFileSync(file);
  return parquetReadObjects({ file: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer, utf8: false });
}

test('every verb refuses a layout-1 run with one line naming `pairgen upgrade`', async () => {
  for (const args of [['status', OLD], ['finalize', OLD], ['work', OLD], ['query', OLD, 'SELECT 1']]) {
    const r = await pairgen(...args);
    assert.equal(r.code, 2, `${args[0]}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /written by an earlier pairgen \(format pairgen-run\/1.*pairgen upgrade/);
  }
});

test('upgrade copies the rows and image bytes into layout 2, adds each split, finalizes, and resumes as a no-op', async () => {
  const out = join(tmp, 'new');
  const r = await pairgen('upgrade', OLD, '--out', out);
  assert.equal(r.code, 0, r.stderr);
  const oldPairs = new Map<string, Record<string, unknown>>();
  for (const f of readdirSync(join(OLD, 'shards')).filter((f) => /^shard-\d+\.parquet$/.test(f))) for (const row of await rows(join(OLD, 'shards', f))) oldPairs.set(String(row.pair_id), row);
  const plan = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
  assert.equal(plan.format, 'pairgen-run/2');
  const fractions = checkSplits(plan.splits, 'run.json');
  let seen = 0;
  for (const f of readdirSync(join(out, 'data'))) {
    for (const row of await rows(join(out, 'data', f))) {
      const before = oldPairs.get(String(row.pair_id));
      assert.ok(before, `${row.pair_id} was in the old run`);
      assert.equal(row.split, splitOf(String(row.pair_id), fractions));
      assert.ok(f.startsWith(`${row.split}-`), `${row.pair_id} in ${f}`);
      assert.equal(row.run_id, plan.run_id);
      for (const c of ['source_image', 'edited_image'] as const) {
        assert.ok(Buffer.from((row[c] as { bytes: Uint8Array }).bytes).equals(Buffer.from((before[c] as { bytes: Uint8Array }).bytes)), `${c} of ${row.pair_id} kept byte for byte`);
      }
      assert.equal(row.seed, before.seed);
      seen++;
    }
  }
  assert.equal(seen, oldPairs.size);
  const status = await pairgen('status', out, '--verify');
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /2\/2 committed/);
  assert.match(status.stdout, /^finalized/m);

  const before = readTree(out);
  const again = await pairgen('upgrade', OLD, '--out', out);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /0 shards copied, 2 already there/);
  const after = readTree(out);
  assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort());
  for (const [k, v] of before) if (!k.endsWith('.timings.json')) assert.ok(v.equals(after.get(k)!), `${k} unchanged by the resumed upgrade`);
});

test('an old shard whose files do not match its marker stays pending; a current run or no run is refused', async () => {
  const broken = join(tmp, 'broken-old');
  cpSync(OLD, broken, { recursive: true });
  const file = join(broken, 'shards/shard-00001.parquet');
  const bytes = readFileSync(file);
  bytes[200] ^= 0xff;
  writeFileSync(file, bytes);
  const out = join(tmp, 'partial');
  const r = await pairgen('upgrade', broken, '--out', out);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /shard-00001 stays pending/);
  assert.match(r.stderr, /1 shards were not committed in the old run: finish them with `pairgen work/);
  const status = await pairgen('status', out);
  assert.match(status.stdout, /1\/2 committed, 1 pending/);

  const current = await pairgen('upgrade', join(tmp, 'new'), '--out', join(tmp, 'x'));
  assert.equal(current.code, 2);
  assert.match(current.stderr, /already a pairgen-run\/2 run; nothing to upgrade/);
  const none = await pairgen('upgrade', join(tmp, 'nothing-here'), '--out', join(tmp, 'y'));
  assert.equal(none.code, 2);
  assert.match(none.stderr, /no run here/);
});
