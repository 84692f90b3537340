/**
 * run.json's seal and a run's restorable files (src/dataset/run-file.ts, src/run/plan.ts): plan writes
 * plan_digest and key_digests; every read checks them, so an edit is refused naming the key while a
 * mere re-layout of the JSON is not an edit; a deleted prompts.parquet is named by work and restored
 * byte for byte by planning the same config again, as is a run.json whose seal was removed.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isUserError } from '../../src/errors.ts';
import { planId, readPlan } from '../../src/dataset/run-file.ts';
import { planRun, workRun } from '../../src/run/index.ts';
import { openStore } from '../../src/store/index.ts';
import { tempDir, writeConfig } from '../helpers/run-fixture.ts';

const dir = tempDir('pairgen-plan-integrity-');
after(() => rmSync(dir, { recursive: true, force: true }));
const config = writeConfig(dir, { pairs: 4, shardSize: 2, extra: 'runtime:\n  batch_size: 2\n' });
const refused = (pattern: RegExp) => (e: unknown) => isUserError(e) && pattern.test(e.message);

test('run.json carries its seal; a read checks it and returns the plan without it; run_id is unchanged by it', async () => {
  const out = join(dir, 'sealed');
  const { plan } = await planRun(config, out);
  const text = readFileSync(join(out, 'run.json'), 'utf8');
  const onDisk = JSON.parse(text);
  assert.match(onDisk.plan_digest, /^[0-9a-f]{64}$/);
  assert.match(onDisk.key_digests['config.teacher.steps'], /^[0-9a-f]{8}$/);
  const read = await readPlan(openStore(out));
  assert.equal(read.run_id, plan.run_id);
  assert.equal(planId(read), plan.run_id);
  assert.equal('plan_digest' in read || 'key_digests' in read, false);

  // Another layout of the same JSON (compact, keys in another order) is not an edit.
  const reordered = Object.fromEntries(Object.entries(onDisk).reverse());
  writeFileSync(join(out, 'run.json'), JSON.stringify(reordered));
  assert.equal((await readPlan(openStore(out))).run_id, plan.run_id);

  // An edit is refused naming the key; several keys are all named.
  writeFileSync(join(out, 'run.json'), text.replace(/"steps": 30/, '"steps": 31'));
  await assert.rejects(readPlan(openStore(out)), refused(/run\.json: edited after planning: config\.teacher\.steps differs from what `pairgen plan` wrote/));
  writeFileSync(join(out, 'run.json'), text.replace(/"seed": 7/g, '"seed": 8'));
  await assert.rejects(readPlan(openStore(out)), refused(/edited after planning: config\.seed, seed differ/));
  await assert.rejects(workRun(out), refused(/edited after planning/));
});

test('a deleted prompts.parquet: work names it, plan restores it byte for byte, then work goes on', async () => {
  const out = join(dir, 'prompts');
  // Two denoising steps: the shard at the end only shows that work goes on over the restored table.
  const fast = { sets: ['teacher.steps=2'] };
  await planRun(config, out, fast);
  const prompts = readFileSync(join(out, 'prompts.parquet'));
  unlinkSync(join(out, 'prompts.parquet'));
  await assert.rejects(workRun(out), refused(/prompts\.parquet is missing \(the run's prompt table\); run `pairgen plan` again/));
  const again = await planRun(config, out, fast);
  assert.deepEqual([again.created, again.restored], [false, ['prompts.parquet']]);
  assert.ok(readFileSync(join(out, 'prompts.parquet')).equals(prompts));
  assert.deepEqual((await planRun(config, out, fast)).restored, [], 'nothing to restore the second time');
  const summary = await workRun(out, { shards: [0] });
  assert.deepEqual(summary.committed, [0]);
});

test('a run.json without its seal is refused; planning the same config restores it', async () => {
  const out = join(dir, 'unsealed');
  await planRun(config, out);
  const text = readFileSync(join(out, 'run.json'), 'utf8');
  const { plan_digest: _d, key_digests: _k, ...bare } = JSON.parse(text);
  writeFileSync(join(out, 'run.json'), JSON.stringify(bare, null, 2) + '\n');
  await assert.rejects(readPlan(openStore(out)), refused(/run\.json: has no plan_digest/));
  const again = await planRun(config, out);
  assert.deepEqual(again.restored, ['run.json']);
  assert.equal(readFileSync(join(out, 'run.json'), 'utf8'), text);
  // A different config over it is still refused, naming the first key that differs.
  await assert.rejects(planRun(config, out, { sets: ['teacher.steps=3'] }), refused(/already holds a different run \(config\.teacher\.steps is 30 there, 3 here\)/));
});
