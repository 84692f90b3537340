/**
 * The teacher's part of `pairgen check` (src/teacher/check.ts): the fixture teachers pass; broken copies
 * of them (deleted, truncated, foreign files, ONNX graphs with the wrong inputs/outputs built in code) are
 * reported file by file; the mode rules; and the check agrees with what the teacher actually loads, also
 * where the check used to restate the folder rules and drifted (an SDXL-named SD folder).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, cpSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { OnnxBuilder } from '../../src/onnx/builder.ts';
import { DEFAULT_RUNTIME } from '../../src/onnx/session.ts';
import { isUserError } from '../../src/errors.ts';
import { checkTeacher } from '../../src/teacher/check.ts';
import { withDefaults, type TeacherConfig } from '../../src/teacher/config.ts';
import { PairGenerator } from '../../src/teacher/generator.ts';
import { loadDiffusersModel } from '../../src/teacher/model.ts';
import { FIXTURES, tinySdExternal } from '../helpers/fixtures.ts';
import { tempDir } from '../helpers/run-fixture.ts';

const made: string[] = [];
function scratch(prefix: string): string {
  const d = tempDir(prefix);
  made.push(d);
  return d;
}
after(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});
const sd = join(FIXTURES, 'tiny-sd');
const ip2p = join(FIXTURES, 'tiny-sd-ip2p');
const xl = join(FIXTURES, 'tiny-sdxl');
const teacher = (over: Partial<TeacherConfig> = {}) => withDefaults({ model: sd, ...over });

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

async function portraits(): Promise<string> {
  const dir = scratch('pairgen-check-portraits-');
  await sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } }).png().toFile(join(dir, 'a.png'));
  return dir;
}

async function problems(config: TeacherConfig): Promise<string[]> {
  return (await checkTeacher(config)).problems;
}

test('the fixture teachers pass in every mode, with a summary line', async () => {
  assert.deepEqual(await problems(teacher()), []);
  assert.deepEqual(await problems(teacher({ model: xl })), []);
  assert.deepEqual(await problems(teacher({ model: tinySdExternal(), strength: 0.5 })), []);
  const instruct = await checkTeacher(teacher({ edit_model: ip2p, mode: 'instruct' }));
  assert.deepEqual(instruct.problems, []);
  assert.equal(instruct.missing, false);
  assert.match(instruct.summary ?? '', /^teacher: .*tiny-sd \(SD, UNet 4 channels float32\) \+ edit .*tiny-sd-ip2p \(SD, UNet 8 channels float32\), mode instruct, 30 steps$/);
  assert.match((await checkTeacher(teacher({ model: xl }))).summary ?? '', /\(SDXL, UNet 4 channels float32\)/);
});

test('missing files are listed one by one, with their paths', async () => {
  const model = copyFixture('tiny-sd');
  rmSync(join(model, 'unet/model.onnx'));
  rmSync(join(model, 'tokenizer/merges.txt'));
  rmSync(join(model, 'vae_encoder'), { recursive: true });
  const nowhere = join(scratch('pairgen-check-'), 'no-portraits');
  const r = await checkTeacher(teacher({ model, mode: 'img2img', edit_model: ip2p, sources: { path: nowhere, column: 'image' } }));
  assert.deepEqual(r.problems, [
    `teacher.model: missing ${join(model, 'tokenizer/merges.txt')}`,
    `teacher.model: missing ${join(model, 'unet/model.onnx')}`,
    `teacher.sources.path: ${nowhere} does not exist (expected a folder of images or a .parquet file)`,
  ]);
  // img2img with a separate edit model: the source folder needs no vae_encoder, so its absence is fine.
  assert.equal(r.missing, true);
  assert.equal(r.summary, null);

  const external = copyFixture('tiny-sd-external');
  rmSync(join(external, 'unet/model.onnx_data'));
  assert.deepEqual(await problems(teacher({ model: external })), [`teacher.model: missing ${join(external, 'unet/model.onnx_data')} (unet/model.onnx keeps its weights there)`]);

  const sdxl = copyFixture('tiny-sdxl');
  rmSync(join(sdxl, 'tokenizer_2/vocab.json'));
  rmSync(join(sdxl, 'text_encoder_2/model.onnx'));
  assert.deepEqual(await problems(teacher({ model: sdxl })), [`teacher.model: missing ${join(sdxl, 'tokenizer_2/vocab.json')}`, `teacher.model: missing ${join(sdxl, 'text_encoder_2/model.onnx')}`]);

  const none = join(scratch('pairgen-check-'), 'models/none');
  const n = await checkTeacher(teacher({ model: none }));
  assert.deepEqual(n.problems, [`teacher.model: model folder ${none} does not exist (expected a diffusers ONNX export: model_index.json, scheduler/, tokenizer/, text_encoder/, unet/, vae_decoder/)`]);
  assert.equal(n.missing, true);
});

test('wrong ONNX files: inputs/outputs by name and what was found, wrong dtypes, LFS pointers, truncated files, bad JSON', async () => {
  const model = copyFixture('tiny-sd');
  // A VAE decoder with the wrong names, a UNet whose sample is int64: real ONNX graphs built in code.
  const dec = new OnnxBuilder({ opset: 17 });
  dec.output(dec.op('Identity', [dec.input('latents', 'float32', [1, 4, 8, 8])], {}, 'image'), 'float32', [1, 4, 8, 8]);
  writeFileSync(join(model, 'vae_decoder/model.onnx'), dec.toBytes());
  writeFileSync(join(model, 'unet/model.onnx'), int64Unet());
  writeFileSync(join(model, 'text_encoder/model.onnx'), 'version https://git-lfs.github.com/spec/v1\noid sha256:0000\nsize 123\n');
  writeFileSync(join(model, 'scheduler/scheduler_config.json'), '{"beta_start": 0.00085,');
  const te = join(model, 'text_encoder/model.onnx');
  const r = await checkTeacher(teacher({ model }));
  assert.deepEqual(r.problems, [
    `${join(model, 'scheduler/scheduler_config.json')}: not valid JSON (${jsonError('{"beta_start": 0.00085,')})`,
    `teacher.model: ${te} cannot be read as an ONNX model: it is a Git LFS pointer, not the model: fetch the real file (git lfs pull)`,
    `teacher.model: ${join(model, 'unet/model.onnx')}: input sample is int64; expected float32 or float16`,
    `teacher.model: ${join(model, 'vae_decoder/model.onnx')} lacks input(s) latent_sample (it has: latents)`,
    `teacher.model: ${join(model, 'vae_decoder/model.onnx')} lacks output(s) sample (it has: image)`,
  ]);
  assert.equal(r.missing, false);

  const truncated = copyFixture('tiny-sd');
  const bytes = readFileSync(join(truncated, 'unet/model.onnx'));
  writeFileSync(join(truncated, 'unet/model.onnx'), bytes.subarray(0, bytes.length >> 1));
  const t = await problems(teacher({ model: truncated }));
  assert.equal(t.length, 1);
  assert.match(t[0], /unet\/model\.onnx cannot be read as an ONNX model: the file is truncated/);

  const vocab = copyFixture('tiny-sd');
  writeFileSync(join(vocab, 'tokenizer/vocab.json'), '<html>rate limited</html>');
  const v = await problems(teacher({ model: vocab }));
  assert.equal(v.length, 1);
  assert.match(v[0], /tokenizer\/vocab\.json: not valid JSON/);
});

/** A UNet taking an int64 sample (and giving an int64 out_sample): names right, dtype wrong. */
function int64Unet(): Uint8Array {
  const unet = new OnnxBuilder({ opset: 17 });
  const s = unet.input('sample', 'int64', [1, 4, 8, 8]);
  unet.input('timestep', 'int64', [1]);
  unet.input('encoder_hidden_states', 'float32', [1, 77, 32]);
  unet.output(unet.op('Identity', [s], {}, 'out_sample'), 'int64', [1, 4, 8, 8]);
  return unet.toBytes();
}

