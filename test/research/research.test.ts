/**
 * The researcher workflow on real runs made with the tiny diffusers fixture teacher (64 px, 2 steps):
 * regenerate (exact replay, lineage with a changed sampler setting, resume), refilter from recorded
 * scores (the test-only scorer stands in for face models, which find no faces in the fixture's colour
 * fields), query, and bad input through the real CLI: exit 2, one clear line, nothing written.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { planRun } from '../../src/run/plan.ts';
import { workRun } from '../../src/run/work.ts';
import { finalizeRun } from '../../src/run/finalize.ts';
import { derivedPairId, queryRun, refilterRun, regenerateRun } from '../../src/research/index.ts';
import { parseSplits, splitOf } from '../../src/dataset/splits.ts';
import { reportRun } from '../../src/report/index.ts';
import sharp from 'sharp';
import { TestScorer } from '../helpers/test-teacher.ts';
import { startS3Server } from '../helpers/s3server.ts';
import { openStore } from '../../src/store/index.ts';
import { BIN, FIXTURES, inBatches, readTree, runAsync, sqlRows, tempDir, writeFlowConfig } from '../helpers/run-fixture.ts';

const dir = tempDir('pairgen-research-');
const plain = join(dir, 'plain'); // identity off: every pair accepted, with images
const scored = join(dir, 'scored'); // identity on, scored by the test scorer: accepted and rejected pairs

function config(name: string, identity: boolean, pairs: number, identityExtra = ''): string {
  return writeFlowConfig(dir, name, { seed: 5, pairs, shardSize: 4, teacher: `model: ${join(FIXTURES, 'tiny-sd')}, steps: 2`, identity: `enabled: ${identity}${identityExtra}` });
}

before(async () => {
  await planRun(config('plain', false, 8), plain);
  await workRun(plain);
  await finalizeRun(plain);
  // Fixture edits keep ~0.97-0.999 pixel correlation: thresholds that high reject some.
  await planRun(config('scored', true, 12, ', category_thresholds: { color_grade: 0.997, lighting: 0.99 }'), scored);
  await workRun(scored, { scorerFactory: async () => new TestScorer() });
  await finalizeRun(scored);
});

const sql = sqlRows;

/** pair_id → [source bytes, edited bytes] of a run's accepted shards. */
async function images(run: string): Promise<Map<string, [Buffer, Buffer]>> {
  const rows = await sql(`SELECT pair_id, source_image.bytes AS s, edited_image.bytes AS e FROM read_parquet('${run}/data/*.parquet')`);
  return new Map(rows.map((r) => [String(r.pair_id), [Buffer.from(r.s as Uint8Array), Buffer.from(r.e as Uint8Array)]]));
}

test('regenerate with no overrides reproduces the chosen pairs byte for byte, keeps their ids, and resumes', async () => {
  const out = join(dir, 'replay');
  const r = await regenerateRun(plain, out, { where: '"index" % 2 = 1', shardSize: 3 });
  assert.deepEqual(r.changes, {});
  assert.equal(r.pairs, 4);
  assert.equal(r.shards, 2);
  const parent = await images(plain);
  const child = await images(out);
  assert.equal(child.size, 4);
  for (const [id, [s, e]] of child) {
    assert.ok(parent.has(id), `${id} is not a pair of the parent`);
    assert.ok(s.equals(parent.get(id)![0]) && e.equals(parent.get(id)![1]), `pair ${id}: images differ from the parent's`);
  }
  const rows = await sql(`SELECT pair_id, parent_pair_id, changes, "index", split FROM '${out}/manifest.parquet' ORDER BY "index"`);
  assert.deepEqual(rows.map((x) => Number(x.index)), [0, 1, 2, 3]);
  for (const x of rows) {
    assert.equal(x.parent_pair_id, x.pair_id);
    assert.equal(x.changes, '{}');
    assert.equal(x.split, splitOf(String(x.pair_id)));
  }
  const plan = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
  assert.equal(plan.candidates.rows, 4);
  assert.equal(plan.candidates.parent_run, plain);
  // Running it again finds the plan and every shard done: nothing is sampled or rewritten.
  const before = readTree(out);
  const again = await regenerateRun(plain, out, { where: '"index" % 2 = 1', shardSize: 3 });
  assert.equal(again.created, false);
  assert.equal(again.work!.committed.length, 0);
  for (const [k, v] of readTree(out)) assert.ok(v.equals(before.get(k)!), `${k} changed on a second regenerate`);
});

