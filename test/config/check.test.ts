/**
 * `pairgen check`: the fixture teachers pass; broken copies of them (deleted, truncated, foreign files,
 * ONNX graphs with the wrong inputs/outputs built in code) are reported file by file; the three ready
 * pipelines/ configs fail with the "download this" notes while their weights are absent, and pass with
 * the fixture folders swapped in by --set.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkPipeline, type CheckReport } from '../../src/report/index.ts';
import { readOnnxHeader } from '../../src/onnx/header.ts';
import { OnnxBuilder } from '../../src/onnx/builder.ts';
import { openSession } from '../../src/onnx/session.ts';
import { isUserError } from '../../src/errors.ts';
import sharp from 'sharp';
import { BIN, FIXTURES, REPO, tempDir } from '../helpers/run-fixture.ts';
import { tinySdExternal } from '../helpers/fixtures.ts';

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

/** A writable copy of a fixture folder (the fixtures are read-only). */
function copyFixture(name: string): string {
  const target = join(scratch('pairgen-check-model-'), name);
  cpSync(name === 'tiny-sd-external' ? tinySdExternal() : join(FIXTURES, name), target, { recursive: true });
  const walk = (p: string) => {
    chmodSync(p, statSync(p).isDirectory() ? 0o755 : 0o644);
    if (statSync(p).isDirectory()) for (const f of readdirSync(p)) walk(join(p, f));
  };
  walk(target);
  return target;
}

function ok(r: CheckReport): void {
  assert.deepEqual(r.problems, [], `unexpected problems:\n${r.problems.join('\n')}`);
}

test('the header reader gives the same input/output names and types as an onnxruntime session', async () => {
  for (const model of ['tiny-sd/text_encoder', 'tiny-sd/unet', 'tiny-sd/vae_encoder', 'tiny-sd/vae_decoder', 'tiny-sd-ip2p/unet', 'tiny-sdxl/text_encoder_2', 'tiny-sdxl/unet', 'tiny-sd-fp16/unet', 'tiny-sd-external/unet']) {
    const path = model.startsWith('tiny-sd-external') ? join(tinySdExternal(), model.slice('tiny-sd-external/'.length), 'model.onnx') : join(FIXTURES, model, 'model.onnx');
    const header = readOnnxHeader(path);
    const session = await openSession(path);
    const pick = (io: readonly { name: string; type: string }[]) => io.map((m) => `${m.name}:${m.type}`);
    assert.deepEqual(pick(header.inputs), pick(session.inputMetadata.map((m) => ({ name: m.name, type: m.isTensor ? m.type : 'non-tensor' }))), model);
    assert.deepEqual(pick(header.outputs), pick(session.outputMetadata.map((m) => ({ name: m.name, type: m.isTensor ? m.type : 'non-tensor' }))), model);
    assert.deepEqual(header.inputs.map((i) => i.shape), session.inputMetadata.map((m) => (m.isTensor ? [...m.shape] : [])), model);
    assert.deepEqual(header.externalFiles, model.startsWith('tiny-sd-external') ? ['model.onnx_data'] : []);
    await session.release();
  }
});

