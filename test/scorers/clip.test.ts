// The CLIP text-fidelity scorer (src/scorers/clip.ts) on test/fixtures/clip-tiny: a tiny randomly
// initialised CLIP exported to ONNX by scripts/make-clip-fixture.py, with transformers' own token ids,
// pixel values, embeddings and InstructPix2Pix's four numbers in reference.json. Every layout the scorer
// reads (the towers at the root or under onnx/, Optimum's whole model.onnx) must give transformers' numbers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_RUNTIME } from '../../src/onnx/session.ts';
import { decodeImage } from '../../src/image/index.ts';
import { isUserError } from '../../src/errors.ts';
import { CLIP_SCORE_NAMES, clipModelFiles, clipPixels, openClipScorer, parsePreprocess, type ClipPairInput, type ClipScorer } from '../../src/scorers/clip.ts';
import type { RgbImage } from '../../src/types.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/clip-tiny', import.meta.url));
const TOKENIZER_FILES = ['vocab.json', 'merges.txt', 'tokenizer_config.json', 'config.json', 'preprocessor_config.json'];

interface Reference {
  tokens: { text: string; ids: number[] }[];
  texts: { prompt: string; text_embeds: number[] }[];
  images: { name: string; pixel_values: number[]; image_embeds: number[] }[];
  pairs: { source: string; edited: string; sourcePrompt: string; targetPrompt: string; scores: Record<string, number> }[];
}
const reference = JSON.parse(readFileSync(join(FIXTURE, 'reference.json'), 'utf8')) as Reference;
const images: Record<string, RgbImage> = {};
for (const { name } of reference.images) images[name] = await decodeImage(join(FIXTURE, 'images', `${name}.png`));

const scratch = mkdtempSync(join(tmpdir(), 'pairgen-clip-'));
test.after(() => rmSync(scratch, { recursive: true, force: true }));

/** A model folder in scratch/ holding `files` of the fixture (fixture path → path in the folder). */
function folder(name: string, files: Record<string, string>): string {
  const dir = join(scratch, name);
  for (const [from, to] of Object.entries(files)) {
    mkdirSync(join(dir, to, '..'), { recursive: true });
    copyFileSync(join(FIXTURE, from), join(dir, to));
  }
  return dir;
}
const tokenizerFiles = Object.fromEntries(TOKENIZER_FILES.map((f) => [f, f]));
const LAYOUTS = {
  'towers at the root': FIXTURE,
  'towers under onnx/': folder('under-onnx', { ...tokenizerFiles, 'text_model.onnx': 'onnx/text_model.onnx', 'vision_model.onnx': 'onnx/vision_model.onnx' }),
  'whole model.onnx (optimum-cli)': folder('whole', { ...tokenizerFiles, 'model.onnx': 'model.onnx' }),
};

const unit = (v: ArrayLike<number>) => {
  const n = Math.hypot(...Array.from(v));
  return Array.from(v, (x) => x / n);
};

/** ‖a − b‖ / ‖b‖. */
function vectorError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, n = 0;
  for (let i = 0; i < b.length; i++) {
    d += (a[i] - b[i]) ** 2;
    n += b[i] ** 2;
  }
  return Math.sqrt(d / n);
}

const pairInput = (p: Reference['pairs'][number]): ClipPairInput => ({
  source: images[p.source], edited: images[p.edited], faces: { sourceFace: null, editedFace: null },
  instruction: '', category: '', sourcePrompt: p.sourcePrompt, targetPrompt: p.targetPrompt,
});

test('token ids are transformers\' CLIPTokenizer\'s (padded to the model length, long prompts truncated)', async () => {
  const scorer = await openClipScorer(FIXTURE, DEFAULT_RUNTIME);
  try {
    assert.equal(scorer.sequenceLength, 24);
    for (const { text, ids } of reference.tokens) assert.deepEqual(scorer.tokenizer.encode(text, { padding: 'max_length', maxLength: 24 }).ids, ids, text);
  } finally {
    await scorer.close();
  }
});

