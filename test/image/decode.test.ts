/**
 * The one decode policy (src/image/decode.ts): EXIF orientation applied, truncated files refused,
 * only JPEG/PNG/WebP/TIFF/GIF accepted (told by their first bytes: SVG never reaches sharp), a pixel
 * limit, and every refusal a UserError naming the file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { UserError } from '../../src/errors.ts';
import { crc32 } from 'node:zlib';
import { decodeImage, decodeImageCover, isImageFileName } from '../../src/image/index.ts';
import { MAX_INPUT_PIXELS } from '../../src/image/decode.ts';
import { pattern, rawSharp, rotateClockwise, sidewaysJpeg, storedPixels } from './pictures.ts';

const dir = mkdtempSync(join(tmpdir(), 'pairgen-image-decode-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const userError = (pattern: RegExp) => (e: unknown) => e instanceof UserError && pattern.test(e.message);

test('EXIF orientation 6: decoded upright, dimensions swapped, every pixel where the display puts it', async () => {
  const jpeg = await sidewaysJpeg(pattern(80, 48));
  assert.equal((await sharp(jpeg).metadata()).orientation, 6);
  const file = join(dir, 'phone.jpg');
  writeFileSync(file, jpeg);
  const stored = await storedPixels(jpeg);
  assert.deepEqual([stored.width, stored.height], [80, 48]);
  const upright = rotateClockwise(stored);

  for (const input of [file, jpeg]) {
    const img = await decodeImage(input, 'phone.jpg');
    assert.deepEqual([img.width, img.height], [48, 80]);
    assert.deepEqual(Buffer.from(img.data), Buffer.from(upright.data));
  }
  // The cover decode crops the upright image, not the stored one.
  const cover = await decodeImageCover(file, 32, 32);
  const expected = await rawSharp(upright).resize(32, 32, { fit: 'cover', position: 'centre' }).raw().toBuffer();
  assert.deepEqual([cover.width, cover.height], [32, 32]);
  assert.deepEqual(Buffer.from(cover.data), expected);
  const sideways = await rawSharp(stored).resize(32, 32, { fit: 'cover', position: 'centre' }).raw().toBuffer();
  assert.notDeepEqual(Buffer.from(cover.data), sideways);
});

test('every listed format decodes to 8-bit RGB; alpha is dropped', async () => {
  const img = rawSharp(pattern(24, 16)).ensureAlpha(0.5);
  const files: Record<string, Buffer> = {
    'a.jpg': await img.clone().jpeg().toBuffer(),
    'b.PNG': await img.clone().png().toBuffer(),
    'c.webp': await img.clone().webp().toBuffer(),
    'd.tif': await img.clone().tiff().toBuffer(),
    'e.gif': await img.clone().gif().toBuffer(),
  };
  for (const [name, bytes] of Object.entries(files)) {
    writeFileSync(join(dir, name), bytes);
    assert.ok(isImageFileName(name), name);
    const out = await decodeImage(join(dir, name));
    assert.deepEqual([out.width, out.height, out.data.length], [24, 16, 24 * 16 * 3], name);
  }
  for (const name of ['x.svg', 'x.avif', 'x.txt', 'jpg']) assert.equal(isImageFileName(name), false, name);
});

test('truncated JPEG: refused, by both decodes, naming the file', async () => {
  const whole = await rawSharp(pattern(64, 64)).jpeg().toBuffer();
  const file = join(dir, 'cut-short.jpg');
  writeFileSync(file, whole.subarray(0, Math.floor(whole.length * 0.6)));
  const truncated = userError(/^cannot read image .*cut-short\.jpg: .*premature end.*\(expected a JPEG, PNG, WebP, TIFF or GIF file\)$/i);
  await assert.rejects(decodeImage(file), truncated);
  await assert.rejects(decodeImageCover(file, 32, 32), truncated);
  await assert.rejects(decodeImage(whole.subarray(0, Math.floor(whole.length * 0.6)), 'table.parquet row 3 image'), userError(/cannot read image table\.parquet row 3 image: /));
  // The whole file decodes: it is the cut that is refused.
  assert.equal((await decodeImage(whole)).width, 64);
});

test('not an image, an unsupported format, a missing file: UserErrors naming the file', async () => {
  writeFileSync(join(dir, 'notes.jpg'), 'hello, not an image');
  await assert.rejects(decodeImage(join(dir, 'notes.jpg')), userError(/^cannot read image .*notes\.jpg: .*unsupported image format/));
  // sharp can render SVG, but it is not one of the formats pairgen reads.
  writeFileSync(join(dir, 'drawing.svg'), '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16"><rect width="16" height="16" fill="red"/></svg>');
  await assert.rejects(decodeImage(join(dir, 'drawing.svg')), userError(/^cannot read image .*drawing\.svg: SVG is not a supported format \(expected a JPEG, PNG, WebP, TIFF or GIF file\)$/));
  await assert.rejects(decodeImageCover(join(dir, 'drawing.svg'), 8, 8), userError(/drawing\.svg: SVG is not a supported format/));
  await assert.rejects(decodeImage(join(dir, 'missing.png')), userError(/^cannot read image .*missing\.png: no such file/));
  await assert.rejects(decodeImage(new Uint8Array(10)), userError(/^cannot read image image: /));
});

test('SVG is refused by its first bytes whatever its name, before sharp sees it: an external reference is never loaded', async () => {
  // librsvg would resolve this href; the decoder must refuse the file before any loader runs.
  const secret = join(dir, 'secret.png');
  writeFileSync(secret, await rawSharp(pattern(8, 8)).png().toBuffer());
  const svg = `<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><image href="file://${secret}" width="8" height="8"/></svg>`;
  for (const name of ['disguised.png', 'disguised.jpg', 'disguised.gif']) {
    writeFileSync(join(dir, name), svg);
    await assert.rejects(decodeImage(join(dir, name)), userError(new RegExp(`${name}: SVG is not a supported format`)));
  }
  await assert.rejects(decodeImage(Buffer.from(svg), 'table.parquet row 0 image'), userError(/row 0 image: SVG is not a supported format/));
  // A file that starts like one format and is another is refused too (the sniffed and decoded formats must agree).
  const png = await rawSharp(pattern(8, 8)).png().toBuffer();
  await assert.rejects(decodeImage(Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), png])), userError(/cannot read image image: /));
});

test(`an image over MAX_INPUT_PIXELS (${MAX_INPUT_PIXELS}) is refused before its pixels are decoded`, async () => {
  // A tiny PNG whose header claims 20000 x 20000 pixels (the IHDR chunk rewritten, its CRC recomputed).
  const png = Buffer.from(await rawSharp(pattern(8, 8)).png().toBuffer());
  png.writeUInt32BE(20000, 16);
  png.writeUInt32BE(20000, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
  await assert.rejects(decodeImage(png, 'huge.png'), userError(/cannot read image huge\.png: .*pixel limit/i));
});

test('GIF: the first frame', async () => {
  const frames = Buffer.concat([pattern(8, 8, 1).data, pattern(8, 8, 2).data]);
  const gif = await sharp(frames, { raw: { width: 8, height: 16, channels: 3, pageHeight: 8 } }).gif().toBuffer();
  assert.equal((await sharp(gif).metadata()).pages, 2);
  const img = await decodeImage(gif);
  assert.deepEqual([img.width, img.height], [8, 8]);
});
