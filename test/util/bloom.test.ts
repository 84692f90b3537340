import assert from 'node:assert/strict';
import { test } from 'node:test';
import { xxhash64 } from 'hyparquet/src/xxhash.js';
import { BloomBuilder } from 'hyparquet-writer/src/bloom.js';
import { stringBloomFilter, xxhash64OfString } from '../../src/util/bloom.ts';

// A small seeded generator, so a failure names a reproducible case.
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return s / 4294967296;
  };
}
const ALPHABET = ['a', 'z', '0', '9', ' ', '-', 'é', 'ß', '中', '😀', '\u0000', '\u007f', '\u0080'];
function randomString(rand: () => number, maxLength: number): string {
  const n = Math.floor(rand() * (maxLength + 1));
  let s = '';
  for (let i = 0; i < n; i++) s += rand() < 0.7 ? String.fromCharCode(32 + Math.floor(rand() * 95)) : ALPHABET[Math.floor(rand() * ALPHABET.length)];
  return s;
}
const element = { name: 'pair_id', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' } as never;

test('xxhash64 in 32-bit halves equals hyparquet\'s BigInt xxhash64 on strings of every length class', () => {
  const rand = random(7);
  const cases = ['', 'a', 'abc', 'abcd', 'abcdefg', 'abcdefgh', 'x'.repeat(31), 'x'.repeat(32), 'x'.repeat(33), 'y'.repeat(64), 'z'.repeat(200), '😀é中'];
  for (let i = 0; i < 2000; i++) cases.push(randomString(rand, 120));
  for (const s of cases) {
    const [hi, lo] = xxhash64OfString(s);
    const expected = xxhash64(new TextEncoder().encode(s));
    assert.equal((BigInt(hi) << 32n) | BigInt(lo), expected, JSON.stringify(s));
  }
});

test('stringBloomFilter gives BloomBuilder\'s bits: distinct counts, duplicates, nulls, sizes from one block to the cap', () => {
  const rand = random(11);
  for (const n of [1, 2, 7, 100, 1000, 5000]) {
    const values: (string | null)[] = [];
    for (let i = 0; i < n; i++) values.push(rand() < 0.1 ? null : rand() < 0.3 && values.length ? values[Math.floor(rand() * values.length)] : randomString(rand, 40));
    for (const maxBytes of [1024 * 1024, 64]) {
      const builder = new BloomBuilder(element, { maxBytes });
      for (const v of values) builder.insert(v);
      assert.deepEqual(stringBloomFilter(values, 0.01, maxBytes), builder.finalize(), `${n} values, maxBytes ${maxBytes}`);
    }
  }
  assert.equal(stringBloomFilter([null, undefined]), undefined);
  assert.equal(stringBloomFilter(['a', 3]), 'not strings');
});
