/**
 * CLIP's byte-level BPE tokenizer, giving the same ids as transformers' CLIPTokenizer (its path
 * without ftfy, which the fast tokenizer agrees with): text cleanup, lowercasing, CLIP's regex
 * pre-tokenizer, bytes mapped to printable characters, BPE with an end-of-word `</w>` marker, then
 * bos ... eos, truncation to the model length (keeping eos) and padding with the pad token.
 *
 * Hand-written rather than a dependency: the npm options are either a whole inference framework
 * (@huggingface/transformers, with its own onnxruntime) or unmaintained ports; the algorithm is ~150 lines.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.ts';

export interface EncodeOptions {
  /** 'max_length' pads to maxLength with the pad token; false (default) does not pad. */
  padding?: 'max_length' | false;
  /** Cut to maxLength tokens (bos and eos included, eos kept last). Always on: CLIP's text model cannot take more. */
  truncation?: true;
  /** Defaults to the tokenizer's model_max_length (77 for CLIP). */
  maxLength?: number;
}

export interface Encoded {
  ids: number[];
  /** True when the prompt had more tokens than fit and some were dropped. */
  truncated: boolean;
}

/** The 256 bytes mapped to printable unicode characters (GPT-2 / CLIP byte encoder). */
function byteToChar(): string[] {
  const keep: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) keep.push(b);
  for (let b = 0xa1; b <= 0xac; b++) keep.push(b);
  for (let b = 0xae; b <= 0xff; b++) keep.push(b);
  const table = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = keep.includes(b) ? String.fromCodePoint(b) : String.fromCodePoint(256 + extra++);
  }
  return table;
}

const BYTE_CHARS = byteToChar();
const PRE_TOKENIZER = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+/giu;
const CONTROL = /^\p{C}$/u;
const SPACE_SEPARATOR = /^\p{Zs}$/u;

function isCjk(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) || (cp >= 0x2b740 && cp <= 0x2b81f) || (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

/** transformers' BasicTokenizer as CLIP configures it: clean, space out CJK, NFC, split on whitespace, lowercase. */
function basicClean(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || SPACE_SEPARATOR.test(ch)) out += ' ';
    else if (cp === 0 || cp === 0xfffd || CONTROL.test(ch)) continue;
    else if (isCjk(cp)) out += ` ${ch} `;
    else out += ch;
  }
  return out
    .normalize('NFC')
    .split(/\s+/u)
    .filter((w) => w.length > 0)
    .map((w) => w.toLowerCase())
    .join(' ');
}

export class ClipTokenizer {
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly modelMaxLength: number;
  private readonly unkId: number;
  private readonly cache = new Map<string, string[]>();

  private constructor(
    private readonly vocab: Map<string, number>,
    private readonly ranks: Map<string, number>,
    special: { bos: string; eos: string; pad: string; unk: string },
    modelMaxLength: number,
    where: string,
  ) {
    const id = (name: string, token: string) => {
      const v = vocab.get(token);
      if (v === undefined) throw new UserError(`tokenizer ${where}: ${name} token ${JSON.stringify(token)} is not in vocab.json`);
      return v;
    };
    this.bosId = id('bos', special.bos);
    this.eosId = id('eos', special.eos);
    this.padId = id('pad', special.pad);
    this.unkId = id('unk', special.unk);
    this.modelMaxLength = modelMaxLength;
  }

