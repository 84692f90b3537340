import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../../src/errors.ts';
import { decodeImage } from '../../src/image/index.ts';
import { DEFAULT_RUNTIME } from '../../src/onnx/session.ts';
import { ensureReferenceTeacher, EditTruthTally, GroundTruth, precisionRecall, GroundTruthTally, referenceLabeller } from '../../src/reference/index.ts';
import { createTeacher } from '../../src/teacher/index.ts';
import { withDefaults } from '../../src/teacher/config.ts';
import type { CandidateSpec } from '../../src/types.ts';
import { pairId, pairSeed } from '../../src/candidates/seeds.ts';
import { loadPromptSet } from '../../src/prompts/index.ts';
import { expandRows } from '../../src/prompts/expand.ts';
import { FIXTURES } from '../helpers/fixtures.ts';

// The shared cache (.cache/reference-teacher, or PAIRGEN_CACHE): built once, reused by `make demo`.
const ref = await ensureReferenceTeacher();
const tmp = mkdtempSync(join(tmpdir(), 'pairgen-reference-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

const EDITS: [string, string][] = [
  ['make the photo black and white', 'grayscale'],
  ['give the photo a sepia tone', 'sepia'],
  ['turn the photo into a pencil sketch', 'sketch'],
  ['make it pop art', 'popart'],
  ['add a vignette', 'vignette'],
  ['increase the contrast', 'high-contrast'],
  ['make the colors warmer', 'warm'],
  ['give the image a cold blue tint', 'cool'],
  ['soften the focus', 'soft-focus'],
];

function specs(n: number): CandidateSpec[] {
  return Array.from({ length: n }, (_, i) => ({
    pairId: `p${i}`, index: i, seed: 4242 + i * 104729, promptId: `q${i}`, sampleIndex: 0, category: 'test',
    sourcePrompt: 'a headshot of a middle-aged person with short dark hair, in a cafe',
    instruction: EDITS[i % EDITS.length][0], targetPrompt: '', identityThreshold: null, attributes: { edit: EDITS[i % EDITS.length][1] },
  }));
}

test('the cache is reused: a second ensure builds nothing', async () => {
  const again = await ensureReferenceTeacher();
  assert.equal(again.built, false);
  assert.equal(again.model, ref.model);
  const calibration = JSON.parse(readFileSync(ref.calibration, 'utf8')) as { category_thresholds: Record<string, number> };
  assert.deepEqual(Object.keys(calibration.category_thresholds).sort(), ['color_grade', 'lighting', 'style']);
});

for (const [scheduler, steps] of [[null, 20], ['DDIMScheduler', 8], ['EulerDiscreteScheduler', 6]] as const) {
  test(`the sampler converges to bank items, mostly of the asked edit (${scheduler ?? 'folder scheduler'}, ${steps} steps)`, async () => {
    const config = withDefaults({ model: ref.model, edit_model: ref.editModel, mode: 'instruct', steps, guidance_scale: 1, scheduler, max_batch: 9 });
    // The ground truth reaches the teacher through its labeller hook, as the run's teacher gets it.
    const teacher = await createTeacher(config, DEFAULT_RUNTIME, { labeller: referenceLabeller(config) });
    try {
      const list = specs(9);
      const pairs = await teacher.generate(list);
      pairs.forEach((p, i) => {
        const x = p.extra!;
        assert.equal(p.source.width, 128);
        assert.match(String(x.source_item), /^source\/\d\d$/);
        // The edit is the asked one, or failed (the instruct folder's prior, docs/reference-teacher.md): the label says which.
        const bank = String(x.edited_item).split('/')[0];
        assert.equal(x.edit_asked, list[i].attributes.edit);
        assert.equal(x.edit_made, bank === list[i].attributes.edit ? 'right' : bank === 'source' ? 'none' : 'wrong', `pair ${i}: ${JSON.stringify(x)}`);
        assert.equal(x.edit_kept, x.edit_made === 'right');
        // Converged: the 8-bit image is its bank item up to rounding.
        assert.ok(Number(x.source_distance) < 1e-4 && Number(x.edited_distance) < 1e-4, `pair ${i} did not converge: ${JSON.stringify(x)}`);
        assert.equal(x.identity_kept, x.source_person === x.edited_person);
      });
      // The instruction chooses the bank: most edits are the asked one (a bank drawn at random would be right 1 time in 9).
      assert.ok(pairs.filter((p) => p.extra!.edit_made === 'right').length >= 5, pairs.map((p) => p.extra!.edited_item).join(' '));
      // Same specs → same bytes.
      const again = await teacher.generate(list);
      again.forEach((p, i) => assert.ok(Buffer.from(p.edited.data).equals(Buffer.from(pairs[i].edited.data))));
    } finally {
      await teacher.close();
    }
  });
}

test('the demo makes failed edits: candidates of pipelines/demo.yaml that end on no edit and on another edit', async () => {
  // Three of the demo's 240 candidates (prompts/demo.yaml, seed 2025, sample 0), as scripts/measure-edit-fidelity.ts draws them.
  const wanted: Record<string, string> = { c574e8b73e248115: 'warm/05 right', '002d4a42653d1af9': 'source/10 none', '2ca5c244bd7d7dab': 'cool/15 wrong' };
  const set = loadPromptSet(new URL('../../prompts/demo.yaml', import.meta.url).pathname);
  const list: CandidateSpec[] = [...expandRows(set, { count: 240, seed: 2025 })]
    .filter((r) => r.prompt_split === 'train' && pairId(2025, r.prompt_id, 0) in wanted)
    .map((r, index) => ({
      pairId: pairId(2025, r.prompt_id, 0), index, seed: pairSeed(2025, r.prompt_id, 0), promptId: r.prompt_id, sampleIndex: 0, category: r.category,
      sourcePrompt: r.source_prompt, instruction: r.instruction, targetPrompt: r.target_prompt, identityThreshold: r.identity_threshold, attributes: r.attributes,
    }));
  assert.equal(list.length, 3);
  const config = withDefaults({ model: ref.model, edit_model: ref.editModel, mode: 'instruct', steps: 20, guidance_scale: 1, max_batch: 3 });
  const teacher = await createTeacher(config, DEFAULT_RUNTIME, { labeller: referenceLabeller(config) });
  try {
    const pairs = await teacher.generate(list);
    const got = Object.fromEntries(pairs.map((p, i) => [list[i].pairId, `${p.extra!.edited_item} ${p.extra!.edit_made}`]));
    assert.deepEqual(got, wanted);
    // The unedited "edit" is the source itself, byte for byte: what the edit-magnitude rule catches.
    const none = pairs[list.findIndex((s) => s.pairId === '002d4a42653d1af9')];
    assert.ok(Buffer.from(none.edited.data).equals(Buffer.from(none.source.data)));
  } finally {
    await teacher.close();
  }
});

test('ground truth: bank images are themselves; other sizes are a user error', async () => {
  const truth = await GroundTruth.open(ref.editModel);
  const src = await decodeImage(join(ref.bankDir, 'source', '05.png'));
  const sketch = await decodeImage(join(ref.bankDir, 'sketch', '09.png'));
  // Without the candidate (or without an `edit` attribute) there is no edit truth.
  assert.deepEqual(
    { ...truth.label(src, sketch) },
    { source_item: 'source/05', edited_item: 'sketch/09', source_person: 5, edited_person: 9, identity_kept: false, source_distance: 0, edited_distance: 0 },
  );
  assert.equal(truth.label(src, sketch, { attributes: {} }).edit_made, undefined);
  // The asked edit against the edited image's bank: right, none (an unedited face), wrong (another edit).
  const made = (edited: typeof src, asked: string) => {
    const { edit_asked, edit_made, edit_kept } = truth.label(src, edited, { attributes: { edit: asked } }) as Record<string, unknown>;
    return { edit_asked, edit_made, edit_kept };
  };
  assert.deepEqual(made(sketch, 'sketch'), { edit_asked: 'sketch', edit_made: 'right', edit_kept: true });
  assert.deepEqual(made(src, 'sketch'), { edit_asked: 'sketch', edit_made: 'none', edit_kept: false });
  assert.deepEqual(made(sketch, 'grayscale'), { edit_asked: 'grayscale', edit_made: 'wrong', edit_kept: false });
  assert.throws(() => truth.nearest({ width: 64, height: 64, data: new Uint8Array(64 * 64 * 3) }), (e: Error) => e instanceof UserError && /64x64.*128x128/.test(e.message));
  await assert.rejects(GroundTruth.open(tmp), (e: Error) => e instanceof UserError && /reference\.json/.test(e.message));
});

test('precisionRecall counts the identity filter against the ground truth', () => {
  const rows = [
    { accepted: true, identity_kept: true },
    { accepted: true, identity_kept: true },
    { accepted: true, identity_kept: false },
    { accepted: false, identity_kept: true },
    { accepted: false, identity_kept: false },
    { accepted: true, identity_kept: null },
  ];
  const pr = precisionRecall(rows);
  assert.equal(pr.precision, 2 / 3);
  assert.equal(pr.recall, 2 / 3);
  assert.deepEqual([pr.truePositives, pr.falsePositives, pr.falseNegatives, pr.trueNegatives, pr.unlabelled], [2, 1, 1, 1, 1]);
  assert.deepEqual(precisionRecall([]), { precision: null, recall: null, truePositives: 0, falsePositives: 0, falseNegatives: 0, trueNegatives: 0, unlabelled: 0 });

  // finalize's tally, one pair at a time from the `extra` column, agrees on the labelled rows.
  const tally = new GroundTruthTally();
  for (const r of rows) tally.add(r.accepted, { identity_kept: r.identity_kept, source_item: 'source/01' });
  assert.deepEqual(tally.result(), precisionRecall(rows.filter((r) => r.identity_kept !== null)));
  assert.equal(new GroundTruthTally().result(), null);
});

test('EditTruthTally measures a verdict against edit_kept and against the whole pair, and counts failed edits by kind', () => {
  const row = (accepted: boolean, identity_kept: boolean, edit_made: string) => ({ accepted, extra: { identity_kept, edit_made, edit_kept: edit_made === 'right' } });
  const rows = [
    row(true, true, 'right'), // pair tp, edit tp
    row(true, false, 'right'), // edit tp, pair fp
    row(true, true, 'none'), // edit fp, pair fp
    row(false, true, 'wrong'), // edit tn, pair tn
    row(false, true, 'right'), // edit fn, pair fn
    row(false, false, 'none'), // tn, tn
  ];
  const tally = new EditTruthTally();
  for (const r of rows) tally.add(r.accepted, r.extra);
  tally.add(true, { identity_kept: true }); // no edit truth (a prompt without `edit`): not counted
  const result = tally.result()!;
  assert.deepEqual([result.edit.truePositives, result.edit.falsePositives, result.edit.falseNegatives, result.edit.trueNegatives], [2, 1, 1, 2]);
  assert.equal(result.edit.precision, 2 / 3);
  assert.equal(result.edit.recall, 2 / 3);
  assert.deepEqual([result.pair.truePositives, result.pair.falsePositives, result.pair.falseNegatives, result.pair.trueNegatives], [1, 2, 1, 2]);
  assert.equal(result.pair.precision, 1 / 3);
  assert.equal(result.pair.recall, 1 / 2);
  assert.deepEqual(result.made, { right: { pairs: 3, accepted: 2 }, none: { pairs: 2, accepted: 1 }, wrong: { pairs: 1, accepted: 0 } });
  // GroundTruthTally with a truth name is the same count, one truth at a time.
  const edit = new GroundTruthTally('edit');
  for (const r of rows) edit.add(r.accepted, r.extra);
  assert.deepEqual(edit.result(), result.edit);
  assert.equal(new EditTruthTally().result(), null);
  // The edit rules' own verdict may differ from the pair's (identity rejected a right edit): each truth gets its own.
  const split = new EditTruthTally();
  split.add(false, { identity_kept: false, edit_made: 'right', edit_kept: true }, true);
  const s = split.result()!;
  assert.deepEqual([s.edit.truePositives, s.pair.trueNegatives, s.made.right.accepted], [1, 1, 0]);
});

test('setup script: a bad --image-strength is a user error (exit 2)', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', new URL('../../scripts/setup-reference.ts', import.meta.url).pathname, '--image-strength', 'lots'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^error: --image-strength must be a number >= 0, got lots/m);
  const share = spawnSync(process.execPath, ['--import', 'tsx', new URL('../../scripts/setup-reference.ts', import.meta.url).pathname, '--edit-wrong', '1.5'], { encoding: 'utf8' });
  assert.equal(share.status, 2);
  assert.match(share.stderr, /^error: --edit-wrong must be a number in \[0, 1\), got 1\.5/m);
  const fresh = spawnSync(process.execPath, ['--import', 'tsx', new URL('../../scripts/setup-reference.ts', import.meta.url).pathname], { encoding: 'utf8' });
  assert.equal(fresh.status, 0, fresh.stderr);
  assert.match(fresh.stdout, /^fresh reference teacher in .*\n[\s\S]*teacher\.edit_model: .*instruct[\s\S]*style: 0\.\d+/m);
});

test('bad inputs: a missing prompt set, an edit the bank lacks, a bad strength, an unwritable cache', async () => {
  const cacheDir = join(tmp, 'cache');
  await assert.rejects(ensureReferenceTeacher({ cacheDir, promptSet: join(tmp, 'nope.yaml') }), (e: Error) => e instanceof UserError && /nope\.yaml/.test(e.message));
  const set = readFileSync(new URL('../../prompts/demo.yaml', import.meta.url), 'utf8').replace('attributes: { edit: sepia }', 'attributes: { edit: watercolor }');
  writeFileSync(join(tmp, 'bad-edit.yaml'), set);
  await assert.rejects(
    ensureReferenceTeacher({ cacheDir, promptSet: join(tmp, 'bad-edit.yaml') }),
    (e: Error) => e instanceof UserError && /bad-edit\.yaml: category "color_grade".*"watercolor".*grayscale, sepia/.test(e.message),
  );
  await assert.rejects(ensureReferenceTeacher({ cacheDir, imageStrength: -1 }), (e: Error) => e instanceof UserError && /strength/.test(e.message));
  await assert.rejects(ensureReferenceTeacher({ cacheDir, editFailures: { none: 0.6, wrong: 0.4 } }), (e: Error) => e instanceof UserError && /edit failure shares.*none 0\.6, wrong 0\.4/.test(e.message));
  writeFileSync(join(tmp, 'a-file'), 'x');
  await assert.rejects(ensureReferenceTeacher({ cacheDir: join(tmp, 'a-file', 'cache') }), (e: Error) => e instanceof UserError && /a-file.*PAIRGEN_CACHE/.test(e.message));
  // nothing half-written is left behind
  assert.deepEqual(readFileSync(join(tmp, 'a-file'), 'utf8'), 'x');
});

test('the ground truth comes only through the labeller hook: a reference folder alone labels nothing, other folders get no hook', async () => {
  assert.equal(referenceLabeller({ model: ref.model, edit_model: null }) !== null, true);
  assert.equal(referenceLabeller({ model: join(FIXTURES, 'tiny-sd'), edit_model: null }), null);
  const config = withDefaults({ model: ref.model, edit_model: ref.editModel, mode: 'instruct', steps: 2, guidance_scale: 1, max_batch: 2 });
  const teacher = await createTeacher(config, DEFAULT_RUNTIME);
  try {
    const [pair] = await teacher.generate(specs(1));
    assert.equal(pair.extra?.identity_kept, undefined);
  } finally {
    await teacher.close();
  }
});
