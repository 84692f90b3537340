import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ClipTokenizer } from '../text/clip-tokenizer.ts';

/**
 * The reference teacher's text side: a CLIP BPE vocabulary whose merges spell every word of the prompt
 * set as one token, and a bag-of-words naive Bayes table that turns token ids into per-bank scores.
 * The text encoder is a lookup of that table (last_hidden_state[b, t, k] = score of token t for bank k);
 * the UNet sums over the tokens and picks the best bank. Naive Bayes rather than the edit name alone:
 * instructions rarely contain it ("make the photo black and white" means grayscale).
 */
const BOS = '<|startoftext|>';
const EOS = '<|endoftext|>';

/** GPT-2 / CLIP byte → printable character table (the tokenizer's own mapping). */
function byteChars(): string[] {
  const keep = new Set<number>();
  for (let b = 0x21; b <= 0x7e; b++) keep.add(b);
  for (let b = 0xa1; b <= 0xac; b++) keep.add(b);
  for (let b = 0xae; b <= 0xff; b++) keep.add(b);
  let extra = 0;
  return Array.from({ length: 256 }, (_, b) => (keep.has(b) ? String.fromCodePoint(b) : String.fromCodePoint(256 + extra++)));
}

/** The words of a text as CLIP's pre-tokenizer splits them (lowercase letters runs, digits, punctuation runs). */
function words(text: string): string[] {
  return [...text.toLowerCase().matchAll(/\p{L}+|\p{N}|[^\s\p{L}\p{N}]+/gu)].map((m) => m[0]);
}

/**
 * Write vocab.json, merges.txt, tokenizer_config.json and special_tokens_map.json to `dir`: the 256
 * byte symbols (alone and word-final), then for each word a chain of prefix merges ending in the
 * whole word, then the special tokens. Other words may come out in pieces when an earlier merge takes
 * their letters first; every piece is in the vocabulary, so the naive Bayes table covers them too.
 */
export async function writeTokenizer(dir: string, texts: string[], firstWords: string[] = []): Promise<void> {
  const chars = byteChars();
  const vocab = new Map<string, number>();
  const add = (t: string) => {
    if (!vocab.has(t)) vocab.set(t, vocab.size);
  };
  for (const c of chars) add(c);
  for (const c of chars) add(c + '</w>');
  const merges: string[] = [];
  const seen = new Set<string>();
  // Merges of `firstWords` (the edit names) get the lowest ranks, so those words always come out whole.
  const all = [...new Set([...firstWords.flatMap(words), ...texts.flatMap(words).sort()])];
  for (const word of all) {
    const symbols = Array.from(Buffer.from(word, 'utf8'), (b) => chars[b]);
    symbols[symbols.length - 1] += '</w>';
    let prefix = symbols[0];
    for (let i = 1; i < symbols.length; i++) {
      const merge = `${prefix} ${symbols[i]}`;
      prefix += symbols[i];
      if (!seen.has(merge)) {
        seen.add(merge);
        merges.push(merge);
      }
      add(prefix);
    }
  }
  add(BOS);
  add(EOS);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'vocab.json'), JSON.stringify(Object.fromEntries(vocab)) + '\n');
  await writeFile(join(dir, 'merges.txt'), ['#version: 0.2', ...merges].join('\n') + '\n');
  const special = { bos_token: BOS, eos_token: EOS, pad_token: EOS, unk_token: EOS };
  await writeFile(join(dir, 'special_tokens_map.json'), JSON.stringify(special, null, 1) + '\n');
  await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 77, do_lower_case: true, tokenizer_class: 'CLIPTokenizer', ...special }, null, 1) + '\n');
}

export interface LabelledText {
  text: string;
  /** Bank index the text asks for. */
  label: number;
}

/**
 * Multinomial naive Bayes over token ids with Laplace smoothing: table[v * K + k] = log P(v | k),
 * centred over k so that unseen and shared tokens score 0. Special tokens score 0 (they are in every text).
 */
export function trainTextTable(tokenizer: ClipTokenizer, vocabSize: number, examples: LabelledText[], classes: number): Float32Array {
  const counts = new Float64Array(vocabSize * classes);
  const totals = new Float64Array(classes);
  const special = new Set([tokenizer.encode('').ids].flat());
  for (const { text, label } of examples) {
    for (const id of tokenizer.encode(text).ids) {
      if (special.has(id)) continue;
      counts[id * classes + label] += 1;
      totals[label] += 1;
    }
  }
  const alpha = 0.5;
  const table = new Float32Array(vocabSize * classes);
  for (let v = 0; v < vocabSize; v++) {
    if (special.has(v)) continue;
    const logs = Array.from({ length: classes }, (_, k) => Math.log((counts[v * classes + k] + alpha) / (totals[k] + alpha * vocabSize)));
    const mean = logs.reduce((a, b) => a + b, 0) / classes;
    logs.forEach((l, k) => (table[v * classes + k] = l - mean));
  }
  return table;
}

/** The bank a text selects under `table` (what the ONNX text encoder + UNet compute), ties to the lowest index. */
export function classifyText(tokenizer: ClipTokenizer, table: Float32Array, classes: number, text: string): number {
  const score = new Float64Array(classes);
  for (const id of tokenizer.encode(text, { padding: 'max_length', truncation: true }).ids) for (let k = 0; k < classes; k++) score[k] += table[id * classes + k];
  let best = 0;
  for (let k = 1; k < classes; k++) if (score[k] > score[best]) best = k;
  return best;
}