test('the fixture teachers pass in every mode, with a summary per stage', async () => {
  const sd = join(FIXTURES, 'tiny-sd');
  ok(await checkPipeline(config(`{ model: ${sd} }`)));
  ok(await checkPipeline(config(`{ model: ${join(FIXTURES, 'tiny-sdxl')} }`)));
  ok(await checkPipeline(config(`{ model: ${tinySdExternal()}, strength: 0.5 }`)));
  const instruct = await checkPipeline(config(`{ model: ${sd}, edit_model: ${join(FIXTURES, 'tiny-sd-ip2p')}, mode: instruct }`));
  ok(instruct);
  assert.match(instruct.summary.join('\n'), /teacher: .*tiny-sd \(SD, UNet 4 channels float32\) \+ edit .*tiny-sd-ip2p \(SD, UNet 8 channels float32\), mode instruct/);
  assert.match(instruct.summary.join('\n'), /prompts: demo \(3 categories/);
  assert.equal(instruct.howToGetModels, null);
});

test('missing files are listed one by one, with their paths, and the config\'s notes on getting the models', async () => {
  const model = copyFixture('tiny-sd');
  rmSync(join(model, 'unet/model.onnx'));
  rmSync(join(model, 'tokenizer/merges.txt'));
  rmSync(join(model, 'vae_encoder'), { recursive: true });
  const r = await checkPipeline(config(`{ model: ${model}, mode: img2img, edit_model: ${join(FIXTURES, 'tiny-sd-ip2p')}, sources: { path: ${join(dir, 'no-portraits')} } }`));
  assert.deepEqual(r.problems, [
    `teacher.model: missing ${join(model, 'tokenizer/merges.txt')}`,
    `teacher.model: missing ${join(model, 'unet/model.onnx')}`,
    `teacher.sources.path: ${join(dir, 'no-portraits')} does not exist (expected a folder of images or a .parquet file)`,
  ]);
  // img2img with a separate edit model: the source folder needs no vae_encoder, so its absence is fine.
  assert.equal(r.howToGetModels, 'How to get the models: copy them from the fixtures.');

  const external = copyFixture('tiny-sd-external');
  rmSync(join(external, 'unet/model.onnx_data'));
  const e = await checkPipeline(config(`{ model: ${external} }`));
  assert.deepEqual(e.problems, [`teacher.model: missing ${join(external, 'unet/model.onnx_data')} (unet/model.onnx keeps its weights there)`]);

  const xl = copyFixture('tiny-sdxl');
  rmSync(join(xl, 'tokenizer_2/vocab.json'));
  rmSync(join(xl, 'text_encoder_2/model.onnx'));
  const x = await checkPipeline(config(`{ model: ${xl} }`));
  assert.deepEqual(x.problems, [`teacher.model: missing ${join(xl, 'tokenizer_2/vocab.json')}`, `teacher.model: missing ${join(xl, 'text_encoder_2/model.onnx')}`]);

  const nothing = await checkPipeline(config(`{ model: ${join(dir, 'models/none')} }`, '{ embedder: { kind: arcface, model: w600k_r50.onnx } }'));
  assert.equal(nothing.problems.length, 2);
  assert.match(nothing.problems[0], /^teacher\.model: model folder .*models\/none does not exist \(expected a diffusers ONNX export: model_index\.json, scheduler\/, tokenizer\/, text_encoder\/, unet\/, vae_decoder\/\)$/);
  assert.match(nothing.problems[1], /^identity\.embedder\.model: .*\/w600k_r50\.onnx does not exist$/);
});

test('wrong ONNX files: inputs/outputs by name and what was found, wrong dtypes, LFS pointers, truncated files, bad JSON', async () => {
  const model = copyFixture('tiny-sd');
  // A VAE decoder with the wrong names, a UNet whose sample is int64: real ONNX graphs built in code.
  const dec = new OnnxBuilder({ opset: 17 });
  dec.output(dec.op('Identity', [dec.input('latents', 'float32', [1, 4, 8, 8])], {}, 'image'), 'float32', [1, 4, 8, 8]);
  writeFileSync(join(model, 'vae_decoder/model.onnx'), dec.toBytes());
  const unet = new OnnxBuilder({ opset: 17 });
  const s = unet.input('sample', 'int64', [1, 4, 8, 8]);
  unet.input('timestep', 'int64', [1]);
  unet.input('encoder_hidden_states', 'float32', [1, 77, 32]);
  unet.output(unet.op('Identity', [s], {}, 'out_sample'), 'int64', [1, 4, 8, 8]);
  writeFileSync(join(model, 'unet/model.onnx'), unet.toBytes());
  writeFileSync(join(model, 'text_encoder/model.onnx'), 'version https://git-lfs.github.com/spec/v1\noid sha256:0000\nsize 123\n');
  writeFileSync(join(model, 'scheduler/scheduler_config.json'), '{"beta_start": 0.00085,');
  const r = await checkPipeline(config(`{ model: ${model} }`));
  const te = join(model, 'text_encoder/model.onnx');
  assert.deepEqual(r.problems, [
    `${join(model, 'scheduler/scheduler_config.json')}: not valid JSON (${jsonError('{"beta_start": 0.00085,')})`,
    `teacher.model: ${te} cannot be read as an ONNX model: it is a Git LFS pointer, not the model: fetch the real file (git lfs pull)`,
    `teacher.model: ${join(model, 'unet/model.onnx')}: input sample is int64; expected float32 or float16`,
    `teacher.model: ${join(model, 'vae_decoder/model.onnx')} lacks input(s) latent_sample (it has: latents)`,
    `teacher.model: ${join(model, 'vae_decoder/model.onnx')} lacks output(s) sample (it has: image)`,
  ]);

  const truncated = copyFixture('tiny-sd');
  const bytes = readFileSync(join(truncated, 'unet/model.onnx'));
  writeFileSync(join(truncated, 'unet/model.onnx'), bytes.subarray(0, bytes.length >> 1));
  const t = await checkPipeline(config(`{ model: ${truncated} }`));
  assert.equal(t.problems.length, 1);
  assert.match(t.problems[0], /unet\/model\.onnx cannot be read as an ONNX model: the file is truncated/);
});

function jsonError(text: string): string {
  try {
    JSON.parse(text);
  } catch (e) {
    return (e as Error).message;
  }
  return '';
}

test('mode rules: the UNet channels must fit the mode; img2img needs sources; a bad prompt set is named', async () => {
  const ip2p = join(FIXTURES, 'tiny-sd-ip2p');
  const sd = join(FIXTURES, 'tiny-sd');
  const a = await checkPipeline(config(`{ model: ${sd}, mode: instruct }`));
  assert.deepEqual(a.problems, [`teacher.edit_model: mode "instruct" needs an InstructPix2Pix model (a UNet with 8 input channels); ${sd} has 4`]);
  const b = await checkPipeline(config(`{ model: ${ip2p} }`));
  assert.match(b.problems.join('\n'), /teacher\.model: .*tiny-sd-ip2p is an InstructPix2Pix model .*Put it in teacher\.edit_model/);
  const c = await checkPipeline(config(`{ model: ${sd}, mode: img2img }`));
  assert.deepEqual(c.problems, [
    'teacher.strength: mode "img2img" with a text-to-image edit model needs a strength in (0, 1]',
    'teacher.sources: mode "img2img" edits real portraits: set sources.path to a folder of images or a Parquet table',
  ]);
  const d = await checkPipeline(config(`{ model: ${sd} }`), ['prompts.set=missing-prompts.yaml']);
  assert.equal(d.problems.length, 1);
  assert.match(d.problems[0], /^prompts\.set: .*missing-prompts\.yaml: cannot read the prompt set \(no such file\)$/);
  await assert.rejects(checkPipeline(config(`{ model: ${sd}, stepz: 3 }`)), (e) => isUserError(e) && /teacher\.stepz: unknown key/.test(e.message));
});

test('img2img sources, image size against the VAE scale factor, per-category thresholds against the prompt set', async () => {
  const sd = join(FIXTURES, 'tiny-sd');
  const portraits = scratch('pairgen-check-portraits-');
  const empty = scratch('pairgen-check-empty-');
  await sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } }).png().toFile(join(portraits, 'a.png'));
  ok(await checkPipeline(config(`{ model: ${sd}, mode: img2img, strength: 0.6, sources: { path: ${portraits} }, height: 64 }`)));
  const r = await checkPipeline(
    config(`{ model: ${sd}, mode: img2img, strength: 0.6, sources: { path: ${empty} }, height: 63, width: 65 }`, '{ category_thresholds: { colour_grade: 0.5, style: 0.4 } }'),
  );
  assert.deepEqual(r.problems, [
    `teacher.sources.path: ${empty} holds no .png/.jpg/.jpeg/.webp images`,
    'teacher.height: 63 is not a multiple of 2, the VAE scale factor of teacher.model (latents are 2x smaller than the image)',
    'teacher.width: 65 is not a multiple of 2, the VAE scale factor of teacher.model (latents are 2x smaller than the image)',
    'identity.category_thresholds.colour_grade: the prompt set has no category "colour_grade" (it has: color_grade, style, lighting)',
  ]);
  const vocab = copyFixture('tiny-sd');
  writeFileSync(join(vocab, 'tokenizer/vocab.json'), '<html>rate limited</html>');
  const v = await checkPipeline(config(`{ model: ${vocab} }`));
  assert.equal(v.problems.length, 1);
  assert.match(v.problems[0], /tokenizer\/vocab\.json: not valid JSON/);
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
