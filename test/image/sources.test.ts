/**
 * The one reader of "a folder of images or a Parquet column" (src/image/sources.ts), used by the
 * teacher's img2img sources and by `identity calibrate`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { UserError } from '../../src/errors.ts';
import { decodeImage, ImageSources, type SourceImage } from '../../src/image/index.ts';
import { pattern, rawSharp, sidewaysJpeg } from './pictures.ts';

const dir = mkdtempSync(join(tmpdir(), 'pairgen-image-sources-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const userError = (pattern: RegExp) => (e: unknown) => e instanceof UserError && pattern.test(e.message);
const TEACHER_KEYS = { keys: { path: 'teacher.sources.path', column: 'teacher.sources.column' } };

async function collect(sources: ImageSources): Promise<SourceImage[]> {
  const out: SourceImage[] = [];
  for await (const s of sources.all()) out.push(s);
  return out;
}

const png = (seed: number) => rawSharp(pattern(20, 12, seed)).png().toBuffer();

test('a folder: its image files sorted by name, other files ignored', async () => {
  const folder = join(dir, 'folder');
  mkdirSync(folder);
  writeFileSync(join(folder, 'b.png'), await png(1));
  writeFileSync(join(folder, 'a.JPG'), await rawSharp(pattern(20, 12, 2)).jpeg().toBuffer());
  writeFileSync(join(folder, 'c.tif'), await rawSharp(pattern(20, 12, 3)).tiff().toBuffer());
  writeFileSync(join(folder, 'notes.txt'), 'not a picture');
  writeFileSync(join(folder, 'd.svg'), '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>');

  const sources = await ImageSources.open(folder, { columns: ['image'] });
  assert.equal(sources.count, 3);
  assert.equal(sources.column, null);
  assert.deepEqual(await sources.get(1), { name: 'b.png', label: join(folder, 'b.png'), input: join(folder, 'b.png') });
  assert.deepEqual((await collect(sources)).map((s) => s.name), ['a.JPG', 'b.png', 'c.tif']);
  for (const s of await collect(sources)) assert.equal((await decodeImage(s.input, s.label)).width, 20);
});

test('a Parquet binary column, chosen from the candidates in order', async () => {
  const images = [await png(1), await png(2), await png(3)].map((b) => new Uint8Array(b));
  const table = join(dir, 'binary.parquet');
  writeFileSync(table, Buffer.from(parquetWriteBuffer({
    columnData: [
      { name: 'caption', data: ['one', 'two', 'three'], type: 'STRING' },
      { name: 'edited_image', data: images.slice().reverse(), type: 'BYTE_ARRAY' },
      { name: 'image', data: images, type: 'BYTE_ARRAY' },
    ],
  })));
  const sources = await ImageSources.open(table, { columns: ['source_image', 'image', 'edited_image'] });
  assert.equal(sources.count, 3);
  assert.equal(sources.column, 'image');
  const second = await sources.get(1);
  assert.deepEqual([second.name, second.label], ['image[1]', `${table} row 1 image`]);
  assert.deepEqual(Buffer.from(second.input as Uint8Array), Buffer.from(images[1]));
  assert.deepEqual((await collect(sources)).map((s) => Buffer.from(s.input as Uint8Array)), images.map((b) => Buffer.from(b)));
  assert.equal((await ImageSources.open(table, { columns: ['edited_image'] })).column, 'edited_image');
});

test('a Parquet {bytes, path} struct column (Hugging Face Image): rows read one by one or all, empty cells', async () => {
  const folder = join(dir, 'struct-in');
  mkdirSync(folder);
  const phone = await sidewaysJpeg(pattern(40, 24));
  writeFileSync(join(folder, 'a.png'), await png(4));
  writeFileSync(join(folder, 'b.jpg'), phone);
  const table = join(dir, 'struct.parquet');
  const db = await (await DuckDBInstance.create()).connect();
  await db.run(`COPY (
    SELECT * FROM (SELECT {'bytes': content, 'path': filename} AS source_image, filename AS k FROM read_blob('${folder}/*'))
    UNION ALL SELECT NULL, '${folder}/c' ORDER BY k
  ) TO '${table}' (FORMAT parquet)`);
  db.closeSync();

  const sources = await ImageSources.open(table, { columns: ['source_image'], ...TEACHER_KEYS });
  assert.equal(sources.count, 3);
  assert.deepEqual(Buffer.from((await sources.get(1)).input as Uint8Array), phone);
  // The phone portrait in the table decodes upright like a file would.
  const phoneImage = await decodeImage((await sources.get(1)).input, (await sources.get(1)).label);
  assert.deepEqual([phoneImage.width, phoneImage.height], [24, 40]);
  // Asked for by number, an empty cell is an error naming the row; read whole, it is skipped.
  await assert.rejects(sources.get(2), userError(new RegExp(`^teacher\\.sources\\.path: ${table} row 2 column "source_image" holds no image bytes \\(expected binary or \\{bytes, path\\}\\)$`)));
  assert.deepEqual((await collect(sources)).map((s) => s.name), ['source_image[0]', 'source_image[1]']);
});

test('what cannot be read is a UserError naming the path (and the config key when there is one)', async () => {
  const missing = join(dir, 'nope');
  await assert.rejects(ImageSources.open(missing, { columns: ['image'], ...TEACHER_KEYS }),
    userError(new RegExp(`^teacher\\.sources\\.path: ${missing} does not exist \\(expected a folder of images or a \\.parquet file\\)$`)));
  await assert.rejects(ImageSources.open(missing, { columns: ['image'] }), userError(new RegExp(`^${missing} does not exist`)));

  const empty = join(dir, 'empty');
  mkdirSync(empty);
  writeFileSync(join(empty, 'readme.md'), '# nothing to see');
  await assert.rejects(ImageSources.open(empty, { columns: ['image'], ...TEACHER_KEYS }),
    userError(new RegExp(`^teacher\\.sources\\.path: ${empty} holds no \\.jpg/\\.jpeg/\\.png/\\.webp/\\.tif/\\.tiff/\\.gif images$`)));

  const csv = join(dir, 'faces.csv');
  writeFileSync(csv, 'a,b\n');
  await assert.rejects(ImageSources.open(csv, { columns: ['image'] }), userError(/faces\.csv is not a folder or a \.parquet file/));

  const garbage = join(dir, 'garbage.parquet');
  writeFileSync(garbage, 'this is not parquet at all');
  await assert.rejects(ImageSources.open(garbage, { columns: ['image'], ...TEACHER_KEYS }), userError(/^teacher\.sources\.path: cannot read .*garbage\.parquet as Parquet: /));

  const table = join(dir, 'captions.parquet');
  writeFileSync(table, Buffer.from(parquetWriteBuffer({ columnData: [{ name: 'caption', data: ['x'], type: 'STRING' }, { name: 'width', data: [1], type: 'INT32' }] })));
  await assert.rejects(ImageSources.open(table, { columns: ['jpeg'], ...TEACHER_KEYS }),
    userError(/^teacher\.sources\.column: .*captions\.parquet has no image column "jpeg" \(columns: caption, width\)$/));
  await assert.rejects(ImageSources.open(table, { columns: ['source_image', 'image'] }),
    userError(/^.*captions\.parquet has no image column "source_image" or "image" \(columns: caption, width\)$/));

  const noRows = join(dir, 'no-rows.parquet');
  writeFileSync(noRows, Buffer.from(parquetWriteBuffer({ columnData: [{ name: 'image', data: [], type: 'BYTE_ARRAY' }] })));
  await assert.rejects(ImageSources.open(noRows, { columns: ['image'] }), userError(/no-rows\.parquet has no rows$/));
  // The table's bytes are still images to decode: a bad one fails there, naming the row.
  const bad = join(dir, 'bad-cell.parquet');
  writeFileSync(bad, Buffer.from(parquetWriteBuffer({ columnData: [{ name: 'image', data: [new Uint8Array(readFileSync(csv))], type: 'BYTE_ARRAY' }] })));
  const one = await (await ImageSources.open(bad, { columns: ['image'] })).get(0);
  await assert.rejects(decodeImage(one.input, one.label), userError(/^cannot read image .*bad-cell\.parquet row 0 image: /));
});