test('pixel values are CLIPImageProcessor\'s (Pillow bicubic resize of the shortest side, centre crop, the config\'s mean and std)', async (t) => {
  const scorer = await openClipScorer(FIXTURE, DEFAULT_RUNTIME);
  await scorer.close();
  assert.deepEqual(scorer.preprocess.mean, [0.45, 0.42, 0.4]);
  let worst = 0;
  for (const { name, pixel_values } of reference.images) {
    const { data, width, height } = clipPixels(images[name], scorer.preprocess);
    assert.deepEqual([width, height, data.length], [32, 32, pixel_values.length]);
    data.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - pixel_values[i]))));
  }
  t.diagnostic(`worst pixel difference ${worst.toExponential(2)} (one 8-bit level is ${(1 / 255 / 0.26).toFixed(4)})`);
  assert.ok(worst < 1e-5, `worst pixel difference ${worst}`);
});

test('preprocessor_config.json: the old form (size: 224, as openai/clip-vit-base-patch32 has it) and the defaults when it is absent', () => {
  const openai = { mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.2613026, 0.2757771] };
  const old = parsePreprocess({ size: 224, crop_size: 224, do_center_crop: true, image_mean: openai.mean, image_std: openai.std, resample: 3 }, 336, 'p.json');
  const none = parsePreprocess(null, 224, 'p.json');
  for (const p of [old, none]) {
    assert.deepEqual(p, { resize: { shortestEdge: 224 }, crop: { width: 224, height: 224 }, filter: 'bicubic', rescale: 1 / 255, ...openai });
  }
  assert.deepEqual(parsePreprocess({ size: { height: 64, width: 48 }, do_center_crop: false, resample: 2 }, 224, 'p.json').resize, { height: 64, width: 48 });
  assert.throws(() => parsePreprocess({ resample: 1 }, 224, 'p.json'), (e) => isUserError(e) && /"resample" in p\.json must be 2 \(bilinear\) or 3 \(bicubic\), got 1/.test(e.message));
});

for (const [layout, dir] of Object.entries(LAYOUTS)) {
  test(`${layout}: embeddings and InstructPix2Pix's four numbers match transformers`, async (t) => {
    const scorer = await openClipScorer(dir, DEFAULT_RUNTIME);
    // The whole model returns unit-length embeddings (CLIPModel normalises them); the towers return them as projected.
    const relativeError = (a: ArrayLike<number>, b: ArrayLike<number>) => (scorer.models.length === 1 ? vectorError(a, unit(b)) : vectorError(a, b));
    try {
      assert.deepEqual(scorer.models, clipModelFiles(dir));
      assert.equal(scorer.models.length, layout.startsWith('whole') ? 1 : 2);
      let worstEmbedding = 0, worstScore = 0;
      const texts = await scorer.embedTexts(reference.texts.map((r) => r.prompt));
      reference.texts.forEach((r, i) => (worstEmbedding = Math.max(worstEmbedding, relativeError(texts[i], r.text_embeds))));
      const embeds = await scorer.embedImages(reference.images.map((r) => images[r.name]));
      reference.images.forEach((r, i) => (worstEmbedding = Math.max(worstEmbedding, relativeError(embeds[i], r.image_embeds))));
      for (const p of reference.pairs) {
        const { scores, texts: strings } = await scorer.score(pairInput(p));
        assert.deepEqual(Object.keys(scores), [...CLIP_SCORE_NAMES]);
        assert.deepEqual(strings, {});
        for (const name of CLIP_SCORE_NAMES) worstScore = Math.max(worstScore, Math.abs(scores[name]! - p.scores[name]) / Math.abs(p.scores[name]));
      }
      t.diagnostic(`worst relative error: embeddings ${worstEmbedding.toExponential(2)}, the four numbers ${worstScore.toExponential(2)}`);
      assert.ok(worstEmbedding < 1e-4, `embeddings: ${worstEmbedding}`);
      assert.ok(worstScore < 1e-4, `scores: ${worstScore}`);
    } finally {
      await scorer.close();
    }
  });
}

