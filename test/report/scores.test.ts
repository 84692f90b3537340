/**
 * Pictures of the pair scores (issue 11): the report's and preview's score distributions by category
 * with the rules' bounds, scores.json, and the contact sheet captions that say what decided each
 * verdict. A real run with the tiny diffusers fixture teacher, identity off (its colour fields have no
 * faces), the edit and quality scorers and rules that reject some pairs, one of them per category.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { planRun } from '../../src/run/plan.ts';
import { workRun } from '../../src/run/work.ts';
import { finalizeRun } from '../../src/run/finalize.ts';
import { reportRun, writePreview } from '../../src/report/index.ts';
import { verdictCaption, valueText } from '../../src/report/caption.ts';
import { renderContactSheet } from '../../src/report/sheet.ts';
import { ManifestQuery } from '../../src/report/manifest.ts';
import { captionScores, SCORE_BINS, type ScoreDistributions } from '../../src/report/scores.ts';
import { parseCondition } from '../../src/scorers/rules.ts';
import { planRules, readPlan } from '../../src/dataset/run-file.ts';
import { openStore } from '../../src/store/index.ts';
import { scoreColumns } from '../../src/scorers/config.ts';
import { FIXTURES, REPO, sqlRows, tempDir } from '../helpers/run-fixture.ts';

const dir = tempDir('pairgen-report-scores-');
const run = join(dir, 'run');
const plain = join(dir, 'plain');
after(() => rmSync(dir, { recursive: true, force: true }));

function config(name: string, scorers: boolean, pairs: number): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, [
    'seed: 11',
    `pairs: ${pairs}`,
    'shard_size: 4',
    `prompts: { set: ${join(REPO, 'prompts/demo.yaml')} }`,
    `teacher: { model: ${join(FIXTURES, 'tiny-sd')}, steps: 2 }`,
    'identity: { enabled: false }',
    ...(scorers
      ? [
          'scorers: { enabled: [edit, quality] }',
          'rules:',
          '  default: { not_edited: "edit.magnitude >= 0.05", sharp: "quality.edited_sharpness >= 0", exposed: "quality.edited_clipped in [0, 0.5]" }',
          '  categories: { lighting: { not_edited: "edit.magnitude >= 0.03" } }',
        ]
      : []),
    'output: { image_format: png }',
  ].join('\n'));
  return file;
}

before(async () => {
  await planRun(config('run', true, 12), run);
  await workRun(run);
  await finalizeRun(run);
  await planRun(config('plain', false, 6), plain);
  await workRun(plain);
  await finalizeRun(plain);
  // The fixture's edits measure 0.02-0.08: the rule must have rejected some pairs and kept others.
  const kinds = await sqlRows(`SELECT DISTINCT accepted, reject_reason FROM '${run}/manifest.parquet'`);
  assert.deepEqual(kinds.map((k) => String(k.reject_reason)).sort(), ['not_edited', 'null'], 'the run should have both accepted and not_edited pairs');
});

const perCategory = async (at: string) => new Map((await sqlRows(`SELECT category, count(*) AS n FROM '${at}/manifest.parquet' GROUP BY 1`)).map((r) => [String(r.category), Number(r.n)]));

test('report: a Score distributions section, a plot per scorer and scores.json, linked from index.html; same run → same bytes', async () => {
  const out = join(dir, 'report');
  const r = await reportRun(run, { out });
  assert.deepEqual(r.files.sort(), ['acceptance.png', 'identity-histogram.png', 'index.html', 'scores-edit.png', 'scores-quality.png', 'scores.json', 'sweep.json', 'threshold-sweep.png']);
  for (const f of ['scores-edit.png', 'scores-quality.png']) {
    const meta = await sharp(join(out, f)).metadata();
    assert.equal(meta.format, 'png');
    assert.ok(meta.height! > 300, `${f} should hold a panel per score`);
  }
  const html = readFileSync(join(out, 'index.html'), 'utf8');
  assert.match(html, /<h2>Score distributions<\/h2>/);
  for (const link of ['scores-edit.png', 'scores-quality.png', 'scores.json']) assert.match(html, new RegExp(`(src|href)="${link}"`));
  for (const [, link] of html.matchAll(/(?:src|href)="([^"#:]+)"/g)) if (!link.startsWith('../')) assert.ok(existsSync(join(out, link)), `${link} points at nothing`);
  // The rules table: each rule, its condition, its categories and the pairs it rejected (stats.json's count).
  const stats = JSON.parse(readFileSync(join(run, 'stats.json'), 'utf8'));
  const rejected = (c: string) => stats.by_category[c]?.reject_reasons.not_edited ?? 0;
  assert.match(html, new RegExp(`<td>not_edited</td><td><code>edit.magnitude &gt;= 0.05</code></td><td>color_grade, style</td><td>${rejected('color_grade') + rejected('style')}</td>`));
  assert.match(html, new RegExp(`<td>not_edited</td><td><code>edit.magnitude &gt;= 0.03</code></td><td>lighting</td><td>${rejected('lighting')}</td>`));
  assert.match(html, /<td>exposed<\/td><td><code>quality.edited_clipped in \[0, 0.5\]<\/code><\/td><td>all<\/td><td>0<\/td>/);
  const again = join(dir, 'report-again');
  await reportRun(run, { out: again });
  for (const f of r.files) assert.ok(readFileSync(join(out, f)).equals(readFileSync(join(again, f))), `${f} differs`);
});

test('scores.json: per category, counts and nulls add up to the manifest\'s pairs; bins, ranges and rule bounds are the run\'s', async () => {
  const out = join(dir, 'report');
  if (!existsSync(join(out, 'scores.json'))) await reportRun(run, { out });
  const d: ScoreDistributions = JSON.parse(readFileSync(join(out, 'scores.json'), 'utf8'));
  const pairs = await perCategory(run);
  assert.deepEqual(d.categories, [...pairs.keys()].sort());
  assert.deepEqual(d.scorers, ['edit', 'quality']);
  assert.deepEqual(d.scores.map((s) => s.column), scoreColumns(['edit', 'quality']).map((c) => c.column));
  for (const s of d.scores) {
    for (const [c, n] of pairs) assert.equal(s.counts[c].reduce((a, b) => a + b, 0) + s.nulls[c], n, `${s.name} in ${c}`);
  }
  const magnitude = d.scores.find((s) => s.name === 'edit.magnitude')!;
  const values = await sqlRows(`SELECT category, edit_magnitude AS v FROM '${run}/manifest.parquet'`);
  const all = values.map((r) => Number(r.v));
  assert.equal(magnitude.min, Math.min(...all));
  assert.equal(magnitude.max, Math.max(...all));
  assert.equal(magnitude.edges.length, SCORE_BINS + 1);
  // Each pair in the bin its value falls in (the maximum in the last bin).
  for (const c of d.categories) {
    const expected = new Array(SCORE_BINS).fill(0);
    for (const r of values.filter((r) => r.category === c)) expected[Math.min(SCORE_BINS - 1, Math.floor(((Number(r.v) - magnitude.min!) / (magnitude.max! - magnitude.min!)) * SCORE_BINS))]++;
    assert.deepEqual(magnitude.counts[c], expected, c);
  }
  assert.deepEqual(magnitude.rules, [
    { rule: 'not_edited', op: '>=', value: 0.05, categories: ['color_grade', 'style'] },
    { rule: 'not_edited', op: '>=', value: 0.03, categories: ['lighting'] },
  ]);
  assert.deepEqual(d.scores.find((s) => s.name === 'quality.edited_clipped')!.rules, [{ rule: 'exposed', op: 'in', value: 0, high: 0.5, categories: d.categories }]);
  // No face in the fixture's colour fields: the face crop's magnitude is never measured.
  const face = d.scores.find((s) => s.name === 'edit.face_magnitude')!;
  assert.deepEqual([face.min, face.edges], [null, []]);
  for (const [c, n] of pairs) assert.equal(face.nulls[c], n);
  // One value for every pair (nothing clipped): a unit-wide range around it, everyone in the middle bin.
  const clipped = d.scores.find((s) => s.name === 'quality.edited_clipped')!;
  assert.equal(clipped.min, clipped.max, 'the fixture\'s images have no clipped pixels');
  assert.deepEqual([clipped.edges[0], clipped.edges[SCORE_BINS]], [clipped.min! - 0.5, clipped.max! + 0.5]);
  for (const [c, n] of pairs) assert.equal(clipped.counts[c][SCORE_BINS / 2], n);
});

test('preview/ has the same distributions and links them; a run without scorers has no score pictures', async () => {
  const keys = await writePreview(run);
  for (const k of ['preview/scores-edit.png', 'preview/scores-quality.png']) assert.ok(keys.includes(k), k);
  const html = readFileSync(join(run, 'preview/index.html'), 'utf8');
  assert.match(html, /<h2>Score distributions<\/h2>/);
  for (const [, link] of html.matchAll(/(?:src|href)="([^"#]+)"/g)) assert.ok(existsSync(join(run, 'preview', decodeURI(link))), `${link} points at nothing`);
  assert.ok(readFileSync(join(run, 'preview/scores-edit.png')).equals(readFileSync(join(dir, 'report/scores-edit.png'))), 'the preview draws the report\'s plot');

  const r = await reportRun(plain, { out: join(dir, 'plain-report') });
  assert.deepEqual(r.files.sort(), ['acceptance.png', 'identity-histogram.png', 'index.html', 'sweep.json', 'threshold-sweep.png']);
  assert.doesNotMatch(readFileSync(join(dir, 'plain-report/index.html'), 'utf8'), /Score distributions|"scores-|scores\.json/);
  const plainKeys = await writePreview(plain);
  assert.deepEqual(plainKeys.filter((k) => k.includes('scores')), []);
  assert.doesNotMatch(readFileSync(join(plain, 'preview/index.html'), 'utf8'), /Score distributions/);
});

test('a sheet caption names the failed rule and the value of the score it read; accepted pairs show their rules\' values', async () => {
  const store = openStore(run);
  const rules = planRules(await readPlan(store), run);
  const query = await ManifestQuery.open(store, run);
  let rows;
  try {
    rows = await query.select(undefined, 200, captionScores(rules, await query.columns()));
  } finally {
    await query.close();
  }
  assert.equal(rows.length, 12);
  const bound = (category: string) => (category === 'lighting' ? 0.03 : 0.05);
  for (const row of rows) {
    const m = row.scores['edit.magnitude']!;
    assert.equal(typeof m, 'number');
    const caption = verdictCaption(row, rules.get(row.category)!);
    if (!row.accepted) {
      assert.equal(row.reject_reason, 'not_edited');
      const match = /^rejected: not_edited: edit\.magnitude ([\d.]+) \(≥ (0\.0\d)\)$/.exec(caption.verdict);
      assert.ok(match, caption.verdict);
      assert.equal(Number(match[2]), bound(row.category));
      assert.ok(Math.abs(Number(match[1]) - m) <= m * 0.005, `${match[1]} is not ${m} to three digits`);
      assert.deepEqual(caption.details, []);
    } else {
      assert.equal(caption.verdict, 'accepted');
      assert.match(caption.details[0], new RegExp(`^not_edited: edit\\.magnitude [\\d.]+ \\(≥ ${bound(row.category)}\\); sharp: quality\\.edited_sharpness \\d+ \\(≥ 0\\); exposed: quality\\.edited_clipped [\\d.]+ \\(in \\[0, 0\\.5\\]\\)$`));
    }
  }
  // A rule of several conditions: the failing ones in the verdict, the others as a detail; unmeasured scores say so.
  const two = { name: 'kept', conditions: [parseCondition('edit.magnitude >= 0.5'), parseCondition('quality.edited_sharpness >= 0'), parseCondition('edit.face_magnitude <= 0.1')], text: '' };
  assert.deepEqual(verdictCaption({ accepted: false, reject_reason: 'kept', scores: { 'edit.magnitude': 0.0113, 'quality.edited_sharpness': 6502.03, 'edit.face_magnitude': null } }, [two]), {
    verdict: 'rejected: kept: edit.magnitude 0.0113 (≥ 0.5), edit.face_magnitude not measured (≤ 0.1)',
    details: ['held: quality.edited_sharpness 6502 (≥ 0)'],
  });
  // Identity reasons and runs without rules read as before.
  assert.deepEqual(verdictCaption({ accepted: false, reject_reason: 'identity_below_threshold', scores: {} }, [two]), { verdict: 'rejected: identity_below_threshold', details: [] });
  assert.deepEqual(verdictCaption({ accepted: true, reject_reason: null, scores: {} }, []), { verdict: 'accepted', details: [] });
  // A value is never printed so that it looks on the other side of its bound.
  assert.equal(valueText(parseCondition('edit.magnitude >= 0.02'), 0.019996), '0.019996');
  assert.equal(valueText(parseCondition('edit.magnitude >= 0.02'), 0.0113456), '0.0113');

  // The sheet draws the caption: a rejected row's red verdict line is longer with the rules than without.
  const rejectedRows = rows.filter((r) => !r.accepted).slice(0, 1).map((r) => ({ ...r, source: null, edited: null }));
  const redWidth = async (png: Buffer) => {
    const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    let right = 0;
    for (let y = 78 + 10; y < 78 + 170; y++) for (let x = 350; x < info.width - 8; x++) {
      const i = (y * info.width + x) * 3;
      if (data[i] > 150 && data[i + 1] < 60 && data[i + 2] < 60) right = Math.max(right, x);
    }
    return right;
  };
  const header = { title: 't', subtitle: 's' };
  const withRules = await redWidth(await renderContactSheet(rejectedRows, header, rules));
  const without = await redWidth(await renderContactSheet(rejectedRows, header));
  assert.ok(without > 350 && withRules > without + 100, `red verdict text ends at ${withRules} with rules, ${without} without`);
});