test('regenerate with a changed sampler setting records the lineage and derives new pair ids', async () => {
  const out = join(dir, 'steps3');
  const r = await regenerateRun(plain, out, { where: '"index" < 3', sets: ['teacher.steps=3'] });
  assert.deepEqual(r.changes, { 'teacher.steps': { from: 2, to: 3 } });
  const rows = await sql(`SELECT pair_id, parent_pair_id, changes, sampler FROM '${out}/manifest.parquet' ORDER BY "index"`);
  const parents = await sql(`SELECT pair_id FROM '${plain}/manifest.parquet' WHERE "index" < 3 ORDER BY "index"`);
  assert.equal(rows.length, 3);
  const parentImages = await images(plain);
  const childImages = await images(out);
  rows.forEach((x, i) => {
    assert.equal(x.parent_pair_id, parents[i].pair_id);
    assert.equal(x.pair_id, derivedPairId(String(parents[i].pair_id), r.changes));
    assert.notEqual(x.pair_id, x.parent_pair_id);
    assert.deepEqual(JSON.parse(String(x.changes)), { 'teacher.steps': { from: 2, to: 3 } });
    assert.equal(JSON.parse(String(x.sampler)).steps, 3);
    assert.ok(!childImages.get(String(x.pair_id))![1].equals(parentImages.get(String(x.parent_pair_id))![1]), 'a 3-step edit should differ from the 2-step one');
  });
});

test('refilter at a lower threshold regenerates only the newly accepted pairs; the result equals a fresh run at that threshold', async () => {
  const thresholds: Record<string, number> = { color_grade: 0.9, lighting: -1, style: 0.99 };
  const parentRows = await sql(`SELECT pair_id, category, accepted, reject_reason, identity_similarity AS s FROM '${scored}/manifest.parquet'`);
  const passes = (x: Record<string, unknown>) => Number(x.s) >= thresholds[String(x.category)];
  const newly = parentRows.filter((x) => x.reject_reason === 'identity_below_threshold' && passes(x)).map((x) => String(x.pair_id));
  const kept = parentRows.filter((x) => x.accepted && passes(x)).map((x) => String(x.pair_id));
  const dropped = parentRows.filter((x) => x.accepted && !passes(x)).length;
  assert.ok(newly.length > 0 && kept.length > 0 && dropped > 0, `the parent run should have pairs of every kind (${newly.length} newly accepted, ${kept.length} kept, ${dropped} dropped)`);
  const out = join(dir, 'refiltered');
  const r = await refilterRun(scored, out, { sets: Object.entries(thresholds).map(([c, t]) => `identity.category_thresholds.${c}=${t}`) });
  assert.equal(r.regenerated, newly.length);
  assert.equal(r.copied, kept.length);
  assert.equal(r.dropped, dropped);
  assert.equal(r.accepted, kept.length + newly.length);
  const after = await sql(`SELECT category, identity_threshold AS t, accepted FROM '${out}/manifest.parquet'`);
  for (const x of after) assert.equal(Number(x.t), thresholds[String(x.category)]);

  // The same config planned fresh and scored again gives the same pairs and images.
  const fresh = join(dir, 'fresh');
  await planRun(config('fresh', true, 12, ', category_thresholds: { color_grade: 0.9, lighting: -1, style: 0.99 }'), fresh);
  await workRun(fresh, { scorerFactory: async () => new TestScorer() });
  const a = await images(out);
  const b = await images(fresh);
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [id, [s, e]] of a) assert.ok(s.equals(b.get(id)![0]) && e.equals(b.get(id)![1]), `pair ${id} differs from a fresh run`);
  const parentImages = await images(scored);
  for (const id of kept) assert.ok(a.get(id)![1].equals(parentImages.get(id)![1]));
});

test('query: SQL over manifest, pairs and prompts in table, json and parquet', async () => {
  const t = await queryRun(scored, 'SELECT category, count(*) AS n, sum(accepted::INT) AS kept FROM manifest GROUP BY 1 ORDER BY 1');
  assert.match(t.text!, /^category\s+n\s+kept\n/);
  assert.match(t.text!, /\(\d rows?\)\n$/);
  const j = await queryRun(plain, 'SELECT pair_id, octet_length(edited_image.bytes) AS png FROM pairs ORDER BY "index" LIMIT 2', { format: 'json' });
  const lines = j.text!.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 2);
  assert.ok(lines[0].png > 100);
  const file = join(dir, 'q.parquet');
  const p = await queryRun(scored, 'SELECT m.pair_id, p.source_prompt FROM manifest m JOIN prompts p USING (prompt_id)', { format: 'parquet', out: file });
  assert.equal(p.rows, 12);
  assert.equal(Number((await sql(`SELECT count(*) AS n FROM '${file}'`))[0].n), 12);
});