  /** Loads vocab.json and merges.txt, plus tokenizer_config.json / special_tokens_map.json when present. */
  static async fromDir(dir: string): Promise<ClipTokenizer> {
    const readText = async (name: string, required: boolean): Promise<string | null> => {
      try {
        return await readFile(join(dir, name), 'utf8');
      } catch (e) {
        if (!required && (e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw new UserError(`tokenizer: cannot read ${join(dir, name)}: ${(e as Error).message}`);
      }
    };
    const readJson = async (name: string, required: boolean): Promise<Record<string, unknown> | null> => {
      const text = await readText(name, required);
      if (text === null) return null;
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch (e) {
        throw new UserError(`tokenizer: ${join(dir, name)} is not valid JSON: ${(e as Error).message}`);
      }
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new UserError(`tokenizer: ${join(dir, name)} must be a JSON object`);
      return v as Record<string, unknown>;
    };
    const vocabJson = (await readJson('vocab.json', true))!;
    const vocab = new Map<string, number>();
    for (const [token, id] of Object.entries(vocabJson)) {
      if (!Number.isInteger(id)) throw new UserError(`tokenizer: ${join(dir, 'vocab.json')}: id of ${JSON.stringify(token)} must be an integer, got ${JSON.stringify(id)}`);
      vocab.set(token, id as number);
    }
    const mergesText = (await readText('merges.txt', true))!;
    // As transformers: drop the "#version" line, keep at most 49152 - 256 - 2 merges.
    const lines = mergesText.trim().split('\n').slice(1, 49152 - 256 - 2 + 1);
    const ranks = new Map<string, number>();
    lines.forEach((line, i) => {
      const parts = line.trim().split(/\s+/);
      if (parts.length !== 2) throw new UserError(`tokenizer: ${join(dir, 'merges.txt')} line ${i + 2}: expected two symbols separated by a space, got ${JSON.stringify(line)}`);
      if (!ranks.has(`${parts[0]} ${parts[1]}`)) ranks.set(`${parts[0]} ${parts[1]}`, i);
    });
    const config = (await readJson('tokenizer_config.json', false)) ?? {};
    const map = (await readJson('special_tokens_map.json', false)) ?? {};
    const tokenOf = (key: string, def: string): string => {
      const v = map[key] ?? config[key] ?? def;
      if (typeof v === 'string') return v;
      if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
      throw new UserError(`tokenizer: "${key}" in ${dir} must be a token string, got ${JSON.stringify(v)}`);
    };
    const rawMax = config.model_max_length ?? 77;
    if (typeof rawMax !== 'number' || !Number.isInteger(rawMax) || rawMax < 2) {
      throw new UserError(`tokenizer: "model_max_length" in ${join(dir, 'tokenizer_config.json')} must be an integer >= 2, got ${JSON.stringify(rawMax)}`);
    }
    // transformers writes a huge sentinel when the length is unknown; CLIP's text model takes 77.
    const maxLen = rawMax > 1e6 ? 77 : rawMax;
    const special = {
      bos: tokenOf('bos_token', '<|startoftext|>'),
      eos: tokenOf('eos_token', '<|endoftext|>'),
      pad: tokenOf('pad_token', '<|endoftext|>'),
      unk: tokenOf('unk_token', '<|endoftext|>'),
    };
    return new ClipTokenizer(vocab, ranks, special, maxLen, dir);
  }

  /** BPE-merge one pre-token (already byte-encoded) into vocabulary symbols. */
  private bpe(token: string): string[] {
    const cached = this.cache.get(token);
    if (cached) return cached;
    const chars = Array.from(token);
    let word = [...chars.slice(0, -1), chars[chars.length - 1] + '</w>'];
    while (word.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const first = word[best];
      const second = word[best + 1];
      const merged: string[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i < word.length - 1 && word[i] === first && word[i + 1] === second) {
          merged.push(first + second);
          i++;
        } else merged.push(word[i]);
      }
      word = merged;
    }
    if (this.cache.size < 100_000) this.cache.set(token, word);
    return word;
  }

  /** The vocabulary symbols of a text, without bos/eos. */
  tokenize(text: string): string[] {
    const out: string[] = [];
    for (const match of basicClean(text).matchAll(PRE_TOKENIZER)) {
      const piece = match[0];
      if (piece === '<|startoftext|>' || piece === '<|endoftext|>') {
        out.push(piece);
        continue;
      }
      let encoded = '';
      for (const b of Buffer.from(piece, 'utf8')) encoded += BYTE_CHARS[b];
      out.push(...this.bpe(encoded));
    }
    return out;
  }

  encode(text: string, opts: EncodeOptions = {}): Encoded {
    const maxLength = opts.maxLength ?? this.modelMaxLength;
    if (!Number.isInteger(maxLength) || maxLength < 2) throw new RangeError(`maxLength must be an integer >= 2, got ${maxLength}`);
    const body = this.tokenize(text).map((t) => this.vocab.get(t) ?? this.unkId);
    const room = maxLength - 2;
    const truncated = body.length > room;
    const ids = [this.bosId, ...(truncated ? body.slice(0, room) : body), this.eosId];
    if (opts.padding === 'max_length') while (ids.length < maxLength) ids.push(this.padId);
    return { ids, truncated };
  }
}
