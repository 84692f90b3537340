/**
 * The bug this folder fixes: a phone portrait (a JPEG stored sideways with EXIF orientation 6) used as an
 * img2img source must reach the teacher upright. A real teacher (tiny-sd, SDEdit) runs on three
 * one-image source folders: the phone JPEG, the same picture stored upright (pixels turned by hand, PNG,
 * no EXIF), and the stored pixels as they are (sideways: what ignoring the orientation would give).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { DEFAULT_RUNTIME } from '../../src/onnx/session.ts';
import { withDefaults } from '../../src/teacher/config.ts';
import { createTeacher } from '../../src/teacher/index.ts';
import type { CandidateSpec, GeneratedPair } from '../../src/types.ts';
import { FIXTURES } from '../helpers/fixtures.ts';
import { pattern, rawSharp, rotateClockwise, sidewaysJpeg, storedPixels } from './pictures.ts';

const dir = mkdtempSync(join(tmpdir(), 'pairgen-image-img2img-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const SPEC: CandidateSpec = {
  pairId: 'p0',
  index: 0,
  seed: 11,
  promptId: 'edit-1',
  sampleIndex: 0,
  category: 'style',
  sourcePrompt: 'a portrait photo of a woman',
  instruction: 'make it a watercolour painting',
  targetPrompt: 'a watercolour painting of a woman',
  identityThreshold: null,
  attributes: {},
};

function sourceFolder(name: string, file: string, bytes: Buffer): string {
  const folder = join(dir, name);
  mkdirSync(folder);
  writeFileSync(join(folder, file), bytes);
  return folder;
}

async function img2img(sources: string): Promise<GeneratedPair> {
  const config = withDefaults({ model: join(FIXTURES, 'tiny-sd'), steps: 2, guidance_scale: 4, mode: 'img2img', strength: 0.5, sources: { path: sources, column: 'image' } });
  const teacher = await createTeacher(config, DEFAULT_RUNTIME);
  try {
    const [pair] = await teacher.generate([SPEC]);
    return pair;
  } finally {
    await teacher.close();
  }
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

test('img2img: a JPEG with EXIF orientation 6 reaches the teacher upright', async () => {
  // Stored 120 wide x 96 tall, displayed 96 x 120 (portrait); the teacher draws 64 x 64 (cover, centre crop).
  const phone = await sidewaysJpeg(pattern(120, 96, 7));
  assert.equal((await sharp(phone).metadata()).orientation, 6);
  const stored = await storedPixels(phone);
  const upright = rotateClockwise(stored);

  const fromPhone = await img2img(sourceFolder('phone', 'portrait.jpg', phone));
  const fromUpright = await img2img(sourceFolder('upright', 'portrait.png', await rawSharp(upright).png().toBuffer()));
  const fromSideways = await img2img(sourceFolder('sideways', 'portrait.png', await rawSharp(stored).png().toBuffer()));

  // What the teacher receives: the upright picture, cropped to the output size.
  assert.deepEqual([fromPhone.source.width, fromPhone.source.height], [64, 64]);
  const expected = await rawSharp(upright).resize(64, 64, { fit: 'cover', position: 'centre' }).raw().toBuffer();
  assert.ok(same(fromUpright.source.data, expected), 'the upright file is the reference picture');
  assert.ok(same(fromPhone.source.data, fromUpright.source.data), 'the phone JPEG gives the teacher the upright picture');
  assert.ok(!same(fromPhone.source.data, fromSideways.source.data), 'not the sideways one');
  // What the teacher produces from it: the same edit as from the upright file, not the sideways one's.
  assert.ok(same(fromPhone.edited.data, fromUpright.edited.data), 'the same edit as from the upright picture');
  assert.ok(!same(fromPhone.edited.data, fromSideways.edited.data), 'not the edit of the sideways picture');
  assert.equal(fromPhone.extra?.source_portrait, 0);
});