function jsonError(text: string): string {
  try {
    JSON.parse(text);
  } catch (e) {
    return (e as Error).message;
  }
  return '';
}

test('mode rules: the UNet channels must fit the mode; img2img needs sources; the size must fit the VAE', async () => {
  assert.deepEqual(await problems(teacher({ mode: 'instruct' })), [`teacher.edit_model: mode "instruct" needs an InstructPix2Pix model (a UNet with 8 input channels); ${sd} has 4`]);
  assert.match((await problems(teacher({ model: ip2p }))).join('\n'), /teacher\.model: .*tiny-sd-ip2p is an InstructPix2Pix model .*Put it in teacher\.edit_model/);
  assert.deepEqual(await problems(teacher({ mode: 'img2img' })), [
    'teacher.strength: mode "img2img" with a text-to-image edit model needs a strength in (0, 1]',
    'teacher.sources: mode "img2img" edits real portraits: set sources.path to a folder of images or a Parquet table',
  ]);
  assert.deepEqual(await problems(teacher({ edit_model: ip2p })), [
    'teacher.edit_model: mode "prompt-pair" without strength draws both images from teacher.model; set strength to SDEdit with the edit model, or remove edit_model',
  ]);

  const sources = { path: await portraits(), column: 'image' };
  assert.deepEqual(await problems(teacher({ mode: 'img2img', strength: 0.6, sources, height: 64 })), []);
  const empty = scratch('pairgen-check-empty-');
  const [...sizesThenSources] = await problems(teacher({ mode: 'img2img', strength: 0.6, sources: { path: empty, column: 'image' }, height: 63, width: 65 }));
  const noImages = sizesThenSources.pop()!;
  const sizes = sizesThenSources;
  assert.match(noImages, new RegExp(`^teacher\\.sources\\.path: ${empty} holds no \\S+ images$`)); // the image reader's own message
  assert.deepEqual(sizes, [
    'teacher.height: 63 is not a multiple of 2, the VAE scale factor of teacher.model (latents are 2x smaller than the image)',
    'teacher.width: 65 is not a multiple of 2, the VAE scale factor of teacher.model (latents are 2x smaller than the image)',
  ]);
});

