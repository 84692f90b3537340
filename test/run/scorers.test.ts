/**
 * The pair scorers and rules inside a real run (issue 11): the tiny diffusers fixture teacher (64 px,
 * 2 steps), the closed-form scorers, nsfwjs's converted model and the tiny CLIP fixture, identity off (the fixture's colour
 * fields have no faces) so that the rules alone decide. Checks the score columns of data, rejects and
 * manifest files, that the recorded verdicts are the verdict function's, byte-identical repeats,
 * refilter over a rule against a fresh run with that rule, query and preview --where on a score
 * column, and the plan-time refusals of bad rules.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { planRun } from '../../src/run/plan.ts';
import { workRun } from '../../src/run/work.ts';
import { finalizeRun } from '../../src/run/finalize.ts';
import { refilterRun } from '../../src/research/index.ts';
import { judgeRecorded } from '../../src/candidates/verdict.ts';
import { planRules, readPlan } from '../../src/dataset/run-file.ts';
import { openStore } from '../../src/store/index.ts';
import { scoreColumns, SCORER_NAMES } from '../../src/scorers/config.ts';
import { findNearDuplicates } from '../../src/scorers/near-duplicates.ts';
import { BIN, FIXTURES, REPO, readTree, runAsync, sqlRows, tempDir } from '../helpers/run-fixture.ts';

const dir = tempDir('pairgen-scorers-run-');
after(() => rmSync(dir, { recursive: true, force: true }));
const ENABLED = ['edit', 'quality', 'safety', 'duplicates', 'clip'] as const;

function config(name: string, notEdited: string, extra: string[] = []): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, [
    'seed: 11',
    'pairs: 12',
    'shard_size: 4',
    `prompts: { set: ${join(REPO, 'prompts/demo.yaml')} }`,
    `teacher: { model: ${join(FIXTURES, 'tiny-sd')}, steps: 2 }`,
    'identity: { enabled: false }',
    `scorers: { enabled: [${ENABLED.join(', ')}], clip_model: ${join(REPO, 'test/fixtures/clip-tiny')} }`,
    'rules:',
    `  default: { not_edited: "${notEdited}", sharp: ["quality.edited_sharpness >= 0", "safety.edited_porn < 0.99"] }`,
    '  categories: { style: { not_edited: null } }',
    'output: { image_format: png }',
    ...extra,
  ].join('\n'));
  return file;
}

const run = join(dir, 'run');
let threshold = 0;

before(async () => {
  // Plan once to learn the fixture's edit magnitudes, then cut them in half with the rule.
  const probe = join(dir, 'probe');
  await planRun(config('probe', 'edit.magnitude >= 0'), probe);
  await workRun(probe);
  await finalizeRun(probe, { preview: false });
  const m = (await sqlRows(`SELECT edit_magnitude AS m FROM '${probe}/manifest.parquet' WHERE category <> 'style' ORDER BY m`)).map((r) => Number(r.m));
  threshold = Number(((m[Math.floor(m.length / 2) - 1] + m[Math.floor(m.length / 2)]) / 2).toFixed(6));
  await planRun(config('run', `edit.magnitude >= ${threshold}`), run);
  await workRun(run);
  await finalizeRun(run);
});

test('every enabled scorer\'s numbers are columns of data, rejects and manifest files; no other scorer\'s are', async () => {
  const expected = scoreColumns([...ENABLED]).map((c) => c.column);
  const others = scoreColumns(SCORER_NAMES.filter((s) => !(ENABLED as readonly string[]).includes(s))).map((c) => c.column);
  for (const glob of ['data/*.parquet', 'rejects/*.parquet', 'manifest.parquet']) {
    const cols = (await sqlRows(`DESCRIBE SELECT * FROM read_parquet('${run}/${glob}')`)).map((r) => String(r.column_name));
    assert.deepEqual(cols.filter((c) => expected.includes(c)), expected, glob);
    assert.deepEqual(cols.filter((c) => others.includes(c)), [], glob);
  }
  const types = new Map((await sqlRows(`DESCRIBE SELECT * FROM '${run}/manifest.parquet'`)).map((r) => [String(r.column_name), String(r.column_type)]));
  assert.equal(types.get('edit_magnitude'), 'DOUBLE');
  assert.equal(types.get('duplicates_source_dhash'), 'VARCHAR');
  const rows = await sqlRows(`SELECT m.edit_magnitude AS a, d.edit_magnitude AS b, m.duplicates_source_dhash AS h FROM '${run}/manifest.parquet' m JOIN read_parquet('${run}/data/*.parquet') d USING (pair_id)`);
  assert.ok(rows.length > 0);
  for (const r of rows) {
    assert.equal(r.a, r.b, 'the manifest holds the shard\'s numbers');
    assert.match(String(r.h), /^[0-9a-f]{16}$/);
  }
  const clip = await sqlRows(`SELECT clip_directional AS d, clip_image AS i, clip_source_caption AS c FROM '${run}/manifest.parquet'`);
  for (const r of clip) for (const v of [r.d, r.i, r.c]) assert.ok(typeof v === 'number' && v >= -1 && v <= 1, `clip scores are cosines: ${JSON.stringify(r)}`);
});

test('the recorded verdicts are the verdict function\'s over the recorded scores; the first failing rule is the reason', async () => {
  const store = openStore(run);
  const plan = await readPlan(store);
  const rules = planRules(plan, run);
  const rows = await sqlRows(`SELECT * FROM '${run}/manifest.parquet'`);
  const reasons = new Set(rows.map((r) => r.reject_reason));
  assert.deepEqual([...reasons].sort(), [null, 'not_edited'].sort(), 'half the non-style pairs are below the cut');
  for (const row of rows) {
    const plain = { ...row, identity_similarity: null, reject_reason: row.reject_reason as string | null, category: String(row.category) };
    const v = judgeRecorded(plain, plan.config.identity, rules.get(plain.category)!, null);
    assert.equal(v.accepted, row.accepted, JSON.stringify({ id: row.pair_id, m: row.edit_magnitude }));
    assert.equal(v.rejectReason, row.reject_reason);
    if (row.category === 'style') assert.equal(row.accepted, true, 'style removed the not_edited rule');
  }
  const stats = JSON.parse(readFileSync(join(run, 'stats.json'), 'utf8'));
  assert.equal(stats.rejected, rows.filter((r) => !r.accepted).length);
});

test('the same config worked again gives the same bytes', async () => {
  const again = join(dir, 'again');
  await planRun(config('run', `edit.magnitude >= ${threshold}`), again);
  await workRun(again);
  await finalizeRun(again, { preview: false });
  const files = (rel: string) => rel.startsWith('data/') || rel.startsWith('rejects/') || rel === 'manifest.parquet';
  const a = readTree(run, files);
  const b = readTree(again, files);
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [k, v] of a) assert.ok(v.equals(b.get(k)!), `${k} differs`);
});

test('refilter with a changed rule: the pairs a fresh run with that rule keeps, images regenerated only for the newly kept', async () => {
  const laxer = Number((threshold / 2).toFixed(6));
  const parent = await sqlRows(`SELECT pair_id, accepted, edit_magnitude AS m, category FROM '${run}/manifest.parquet'`);
  const newly = parent.filter((r) => !r.accepted && Number(r.m) >= laxer).length;
  assert.ok(newly > 0, 'the laxer rule should accept some rejects');
  const out = join(dir, 'refiltered');
  const r = await refilterRun(run, out, { sets: [`rules.default.not_edited=edit.magnitude >= ${laxer}`] });
  assert.equal(r.regenerated, newly);
  const fresh = join(dir, 'fresh');
  await planRun(config('fresh', `edit.magnitude >= ${laxer}`), fresh);
  await workRun(fresh);
  const images = async (at: string) => new Map((await sqlRows(`SELECT pair_id, edited_image.bytes AS e FROM read_parquet('${at}/data/*.parquet')`)).map((x) => [String(x.pair_id), Buffer.from(x.e as Uint8Array)]));
  const a = await images(out);
  const b = await images(fresh);
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [id, bytes] of a) assert.ok(bytes.equals(b.get(id)!), `pair ${id} differs from the fresh run`);
});

test('query and preview --where read the score columns', async () => {
  const q = await runAsync(process.execPath, [BIN, 'query', run, `SELECT count(*) AS n FROM manifest WHERE edit_magnitude >= ${threshold} AND category <> 'style'`, '--format', 'json']);
  assert.equal(q.status, 0, q.stderr);
  const expected = (await sqlRows(`SELECT count(*) AS n FROM '${run}/manifest.parquet' WHERE accepted AND category <> 'style'`))[0].n;
  assert.equal(Number(JSON.parse(q.stdout).n), Number(expected));
  const sheet = join(dir, 'sheet.png');
  const p = await runAsync(process.execPath, [BIN, 'preview', run, '--where', `quality_edited_sharpness > 0 AND safety_edited_neutral >= 0`, '--out', sheet]);
  assert.equal(p.status, 0, p.stderr);
  assert.ok(existsSync(sheet));
});

test('bad rules are refused at plan time: exit 2, one line naming the key, nothing written', async () => {
  const prompts = join(dir, 'bad-prompts.yaml');
  writeFileSync(prompts, ['sources: ["a portrait"]', 'categories:', '  a: { rules: { posed: "pose.yaw_delta <= 12" }, edits: [{ instructions: [x], target: "y" }] }'].join('\n'));
  const cases: [string, RegExp][] = [
    ['unknown-score', /rules\.default\.not_edited: unknown score edit\.magnitud; the edit scorer gives/],
    ['disabled', /rules\.default\.x: pose\.yaw_delta needs the pose scorer, which is not in scorers\.enabled/],
    ['malformed', /rules\.default\.not_edited: "edit\.magnitude =< 1" is not a condition/],
    ['category', /rules\.categories\.hair: the prompt set has no category "hair"/],
    ['prompt-rule', /prompt set: categories\.a\.rules\.posed: pose\.yaw_delta needs the pose scorer/],
  ];
  const files: Record<string, string> = {
    'unknown-score': config('unknown-score', 'edit.magnitud >= 0'),
    disabled: config('disabled', 'edit.magnitude >= 0'),
    malformed: config('malformed', 'edit.magnitude =< 1'),
    category: config('category', 'edit.magnitude >= 0'),
    'prompt-rule': config('prompt-rule', 'edit.magnitude >= 0'),
  };
  // Sections that config() does not write: a rule on a disabled scorer, an unknown category, a prompt set with its own rules.
  writeFileSync(files.disabled, readFileSync(files.disabled, 'utf8').replace('sharp: [', 'x: "pose.yaw_delta <= 12", sharp: ['));
  writeFileSync(files.category, readFileSync(files.category, 'utf8').replace('style: { not_edited: null }', 'hair: { not_edited: null }'));
  writeFileSync(files['prompt-rule'], readFileSync(files['prompt-rule'], 'utf8').replace(join(REPO, 'prompts/demo.yaml'), prompts).replace('  categories: { style: { not_edited: null } }\n', ''));
  for (const [name, expected] of cases) {
    const out = join(dir, `bad-${name}`);
    const r = await runAsync(process.execPath, [BIN, 'plan', files[name], '--out', out]);
    assert.equal(r.status, 2, `${name}: exit ${r.status}\n${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], expected, name);
    assert.equal(existsSync(out), false, `${name}: nothing written`);
  }
});

test('finalize marks near-duplicate sources in pair_id order; refilter --drop-duplicates drops the accepted ones', async () => {
  // The demo's reference teacher draws its sources from 22 faces: a few dozen candidates repeat some.
  const { ensureReferenceTeacher } = await import('../../src/reference/index.ts');
  await ensureReferenceTeacher();
  const demo = join(dir, 'demo');
  const made = await runAsync(process.execPath, [BIN, 'run', join(REPO, 'pipelines/demo.yaml'), '--out', demo, '--pairs', '30', '--shard-size', '15']);
  assert.equal(made.status, 0, made.stderr);
  const rows = await sqlRows(`SELECT pair_id, accepted, duplicates_source_dhash AS h, duplicate_of FROM '${demo}/manifest.parquet'`);
  const again = findNearDuplicates({ pairIds: rows.map((r) => String(r.pair_id)), dhashes: rows.map((r) => (r.h === null ? null : String(r.h))), accepted: rows.map((r) => r.accepted === true) });
  assert.deepEqual(rows.map((r) => r.duplicate_of ?? null), again, 'the manifest holds the marks of the recorded hashes');
  const marked = rows.filter((r) => r.accepted && r.duplicate_of !== null);
  assert.ok(marked.length > 0, 'some demo sources repeat');
  const byId = new Map(rows.map((r) => [String(r.pair_id), r]));
  for (const r of marked) {
    const ref = byId.get(String(r.duplicate_of))!;
    assert.equal(ref.accepted, true, 'a reference is an accepted pair');
    assert.equal(ref.duplicate_of, null, 'a reference is not itself marked');
    assert.ok(String(ref.pair_id) < String(r.pair_id), 'references come first in pair_id order');
  }
  // The pass reads each shard's manifest part; from the shard files alone (markers without parts) it gives the same marks.
  const { nearDuplicateMarks } = await import('../../src/run/duplicates.ts');
  const { parseMarker } = await import('../../src/shards/index.ts');
  const markers = [0, 1].map((s) => parseMarker(readFileSync(join(demo, `markers/shard-0000${s}.json`)), `shard ${s}`));
  const store = openStore(demo);
  const fromParts = await nearDuplicateMarks(store, markers.map((m) => ({ shard: m.shard, files: m.files, part: m.manifest_part })));
  assert.ok(markers.every((m) => m.manifest_part));
  const inOrder = await sqlRows(`SELECT duplicate_of FROM '${demo}/manifest.parquet' ORDER BY shard, "index"`);
  assert.deepEqual(fromParts, inOrder.map((r) => (r.duplicate_of === null ? null : String(r.duplicate_of))), 'the marks in manifest order');
  assert.deepEqual(await nearDuplicateMarks(store, markers.map((m) => ({ shard: m.shard, files: m.files }))), fromParts);
  const stats = JSON.parse(readFileSync(join(demo, 'stats.json'), 'utf8'));
  assert.equal(stats.near_duplicates.accepted, marked.length);
  assert.match(readFileSync(join(demo, 'README.md'), 'utf8'), new RegExp(`Near-duplicate sources: ${marked.length} accepted pairs`));

  const out = join(dir, 'deduplicated');
  const r = await refilterRun(demo, out, { sets: [], dropDuplicates: true });
  assert.equal(r.dropped, marked.length);
  assert.equal(r.regenerated, 0);
  const after = await sqlRows(`SELECT pair_id, accepted, reject_reason FROM '${out}/manifest.parquet'`);
  for (const x of after) if (marked.some((m) => m.pair_id === x.pair_id)) assert.deepEqual([x.accepted, x.reject_reason], [false, 'near_duplicate']);
  assert.equal(after.filter((x) => x.accepted).length, rows.filter((x) => x.accepted).length - marked.length);

  const dedupOfScorerRun = await runAsync(process.execPath, [BIN, 'refilter', join(dir, 'run'), '--drop-duplicates', '--out', join(dir, 'dedup-of-scorer-run')]);
  assert.equal(dedupOfScorerRun.status, 0, `the scorer run has the duplicates scorer: ${dedupOfScorerRun.stderr}`);
  const none = await runAsync(process.execPath, [BIN, 'refilter', join(dir, 'probe'), '--out', join(dir, 'bad-none')]);
  assert.equal(none.status, 2);
  assert.match(none.stderr.trim(), /^error: refilter needs at least one --set \(e\.g\. --set identity\.threshold=0\.5\) or --drop-duplicates$/);
});
