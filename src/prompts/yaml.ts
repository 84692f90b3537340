/**
 * Reading a YAML (or JSON) file a user wrote — a prompt set, a pipeline config, a `--set` value — so
 * that a hostile or broken file is a UserError, never a crash, a hang or a polluted prototype: the
 * file is read up to a size cap (a special file such as /dev/zero never ends), decoded as strict
 * UTF-8 (the byte offset of the first bad byte is named), parsed, refused if a key is a prototype
 * key, and turned into plain values with yaml's alias-expansion limit (an alias bomb stops there).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { LineCounter, isScalar, parseDocument, visit, type Document } from 'yaml';
import { UserError } from '../errors.ts';

/** The largest YAML file read (the shipped prompt sets are under 30 KB, configs under 2 KB). */
export const MAX_YAML_BYTES = 4 * 1024 * 1024;
/** yaml's own default: a document may expand at most this many aliases (a "billion laughs" needs millions). */
export const MAX_YAML_ALIASES = 100;
/** Keys that would reach Object.prototype once a mapping is merged into an object. */
export const PROTOTYPE_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

export interface ParsedYaml {
  /** The decoded text. */
  text: string;
  doc: Document;
  lines: LineCounter;
  /** The document as plain JS values (null for an empty document). */
  value: unknown;
}

export interface ParseYamlOptions {
  /** How a syntax error is introduced after "file:line:col: ", e.g. "malformed YAML". */
  syntax: string;
  /** Passed to the yaml parser: refuse duplicate keys. */
  uniqueKeys?: boolean;
}

/**
 * Read a file of at most MAX_YAML_BYTES (a read error is thrown as it is: callers word it); a larger
 * file is a UserError naming `label`.
 */
export function readBounded(path: string, label: string, max = MAX_YAML_BYTES): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(max + 1);
    let n = 0;
    for (let got = -1; got !== 0 && n <= max; n += got) got = readSync(fd, buf, n, max + 1 - n, null);
    if (n > max) throw new UserError(`${label}: larger than ${max} bytes (${max / (1024 * 1024)} MiB), the most a YAML file may hold`);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** Decode, parse and convert YAML bytes; every refusal is a UserError starting with `label`. */
export function parseYamlBytes(bytes: Uint8Array, label: string, options: ParseYamlOptions): ParsedYaml {
  return parseYamlText(strictUtf8(bytes, label), label, options);
}

/** Parse and convert YAML text (e.g. a `--set` value); every refusal is a UserError starting with `label`. */
export function parseYamlText(text: string, label: string, options: ParseYamlOptions): ParsedYaml {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: options.uniqueKeys ?? true });
  const at = (offset: number) => {
    const { line, col } = lines.linePos(offset);
    return `${label}:${line}:${col}`;
  };
  if (doc.errors.length > 0) {
    const err = doc.errors[0];
    throw new UserError(`${at(err.pos[0])}: ${options.syntax}: ${err.message.split('\n')[0]}`);
  }
  visit(doc, {
    Pair(_, pair) {
      if (isScalar(pair.key) && PROTOTYPE_KEYS.has(String(pair.key.value))) {
        throw new UserError(`${at(pair.key.range?.[0] ?? 0)}: "${pair.key.value}" cannot be a key (it would reach the prototype of every object)`);
      }
    },
  });
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES }) ?? null;
  } catch (e) {
    // yaml throws a ReferenceError when the aliases would expand past the limit.
    throw new UserError(`${label}: its aliases (*name) expand to too many values (at most ${MAX_YAML_ALIASES} alias expansions): ${(e as Error).message}`);
  }
  return { text, doc, lines, value };
}

/** UTF-8 without replacement characters: the first malformed byte is named by its offset. */
function strictUtf8(bytes: Uint8Array, label: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new UserError(`${label}: not valid UTF-8 at byte offset ${firstBadByte(bytes)} (save the file as UTF-8)`);
  }
}

/**
 * The offset where the first malformed sequence starts: find the shortest prefix a streaming decoder
 * refuses (it accepts a sequence cut at the end, so a prefix of valid text never fails), then count
 * the bytes of the whole characters before it (a sequence still open there is the malformed one).
 */
function firstBadByte(bytes: Uint8Array): number {
  const decodes = (n: number) => {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, n), { stream: true });
      return true;
    } catch {
      return false;
    }
  };
  let ok = 0;
  let bad = bytes.length;
  while (bad - ok > 1) {
    const mid = (ok + bad) >>> 1;
    if (decodes(mid)) ok = mid;
    else bad = mid;
  }
  return Buffer.byteLength(new TextDecoder('utf-8').decode(bytes.subarray(0, bad - 1), { stream: true }));
}