test('bad input: invalid SQL, an unknown column, a missing run, a disallowed override → exit 2, one line, nothing written', async () => {
  const cases: [string[], RegExp, string?][] = [
    [['query', plain, 'SELEC * FROM manifest'], /query: Parser Error: syntax error at or near "SELEC"/],
    [['query', plain, 'CREATE TABLE t AS SELECT 1'], /only SELECT/],
    [['query', join(dir, 'nope'), 'SELECT 1'], /no run here/],
    [['regenerate', plain, '--where', 'no_such_column > 1', '--out', join(dir, 'bad1')], /no_such_column/, join(dir, 'bad1')],
    [['regenerate', plain, '--where', 'accepted AND (', '--out', join(dir, 'bad2')], /--where/, join(dir, 'bad2')],
    [['regenerate', join(dir, 'nope'), '--where', 'true', '--out', join(dir, 'bad3')], /no run here/, join(dir, 'bad3')],
    [['regenerate', plain, '--where', 'true', '--set', 'teacher.steps=many', '--out', join(dir, 'bad4')], /teacher\.steps: expected integer/, join(dir, 'bad4')],
    [['regenerate', plain, '--where', 'true', '--set', 'seed=3', '--out', join(dir, 'bad5')], /seed cannot change/, join(dir, 'bad5')],
    [['refilter', plain, '--set', 'identity.threshold=0.5', '--out', join(dir, 'bad6')], /identity\.enabled false/, join(dir, 'bad6')],
    [['refilter', scored, '--set', 'teacher.steps=9', '--out', join(dir, 'bad7')], /refilter changes only/, join(dir, 'bad7')],
  ];
  const results = await inBatches(cases, 3, ([args]) => runAsync(process.execPath, [BIN, ...args], { cwd: dir }));
  for (const [i, [args, message, out]] of cases.entries()) {
    const r = results[i];
    assert.equal(r.status, 2, `${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    if (out) assert.equal(existsSync(out), false, `${out} was written`);
  }
});

test('splits: a hash of pair_id, stable under growth, fractions checked', () => {
  const ids = Array.from({ length: 20000 }, (_, i) => i.toString(16).padStart(16, '0'));
  const counts: Record<string, number> = { train: 0, validation: 0, test: 0 };
  for (const id of ids) counts[splitOf(id, { train: 0.8, validation: 0.1, test: 0.1 })]++;
  assert.ok(Math.abs(counts.validation / ids.length - 0.1) < 0.01 && Math.abs(counts.test / ids.length - 0.1) < 0.01, JSON.stringify(counts));
  // Growing the validation share only moves pairs out of train, never between the other two.
  for (const id of ids.slice(0, 2000)) {
    const a = splitOf(id, { train: 0.9, validation: 0.05, test: 0.05 });
    const b = splitOf(id, { train: 0.85, validation: 0.1, test: 0.05 });
    if (a !== b) assert.equal(a, 'train');
  }
  assert.deepEqual(parseSplits('train=0.9,validation=0.1'), { train: 0.9, validation: 0.1, test: 0 });
  assert.throws(() => parseSplits('train=0.9,test=0.2'), /sum to 1/);
  assert.throws(() => parseSplits('train=1,dev=0'), /unknown split "dev"/);
});

test('report: index.html with acceptance, identity distributions and a threshold sweep that agrees with the manifest', async () => {
  const out = join(dir, 'report');
  const r = await reportRun(scored, { out });
  assert.deepEqual(r.files.sort(), ['acceptance.png', 'identity-histogram.png', 'index.html', 'sweep.json', 'threshold-sweep.png']);
  for (const f of r.files.filter((f) => f.endsWith('.png'))) assert.equal((await sharp(join(out, f)).metadata()).format, 'png');
  const html = readFileSync(join(out, 'index.html'), 'utf8');
  for (const img of ['acceptance.png', 'identity-histogram.png', 'threshold-sweep.png']) assert.match(html, new RegExp(`src="${img}"`));
  const sweep = JSON.parse(readFileSync(join(out, 'sweep.json'), 'utf8'));
  for (const t of [-1, 0.97, 0.99]) {
    const n = Number((await sql(`SELECT count(*) AS n FROM '${scored}/manifest.parquet' WHERE floor(identity_similarity * 100) >= ${Math.round(t * 100)}`))[0].n);
    assert.equal(sweep.kept.all[Math.round((t + 1) * 100)], n, `kept at ${t}`);
  }
  assert.equal(sweep.kept.all[0], 12);
  // Same run → same files.
  const again = join(dir, 'report2');
  await reportRun(scored, { out: again });
  for (const f of r.files) assert.ok(readFileSync(join(out, f)).equals(readFileSync(join(again, f))), `${f} differs`);
});

test('an s3:// run: query downloads only the files it names; regenerate replays pairs from it', async () => {
  const s3 = await startS3Server({ processEnv: true });
  try {
    const uri = `s3://${s3.bucket}/runs/plain`;
    const store = openStore(uri);
    for (const [key, bytes] of readTree(plain)) await store.put(key, bytes);
    const q = await queryRun(uri, 'SELECT count(*) AS n, sum(octet_length(source_image.bytes)) AS b FROM pairs', { format: 'json' });
    const local = await queryRun(plain, 'SELECT count(*) AS n, sum(octet_length(source_image.bytes)) AS b FROM pairs', { format: 'json' });
    assert.equal(q.text, local.text);
    const out = join(dir, 'from-s3');
    const r = await regenerateRun(uri, out, { where: '"index" IN (1, 6)' });
    assert.equal(r.pairs, 2);
    const parent = await images(plain);
    for (const [id, [src, edt]] of await images(out)) assert.ok(src.equals(parent.get(id)![0]) && edt.equals(parent.get(id)![1]));
  } finally {
    await s3.stop();
  }
});
