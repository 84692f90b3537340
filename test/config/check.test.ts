/**
 * `pairgen check` as a whole (src/config/check.ts): the config loads, the prompt set and each stage's own
 * check (test/teacher/check.test.ts, test/identity/check.test.ts) go into one report in stage order, with
 * the config's notes on getting the models when one is missing; the three ready pipelines/ configs fail
 * with the "download this" notes while their weights are absent, and pass with the fixture folders
 * swapped in by --set; the CLI's output and exit codes.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { checkPipeline, type CheckReport } from '../../src/config/check.ts';
import { isUserError } from '../../src/errors.ts';
import { BIN, FIXTURES, REPO, tempDir } from '../helpers/run-fixture.ts';

const made: string[] = [];
function scratch(prefix: string): string {
  const d = tempDir(prefix);
  made.push(d);
  return d;
}
const dir = scratch('pairgen-check-');
after(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});
const demoPrompts = join(REPO, 'prompts/demo.yaml');

/** A config in a fresh folder; `teacher` and `identity` are YAML flow mappings. */
function config(teacher: string, identity = '{ enabled: false }', extra = ''): string {
  const sub = scratch('pairgen-check-cfg-');
  const file = join(sub, 'pipeline.yaml');
  writeFileSync(file, `# How to get the models: copy them from the fixtures.\nprompts: { set: ${demoPrompts} }\nteacher: ${teacher}\nidentity: ${identity}\n${extra}`);
  return file;
}

function ok(r: CheckReport): void {
  assert.deepEqual(r.problems, [], `unexpected problems:\n${r.problems.join('\n')}`);
}

test('a good config passes with a summary line per stage', async () => {
  const r = await checkPipeline(config(`{ model: ${join(FIXTURES, 'tiny-sd')}, edit_model: ${join(FIXTURES, 'tiny-sd-ip2p')}, mode: instruct }`));
  ok(r);
  assert.equal(r.summary.length, 3);
  assert.match(r.summary[0], /^prompts: demo \(3 categories: color_grade, style, lighting\)$/);
  assert.match(r.summary[1], /^teacher: .*tiny-sd \(SD, UNet 4 channels float32\) \+ edit .*tiny-sd-ip2p \(SD, UNet 8 channels float32\), mode instruct, 30 steps$/);
  assert.equal(r.summary[2], 'identity: disabled (every pair is kept)');
  assert.equal(r.howToGetModels, null);
});

test('every stage\'s problems in one report, in stage order, and the config\'s notes when a model is missing', async () => {
  const nothing = await checkPipeline(config(`{ model: ${join(dir, 'models/none')} }`, '{ embedder: { kind: arcface, model: w600k_r50.onnx } }'));
  assert.equal(nothing.problems.length, 2);
  assert.match(nothing.problems[0], /^teacher\.model: model folder .*models\/none does not exist \(expected a diffusers ONNX export: model_index\.json, scheduler\/, tokenizer\/, text_encoder\/, unet\/, vae_decoder\/\)$/);
  assert.match(nothing.problems[1], /^identity\.embedder\.model: .*\/w600k_r50\.onnx does not exist$/);
  assert.equal(nothing.howToGetModels, 'How to get the models: copy them from the fixtures.');

  const portraits = scratch('pairgen-check-portraits-');
  await sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } }).png().toFile(join(portraits, 'a.png'));
  const r = await checkPipeline(
    config(`{ model: ${join(FIXTURES, 'tiny-sd')}, mode: img2img, strength: 0.6, sources: { path: ${portraits} }, height: 63 }`, '{ category_thresholds: { colour_grade: 0.5, style: 0.4 } }'),
  );
  assert.deepEqual(r.problems, [
    'teacher.height: 63 is not a multiple of 2, the VAE scale factor of teacher.model (latents are 2x smaller than the image)',
    'identity.category_thresholds.colour_grade: the prompt set has no category "colour_grade" (it has: color_grade, style, lighting)',
  ]);
  assert.equal(r.howToGetModels, null, 'nothing is missing');
});

test('a prompt set that does not load is named; a bad config stops the check', async () => {
  const sd = join(FIXTURES, 'tiny-sd');
  const d = await checkPipeline(config(`{ model: ${sd} }`), ['prompts.set=missing-prompts.yaml']);
  assert.equal(d.problems.length, 1);
  assert.match(d.problems[0], /^prompts\.set: .*missing-prompts\.yaml: cannot read the prompt set \(no such file\)$/);
  await assert.rejects(checkPipeline(config(`{ model: ${sd}, stepz: 3 }`)), (e) => isUserError(e) && /teacher\.stepz: unknown key/.test(e.message));
});

test('the ready pipelines/ configs: "download this" while the weights are absent; ok with the fixture folders swapped in', async () => {
  const cases: [string, number, string[]][] = [
    ['sd15-prompt-pair', 1, [`teacher.model=${join(FIXTURES, 'tiny-sd')}`]],
    ['instruct-pix2pix', 2, [`teacher.model=${join(FIXTURES, 'tiny-sd')}`, `teacher.edit_model=${join(FIXTURES, 'tiny-sd-ip2p')}`]],
    ['sdxl', 1, [`teacher.model=${join(FIXTURES, 'tiny-sdxl')}`]],
  ];
  for (const [name, missing, swap] of cases) {
    const file = join(REPO, 'pipelines', `${name}.yaml`);
    const absent = await checkPipeline(file);
    assert.equal(absent.problems.length, missing, `${name}: ${absent.problems.join('\n')}`);
    for (const p of absent.problems) assert.match(p, new RegExp(`^teacher\\.(edit_)?model: model folder ${join(REPO, 'pipelines/models')}/\\S+ does not exist`));
    assert.match(absent.howToGetModels ?? '', /optimum-cli export onnx --model \S+ pipelines\/models\//);
    const swapped = await checkPipeline(file, [...swap, 'identity.enabled=false']);
    ok(swapped);
    assert.match(swapped.summary.join('\n'), /prompts: portrait \(10 categories/);
  }
});

test('CLI: exit 0 with a summary; exit 2 with every problem and the notes, no stack', () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, [BIN, 'check', ...args], { encoding: 'utf8' });
  const good = cli(config(`{ model: ${join(FIXTURES, 'tiny-sd')} }`, '{ enabled: true }'));
  assert.equal(good.status, 0, good.stderr);
  assert.match(good.stdout, /: ok\n  prompts: demo .*\n  teacher: .*\n  identity: identity:blazeface-back\+faceres, threshold 0\.65\n$/);
  const bad = cli(join(REPO, 'pipelines/sdxl.yaml'));
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^error: pipelines\/sdxl\.yaml: 1 problem\n  - teacher\.model: model folder .* does not exist/);
  assert.match(bad.stderr, /How to get the models \(from pipelines\/sdxl\.yaml\):\n  Stable Diffusion XL/);
  assert.doesNotMatch(bad.stderr, /\n\s+at /);
  const noFile = cli(join(dir, 'nope.yaml'));
  assert.equal(noFile.status, 2);
  assert.match(noFile.stderr, /cannot read pipeline config .*nope\.yaml: no such file/);
});
