/**
 * The prompt table's bytes: pinned across row groups and however its row groups are split over
 * encoder threads; prompt ids and columns written from the rows' bytes equal what the strings give
 * (escapes, non-ASCII, null thresholds); the hand-written snappy compressor byte-equal to hyparquet-writer's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { snappyCompress as librarySnappy } from 'hyparquet-writer/src/snappy.js';
import { asyncBufferFromFile, parquetMetadataAsync } from 'hyparquet';
import { UserError } from '../../src/errors.ts';
import { loadPromptSet, readPromptRows, writePromptTable, ROW_GROUP_ROWS } from '../../src/prompts/index.ts';
import { Expansion, batchRow, expandRows, promptId } from '../../src/prompts/expand.ts';
import { RowGroupEncoder } from '../../src/prompts/encoder.ts';
import { Prng } from '../../src/prompts/prng.ts';
import { snappyCompress } from '../../src/prompts/snappy.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// A copy of prompts/portrait.yaml as it was when the bytes were pinned: the table's metadata carries the
// prompt set's sha256, so any edit of the shipped set (issue 11 gave two categories rules) moves them.
const PORTRAIT = join(ROOT, 'test/fixtures/prompts/portrait-pinned.yaml');
const dir = mkdtempSync(join(tmpdir(), 'pairgen-table-bytes-'));

// `pairgen expand test/fixtures/prompts/portrait-pinned.yaml --count 25003 --seed 9`: 25,043 rows in 3 row
// groups. Re-pinned when issue 15 made the table's pages from the rows' UTF-8 bytes (row-group.ts: one page
// per column chunk, a fixed choice of dictionary columns, prompt_id uncompressed); the rows are the very
// ones of the pin before (254ef4f3…, hyparquet-writer's own layout), which test/prompts/prompts.test.ts's
// content checks and this file's readback cover.
const PINNED = { count: 25003, seed: 9, rows: 25043, sha256: '8295649a82a16a6604dab5e233d571665fdc8a8a7b228bc6867ebc8a16e1ed04' };

test('a 3-row-group prompt table keeps its pinned bytes inline and split over 1 or 2 encoder threads', async () => {
  const set = loadPromptSet(PORTRAIT);
  for (const encodeThreads of [0, 1, 2]) {
    const out = join(dir, `pinned-${encodeThreads}.parquet`);
    const s = await writePromptTable(set, { count: PINNED.count, seed: PINNED.seed, encodeThreads }, out);
    assert.equal(s.rows, PINNED.rows);
    assert.equal(s.sha256, PINNED.sha256, `${encodeThreads} encoder threads`);
    assert.equal(createHash('sha256').update(readFileSync(out)).digest('hex'), PINNED.sha256);
  }
  const meta = await parquetMetadataAsync(await asyncBufferFromFile(join(dir, 'pinned-2.parquet')));
  assert.deepEqual(meta.row_groups.map((g) => Number(g.num_rows)), [ROW_GROUP_ROWS, ROW_GROUP_ROWS, PINNED.rows - 2 * ROW_GROUP_ROWS]);
  // rows on both sides of a row-group boundary read back as the expansion made them
  const train = await readPromptRows(join(dir, 'pinned-2.parquet'), { split: 'train', start: ROW_GROUP_ROWS - 45, end: ROW_GROUP_ROWS - 35 });
  const expansion = new Expansion(set, { count: PINNED.count, seed: PINNED.seed });
  expansion.next(ROW_GROUP_ROWS - 5); // the 40 eval rows and the first train rows
  const b = expansion.next(10);
  assert.deepEqual(train.map((r) => [r.source_prompt, r.instruction, r.target_prompt]), Array.from({ length: b.rows }, (_, i) => batchRow(b, i)).map((r) => [r.source_prompt, r.instruction, r.target_prompt]));
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
});

test('an encoder thread\'s error reaches the caller with its message, and the thread goes on', async () => {
  const encoder = new RowGroupEncoder(1);
  try {
    const batch = new Expansion(loadPromptSet(PORTRAIT), { count: 5, seed: 1 }).next(10);
    batch.category = batch.category.subarray(1); // columns of unequal length: refused
    await assert.rejects(encoder.encode(batch), /prompt table encoder: .*same length/);
    // the thread lives on and encodes the next group
    const good = await encoder.encode(new Expansion(loadPromptSet(PORTRAIT), { count: 5, seed: 1 }).next(10));
    assert.equal(good.rows, 10);
  } finally {
    await encoder.close();
  }
});

test('a user error in the expansion while groups are on an encoder thread leaves no file behind', async () => {
  // 150 x 100 distinct sources: the expansion runs out of new rows after the first row group went to the thread
  const values = (p: string, n: number) => Array.from({ length: n }, (_, i) => `${p}${i}`).join(', ');
  const setFile = join(dir, 'small.yaml');
  writeFileSync(setFile, `slots:\n  a: [${values('a', 150)}]\n  b: [${values('b', 100)}]\nsources: ["x {a} {b}"]\ncategories:\n  c:\n    edits: [{ instructions: [make it y], target: "{source} y" }]\n`);
  const out = join(dir, 'exhausted.parquet');
  await assert.rejects(
    writePromptTable(loadPromptSet(setFile), { count: 20_000, seed: 1, encodeThreads: 1 }, out),
    (e: Error) => e instanceof UserError && /category "c": no new distinct row after 1000 draws/.test(e.message),
  );
  assert.ok(!existsSync(out));
  assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.exhausted')), []);
});

test('snappy.ts compresses to the very bytes of hyparquet-writer\'s snappy', () => {
  const prng = new Prng(42);
  const inputs: Uint8Array[] = [];
  const text = new TextEncoder().encode(readFileSync(PORTRAIT, 'utf8'));
  for (const n of [0, 1, 4, 14, 15, 16, 17, 60, 61, 64, 68, 255, 256, 257, 4096, 65535, 65536, 65537, 70_000, 300_000]) {
    const random = new Uint8Array(n).map(() => prng.next() & 0xff);
    const lowEntropy = new Uint8Array(n).map(() => prng.next() % 3);
    const periodic = new Uint8Array(n).map((_, i) => 'abcabcabd'.charCodeAt(i % 9));
    const prose = new Uint8Array(n).map((_, i) => text[(i * 7 + (i >> 10)) % text.length]);
    inputs.push(random, lowEntropy, periodic, prose, new Uint8Array(n));
  }
  // long literal runs (> 2^16 bytes) followed by matches further back than 64 KiB
  const big = new Uint8Array(200_000);
  big.set(inputs[inputs.length - 5].subarray(0, 100_000));
  big.set(big.subarray(0, 100_000), 100_000);
  inputs.push(big, text);
  for (const input of inputs) {
    assert.deepEqual(Buffer.from(snappyCompress(input)), Buffer.from(librarySnappy(input)), `input of ${input.length} bytes`);
  }
});

test('rows with characters JSON escapes, non-ASCII text and null thresholds: ids and columns as the strings give, on any thread count', async () => {
  const setFile = join(dir, 'escapes.yaml');
  writeFileSync(
    setFile,
    [
      'slots:',
      '  who: ["a \\"quoted\\" cat", "a back\\\\slash dog", "a tab\\there", "a bell\\u0007bird", "a café owner", "a 🐱 fan", "plain folk"]',
      '  where: [on a sofa, "in a \\"box\\"", "at home\\nlate"]',
      'sources: ["{who} {where}"]',
      'categories:',
      '  style:',
      '    edits: [{ instructions: [make it a sketch, "make it \\"noir\\""], target: "{source}, artwork" }]',
      '  mood:',
      '    identity_threshold: 0.5',
      '    edits: [{ instructions: [make it sad], set: { where: "in the rain" } }]',
      'eval:',
      '  rows: [{ category: style, source: "a \\"given\\" row", instruction: "do \\\\ this", target: "done\\u001f", attributes: { note: "its own" } }]',
    ].join('\n'),
  );
  const set = loadPromptSet(setFile);
  const expected = [...expandRows(set, { count: 30, seed: 4 })];
  assert.ok(expected.some((r) => /["\\\t\n\u0007]/.test(r.source_prompt)) && expected.some((r) => /é|🐱/.test(r.source_prompt)));
  assert.ok(expected.some((r) => r.identity_threshold === null) && expected.some((r) => r.identity_threshold === 0.5));
  for (const r of expected) assert.equal(r.prompt_id, promptId(r.category, r.source_prompt, r.instruction, r.target_prompt));
  const sums = new Set<string>();
  for (const encodeThreads of [0, 2]) {
    const out = join(dir, `escapes-${encodeThreads}.parquet`);
    sums.add((await writePromptTable(set, { count: 30, seed: 4, encodeThreads }, out)).sha256);
    const read = [...(await readPromptRows(out, { split: 'eval' })), ...(await readPromptRows(out, { split: 'train' }))];
    assert.deepEqual(read, expected.map((r) => ({ ...r, attributes: { ...r.attributes } })));
  }
  assert.equal(sums.size, 1);
  // a group of all-null thresholds (no dictionary) reads back too
  const nullOnly = join(dir, 'null-thresholds.parquet');
  await writePromptTable(loadPromptSet(setFile), { count: 0, seed: 1 }, nullOnly);
  assert.deepEqual((await readPromptRows(nullOnly, { split: 'eval' })).map((r) => r.identity_threshold), [null]);
});

test('the same seed gives the same bytes and another seed others, whatever the encoder threads', async () => {
  const set = loadPromptSet(PORTRAIT);
  const sha = async (seed: number, encodeThreads: number) => (await writePromptTable(set, { count: 12_000, seed, encodeThreads }, join(dir, `seed-${seed}-${encodeThreads}.parquet`))).sha256;
  const a = await sha(3, 0);
  assert.equal(await sha(3, 3), a);
  assert.equal(await sha(3, 1), a);
  assert.notEqual(await sha(4, 1), a);
});

test('a lone UTF-16 surrogate in prompt text is a user error, not a replacement character', () => {
  const setFile = join(dir, 'surrogate.yaml');
  writeFileSync(setFile, 'slots: { who: ["a \\ud800 cat"] }\nsources: ["{who}"]\ncategories: { c: { edits: [{ instructions: [x], target: "y" }] } }\n');
  assert.throws(() => new Expansion(loadPromptSet(setFile), { count: 1, seed: 1 }), (e: Error) => e instanceof UserError && /lone UTF-16 surrogate/.test(e.message));
});
