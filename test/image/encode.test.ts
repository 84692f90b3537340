/**
 * The shard image encoder on a real photo (a face-api demo picture from node_modules): PNG with adaptive
 * filtering and lossless WebP give back the exact pixels, same input → same bytes, one quality default
 * shared by the code, the config schema and docs/config.md, and bad output combinations refused at load
 * (exit 2, one line, through the real CLI).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { DEFAULT_QUALITY, PNG_COMPRESSION_LEVEL, encodeImage, imageSettingsFor } from '../../src/image/index.ts';
import { loadPipelineConfig, pipelineConfigSchema } from '../../src/config/index.ts';
import type { RgbImage } from '../../src/types.ts';
import { BIN, REPO, tempDir } from '../helpers/run-fixture.ts';

const PHOTO = join(dirname(createRequire(import.meta.url).resolve('@vladmandic/face-api/package.json')), 'demo', 'sample1.jpg');

async function photo(size = 256): Promise<RgbImage> {
  const { data, info } = await sharp(PHOTO).removeAlpha().resize(size, size, { fit: 'cover' }).raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data) };
}

async function pixels(bytes: Uint8Array): Promise<Buffer> {
  return sharp(bytes).removeAlpha().raw().toBuffer();
}

test('PNG: the exact pixels, adaptive filtering makes it smaller than the same level without, settings stated', async () => {
  const img = await photo();
  const png = await encodeImage(img, { format: 'png' });
  assert.equal((await sharp(png).metadata()).format, 'png');
  assert.ok((await pixels(png)).equals(Buffer.from(img.data)), 'PNG must be lossless');
  const unfiltered = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).png({ compressionLevel: PNG_COMPRESSION_LEVEL }).toBuffer();
  assert.ok(png.length < unfiltered.length * 0.9, `adaptive filtering: ${png.length} B, without: ${unfiltered.length} B`);
  assert.deepEqual(imageSettingsFor({ image_format: 'png', quality: 80 }), { format: 'png', png_compression_level: PNG_COMPRESSION_LEVEL, adaptive_filtering: true });
});

test('lossless WebP: the exact pixels, fewer bytes than PNG; lossy WebP and JPEG use the quality', async () => {
  const img = await photo();
  const lossless = await encodeImage(img, { format: 'webp', lossless: true });
  assert.equal((await sharp(lossless).metadata()).format, 'webp');
  assert.ok((await pixels(lossless)).equals(Buffer.from(img.data)), 'lossless WebP must give back the pixels');
  assert.ok(lossless.length < (await encodeImage(img, { format: 'png' })).length);
  // The output config section is accepted as it is, and only the settings that apply are stated.
  assert.ok(Buffer.from(await encodeImage(img, { image_format: 'webp', quality: 10, lossless: true })).equals(Buffer.from(lossless)));
  assert.deepEqual(imageSettingsFor({ image_format: 'webp', quality: 80, lossless: true }), { format: 'webp', lossless: true });
  assert.deepEqual(imageSettingsFor({ image_format: 'webp', quality: 80, lossless: false }), { format: 'webp', quality: 80 });
  assert.deepEqual(imageSettingsFor({ image_format: 'jpeg', quality: 80 }), { format: 'jpeg', quality: 80, chroma_subsampling: '4:4:4' });
  assert.deepEqual(imageSettingsFor({ image_format: 'jpeg' }), { format: 'jpeg', quality: DEFAULT_QUALITY, chroma_subsampling: '4:4:4' });
  const lossy = await encodeImage(img, { format: 'webp', quality: 80 });
  assert.ok(!(await pixels(lossy)).equals(Buffer.from(img.data)), 'quality 80 WebP should be lossy');
});

test('same input → same bytes, for every format', async () => {
  const img = await photo(128);
  for (const enc of [{ format: 'png' }, { format: 'webp', lossless: true }, { format: 'webp', quality: 90 }, { format: 'jpeg' }] as const) {
    const a = await encodeImage(img, enc);
    const b = await encodeImage({ ...img, data: new Uint8Array(img.data) }, enc);
    assert.ok(Buffer.from(a).equals(Buffer.from(b)), `${JSON.stringify(enc)}: two encodings differ`);
  }
});

test('one quality default: the encoder, the config schema and docs/config.md', async () => {
  const img = await photo(128);
  const byDefault = Buffer.from(await encodeImage(img, { format: 'jpeg' }));
  assert.ok(byDefault.equals(Buffer.from(await encodeImage(img, { format: 'jpeg', quality: DEFAULT_QUALITY }))));
  assert.ok(!byDefault.equals(Buffer.from(await encodeImage(img, { format: 'jpeg', quality: DEFAULT_QUALITY - 3 }))), 'the quality must change the bytes');
  assert.equal(pipelineConfigSchema.properties.output.properties.quality.default, DEFAULT_QUALITY);
  const dir = tempDir('pairgen-encode-');
  const file = join(dir, 'p.yaml');
  writeFileSync(file, 'prompts:\n  set: prompts.yaml\nteacher:\n  model: models/sd\n');
  const { output } = loadPipelineConfig(file).config;
  assert.deepEqual({ quality: output.quality, lossless: output.lossless, license: output.license, language: output.language }, { quality: DEFAULT_QUALITY, lossless: false, license: null, language: ['en'] });
  const docs = readFileSync(join(REPO, 'docs/config.md'), 'utf8');
  const row = docs.split('\n').find((l) => l.includes('`output.quality`'));
  assert.ok(row?.includes(String(DEFAULT_QUALITY)), `docs/config.md should state quality ${DEFAULT_QUALITY}: ${row}`);
});

test('bad output combinations → exit 2, one line naming the key (through pairgen check)', () => {
  const dir = tempDir('pairgen-encode-');
  const base = 'prompts:\n  set: prompts.yaml\nteacher:\n  model: models/sd\noutput:\n';
  const cases: [string, string[], RegExp][] = [
    ['  image_format: png\n  lossless: true\n', [], /p\.yaml:7:3: output\.lossless: only image_format webp has a lossless mode/],
    ['  lossless: true\n', [], /output\.lossless: only image_format webp/], // jpeg by default
    ['  image_format: webp\n', ['--set', 'output.image_format=jpeg', '--set', 'output.lossless=true'], /p\.yaml \(from --set\): output\.lossless: only image_format webp/],
    ['  license: Apache License 2.0\n', [], /output\.license: expected one license id such as apache-2\.0/],
    ['  language: [en, English]\n', [], /output\.language\.1: expected a language code such as en, fr or pt-BR, got string "English"/],
    ['  language: []\n', [], /output\.language: must NOT have fewer than 1 items/],
  ];
  for (const [yaml, sets, message] of cases) {
    const file = join(dir, 'p.yaml');
    writeFileSync(file, base + yaml);
    const r = spawnSync(process.execPath, [BIN, 'check', file, ...sets], { encoding: 'utf8', cwd: dir });
    assert.equal(r.status, 2, `${yaml}: exit ${r.status}\n${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  // A valid combination loads.
  writeFileSync(join(dir, 'ok.yaml'), base + '  image_format: webp\n  lossless: true\n  license: cc-by-4.0\n  language: [en, pt-BR]\n');
  const { output } = loadPipelineConfig(join(dir, 'ok.yaml')).config;
  assert.deepEqual([output.lossless, output.license, output.language], [true, 'cc-by-4.0', ['en', 'pt-BR']]);
});
