import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, writeFileSync, rmSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClipTokenizer } from '../../src/text/clip-tokenizer.ts';
import { UserError } from '../../src/errors.ts';

import { FIXTURES } from '../helpers/fixtures.ts';
const TOKENIZER_DIR = join(FIXTURES, 'tiny-sd/tokenizer');
const refs = JSON.parse(readFileSync(join(FIXTURES, 'refs/tokenizer.json'), 'utf8'));
const vocab: Record<string, number> = JSON.parse(readFileSync(join(TOKENIZER_DIR, 'vocab.json'), 'utf8'));
const tok = await ClipTokenizer.fromDir(TOKENIZER_DIR);

test('special tokens and model length come from the tokenizer files', () => {
  assert.equal(tok.bosId, 859);
  assert.equal(tok.eosId, 860);
  assert.equal(tok.padId, 860);
  assert.equal(tok.modelMaxLength, 77);
});

for (const c of refs.cases as { text: string; ids: number[]; padded77: number[]; tokens: string[] }[]) {
  test(`refs: ${JSON.stringify(c.text)} gives transformers' ids`, () => {
    assert.deepEqual(tok.encode(c.text), { ids: c.ids, truncated: false });
    assert.deepEqual(tok.encode(c.text, { padding: 'max_length', truncation: true }), { ids: c.padded77, truncated: false });
    assert.deepEqual(['<|startoftext|>', ...tok.tokenize(c.text), '<|endoftext|>'], c.tokens);
  });
}

const ids = (...tokens: string[]) => tokens.map((t) => vocab[t]);

test('case, whitespace and control characters are normalised before BPE', () => {
  const base = tok.encode('a photo of a cat').ids;
  assert.deepEqual(tok.encode('A PHOTO of a Cat').ids, base);
  assert.deepEqual(tok.encode(' \u3000a\u00a0photo \t of\r\na   cat\u0007 ').ids, base); // ideographic / no-break spaces, a bell
  assert.deepEqual(tok.encode('a pho\u200bto').ids, tok.encode('a photo').ids); // zero-width space (Cf) is removed
  assert.deepEqual(tok.encode('').ids, [859, 860]);
  assert.deepEqual(tok.encode(' \n\t ').ids, [859, 860]);
});

test('unicode is NFC-normalised, then byte-encoded', () => {
  // "é" precomposed vs e + combining acute: the same ids after NFC.
  assert.deepEqual(tok.encode('caf\u0065\u0301').ids, tok.encode('caf\u00e9').ids);
  // A CJK ideograph becomes its own word: three UTF-8 bytes, the last with </w>.
  const t = tok.tokenize('猫cat');
  const bytes = [...Buffer.from('猫', 'utf8')];
  assert.equal(t.slice(0, 3).join(''), 'çĮ«</w>');
  assert.equal(bytes.length, 3);
  assert.deepEqual(t.slice(3), tok.tokenize('cat'));
});

test('digits split one by one; punctuation runs stay together; contractions split', () => {
  assert.deepEqual(tok.tokenize('2024'), ['2</w>', '0</w>', '2</w>', '4</w>']);
  assert.deepEqual(tok.tokenize('wow!!'), [...tok.tokenize('wow'), ...tok.tokenize('!!')]);
  assert.deepEqual(tok.tokenize("she'll"), [...tok.tokenize('she'), ...tok.tokenize("'ll")]);
  assert.deepEqual(tok.tokenize('red-haired'), [...tok.tokenize('red'), ...tok.tokenize('-'), ...tok.tokenize('haired')]);
});

test('BPE applies merges by rank: a full word in the vocabulary is one token', () => {
  assert.deepEqual(tok.tokenize('portrait'), ['portrait</w>']);
  assert.deepEqual(tok.encode('portrait').ids, [859, ...ids('portrait</w>'), 860]);
  // Unknown symbols never occur: every byte has a single-character vocab entry.
  for (const t of tok.tokenize('ǅ ß ∑ 👩‍🎤 ½')) assert.ok(t in vocab, `token ${t} in vocab`);
});

test('long prompts are truncated to the model length, keeping eos last', () => {
  const long = Array.from({ length: 100 }, () => 'cat').join(' ');
  const r = tok.encode(long, { padding: 'max_length', truncation: true });
  assert.equal(r.truncated, true);
  assert.equal(r.ids.length, 77);
  assert.equal(r.ids[0], 859);
  assert.equal(r.ids[76], 860);
  assert.deepEqual(r.ids.slice(1, 76), new Array(75).fill(vocab['cat</w>']));
  // Exactly 75 body tokens fit without truncation.
  const fits = tok.encode(Array.from({ length: 75 }, () => 'cat').join(' '), { padding: 'max_length' });
  assert.equal(fits.truncated, false);
  assert.equal(fits.ids.length, 77);
  const short = tok.encode('cat', { maxLength: 10, padding: 'max_length' });
  assert.deepEqual(short.ids, [859, vocab['cat</w>'], ...new Array(8).fill(860)]);
});

test('a literal special token in the text maps to its id', () => {
  assert.deepEqual(tok.encode('cat<|endoftext|>').ids, [859, vocab['cat</w>'], 860, 860]);
});

test('bad tokenizer folders give UserErrors naming the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pairgen-tok-'));
  try {
    await assert.rejects(ClipTokenizer.fromDir(dir), (e: unknown) => e instanceof UserError && /vocab\.json/.test(e.message));
    cpSync(TOKENIZER_DIR, dir, { recursive: true });
    writeFileSync(join(dir, 'merges.txt'), '#version: 0.2\nr a\nthis line has three\n');
    await assert.rejects(ClipTokenizer.fromDir(dir), (e: unknown) => e instanceof UserError && /merges\.txt line 3/.test(e.message));
    cpSync(join(TOKENIZER_DIR, 'merges.txt'), join(dir, 'merges.txt'));
    writeFileSync(join(dir, 'special_tokens_map.json'), JSON.stringify({ bos_token: '<|nope|>' }));
    await assert.rejects(ClipTokenizer.fromDir(dir), (e: unknown) => e instanceof UserError && /bos token "<\|nope\|>" is not in vocab\.json/.test(e.message));
    writeFileSync(join(dir, 'special_tokens_map.json'), '{not json');
    await assert.rejects(ClipTokenizer.fromDir(dir), (e: unknown) => e instanceof UserError && /special_tokens_map\.json is not valid JSON/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