test('an unchanged pair: image similarity 1 and no direction; an empty caption gives null for what needs it', async () => {
  const scorer = await openClipScorer(FIXTURE, DEFAULT_RUNTIME);
  try {
    const same = await scorer.score({ ...pairInput(reference.pairs[0]), edited: images.wide });
    assert.ok(Math.abs(same.scores['clip.image']! - 1) < 1e-6);
    assert.equal(same.scores['clip.directional'], 0);
    assert.ok(Math.abs(same.scores['clip.source_caption']! - reference.pairs[0].scores['clip.source_caption']) < 1e-4);
    const noCaption = await scorer.score({ ...pairInput(reference.pairs[0]), sourcePrompt: ' ' });
    assert.equal(noCaption.scores['clip.source_caption'], null);
    assert.equal(noCaption.scores['clip.directional'], null);
    assert.ok(Math.abs(noCaption.scores['clip.edited_caption']! - reference.pairs[0].scores['clip.edited_caption']) < 1e-4);
  } finally {
    await scorer.close();
  }
});

test('the same inputs give the same bytes, twice and from a second session', async () => {
  const bytes = async (scorer: ClipScorer) => {
    const all: number[] = [];
    for (const p of reference.pairs) all.push(...Object.values((await scorer.score(pairInput(p))).scores).map(Number));
    return Buffer.from(Float64Array.from(all).buffer);
  };
  const first = await openClipScorer(FIXTURE, DEFAULT_RUNTIME);
  const second = await openClipScorer(FIXTURE, DEFAULT_RUNTIME);
  try {
    const a = await bytes(first);
    assert.ok(a.equals(await bytes(first)));
    assert.ok(a.equals(await bytes(second)));
  } finally {
    await Promise.all([first.close(), second.close()]);
  }
});

test('a missing or broken model folder is a user error naming the file', async () => {
  const broken = (name: string, files: Record<string, string>, write?: [string, string | Buffer]) => {
    const dir = folder(name, files);
    if (write) writeFileSync(join(dir, write[0]), write[1]);
    return dir;
  };
  const towers = { ...tokenizerFiles, 'text_model.onnx': 'text_model.onnx', 'vision_model.onnx': 'vision_model.onnx' };
  const withoutVocab = Object.fromEntries(Object.entries(towers).filter(([from]) => from !== 'vocab.json'));
  const cases: [string, RegExp][] = [
    [join(scratch, 'nowhere'), /CLIP model: folder .*nowhere not found/],
    [broken('no-model', tokenizerFiles), /no-model has neither text_model\.onnx \+ vision_model\.onnx .* nor model\.onnx/],
    [broken('no-vocab', withoutVocab), /no-vocab\/vocab\.json/],
    [broken('bad-onnx', towers, ['text_model.onnx', readFileSync(join(FIXTURE, 'text_model.onnx')).subarray(0, 5000)]), /cannot load ONNX model .*bad-onnx\/text_model\.onnx/],
    [broken('swapped', towers, ['text_model.onnx', readFileSync(join(FIXTURE, 'vision_model.onnx'))]), /swapped\/text_model\.onnx has no input input_ids .*CLIPTextModelWithProjection/],
    [broken('bad-json', towers, ['preprocessor_config.json', '{"size": ']), /bad-json\/preprocessor_config\.json is not valid JSON/],
    [broken('bad-mean', towers, ['preprocessor_config.json', '{"image_mean": [0.5, 0.5]}']), /"image_mean" in .*bad-mean\/preprocessor_config\.json must be three numbers/],
  ];
  for (const [dir, message] of cases) {
    await assert.rejects(openClipScorer(dir, DEFAULT_RUNTIME), (e) => isUserError(e) && message.test(e.message), dir);
  }
});