/** null when the teacher loads (and is closed again), else its error message. */
async function loads(config: TeacherConfig): Promise<string | null> {
  try {
    const generator = await PairGenerator.create(config, DEFAULT_RUNTIME);
    await generator.close();
    return null;
  } catch (e) {
    if (!isUserError(e)) throw e;
    return e.message;
  }
}

test('the check agrees with what the teacher loads, where the check used to restate the folder rules and drifted', async () => {
  // An SD folder whose model_index.json names an XL pipeline: the teacher recognises SDXL by
  // text_encoder_2/ and loads it as SD. The old check recognised SDXL by the class name too and
  // reported a missing tokenizer_2/ and text_encoder_2/ for a folder that loads fine.
  const named = copyFixture('tiny-sd');
  const index = JSON.parse(readFileSync(join(named, 'model_index.json'), 'utf8'));
  writeFileSync(join(named, 'model_index.json'), JSON.stringify({ ...index, _class_name: 'StableDiffusionXLPipeline' }));
  const model = await loadDiffusersModel(named, DEFAULT_RUNTIME, { vaeEncoder: false, vaeDecoder: true });
  assert.equal(model.kind, 'sd');
  await model.release();
  const r = await checkTeacher(teacher({ model: named }));
  assert.deepEqual(r.problems, []);
  assert.match(r.summary ?? '', /\(SD, UNet 4 channels float32\)/);

  const int64 = copyFixture('tiny-sd');
  writeFileSync(join(int64, 'unet/model.onnx'), int64Unet());
  const noSize = copyFixture('tiny-sd');
  rmSync(join(noSize, 'unet/config.json'));
  const external = copyFixture('tiny-sd-external');
  rmSync(join(external, 'vae_decoder/model.onnx_data'));
  const sources = { path: await portraits(), column: 'image' };
  const cases: [string, TeacherConfig, RegExp | null][] = [
    ['an SDXL-named SD folder', teacher({ model: named }), null],
    ['SD, prompt-pair', teacher({ height: 64, width: 64 }), null],
    ['SDXL', teacher({ model: xl }), null],
    ['instruct', teacher({ edit_model: ip2p, mode: 'instruct' }), null],
    ['img2img with an InstructPix2Pix edit model', teacher({ edit_model: ip2p, mode: 'img2img', sources }), null],
    // The teacher refuses an InstructPix2Pix teacher.model in img2img too (the old check let it pass).
    ['img2img with an InstructPix2Pix teacher.model', teacher({ model: ip2p, mode: 'img2img', sources }), /teacher\.model: .*tiny-sd-ip2p is an InstructPix2Pix model/],
    // Without height/width the teacher needs the UNet's sample_size (the old check did not look).
    ['no size and no unet/config.json', teacher({ model: noSize }), /^teacher\.height: .*\/unet\/config\.json has no sample_size; set teacher\.height and teacher\.width$/],
    // The old loader opened this UNet and failed only when it ran.
    ['an int64 UNet sample', teacher({ model: int64 }), /unet\/model\.onnx: input sample is int64; expected float32 or float16/],
    ['an external weight file missing', teacher({ model: external }), /vae_decoder\/model\.onnx_data/],
  ];
  for (const [what, config, problem] of cases) {
    const checked = await problems(config);
    const loaded = await loads(config);
    if (problem === null) {
      assert.deepEqual(checked, [], what);
      assert.equal(loaded, null, what);
    } else {
      assert.equal(checked.length, 1, `${what}: ${checked.join('\n')}`);
      assert.match(checked[0], problem, what);
      assert.match(loaded ?? 'it loaded', problem, what);
    }
  }
});

test('schedulers, image size and the pixel limit: what plan and work refuse, check reports', async () => {
  const problems = async (over: Partial<TeacherConfig>) => (await checkTeacher(teacher(over))).problems;
  assert.deepEqual(await problems({ scheduler: 'FastScheduler' }), [
    'teacher.scheduler: unknown scheduler class "FastScheduler"; known: DDIMScheduler, EulerDiscreteScheduler, EulerAncestralDiscreteScheduler, DPMSolverMultistepScheduler, LCMScheduler, PNDMScheduler',
  ]);
  assert.deepEqual(await problems({ scheduler: 'DDIMScheduler' }), []);
  // The model folder's own scheduler class counts too.
  const unipc = copyFixture('tiny-sd');
  const schedulerFile = join(unipc, 'scheduler/scheduler_config.json');
  writeFileSync(schedulerFile, JSON.stringify({ ...JSON.parse(readFileSync(schedulerFile, 'utf8')), _class_name: 'UniPCMultistepScheduler' }));
  const [own] = await problems({ model: unipc });
  assert.match(own, /^teacher\.model: scheduler config .*scheduler_config\.json: unknown scheduler class "UniPCMultistepScheduler"; known: /);
  assert.deepEqual(await problems({ model: unipc, scheduler: 'EulerDiscreteScheduler' }), [], 'teacher.scheduler replaces the folder\'s class');

  assert.deepEqual(await problems({ height: 2048, width: 2048 }), []);
  assert.deepEqual(await problems({ height: 2048, width: 2050 }), [
    'teacher.height x teacher.width: 2048 x 2050 is 4198400 pixels, more than teacher.max_pixels (4194304); allowed: each side 8-16384 pixels and height x width <= 4194304',
  ]);
  assert.deepEqual(await problems({ height: 2048, width: 2050, max_pixels: 2048 * 2050 }), []);
  assert.match((await problems({ height: 64, max_pixels: 4000 }))[0], /^teacher\.height x teacher\.width: 64 x 64 is 4096 pixels, more than teacher\.max_pixels \(4000\)/);
});

test('a model path that is a file; img2img sources are decoded, not only listed', async () => {
  const dir = scratch('pairgen-check-file-');
  const file = join(dir, 'model.onnx');
  writeFileSync(file, 'x');
  assert.deepEqual((await checkTeacher(teacher({ model: file }))).problems, [`teacher.model: ${file} is a file, expected a folder (a diffusers ONNX export)`]);
  const sources = scratch('pairgen-check-sources-');
  writeFileSync(join(sources, 'a.png'), '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>');
  const r = await checkTeacher(teacher({ mode: 'img2img', strength: 0.5, sources: { path: sources, column: 'image' } }));
  assert.equal(r.problems.length, 1);
  assert.match(r.problems[0], /^cannot read image .*a\.png: SVG is not a supported format/);
});
