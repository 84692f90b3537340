/**
 * Expansion: a prompt set + (count, seed) → a stream of prompt rows, first the eval split, then
 * `count` train rows. Deterministic (own PRNG, see prng.ts), de-duplicated on (source, instruction)
 * with a fingerprint set in bounded memory, rows identified by a content hash.
 *
 * The expansion is sequential (each draw depends on the de-duplication of all draws before it), so it
 * is kept cheap: templates are compiled to byte literals and slot references, rows are rendered as
 * UTF-8 straight into one buffer per batch, and no object, string or closure is made per row. The
 * encoder threads (row-group.ts) turn the bytes into Parquet pages.
 */
import { hash } from 'node:crypto';
import { UserError } from '../errors.ts';
import { SOURCE_REF, type Condition, type PromptSet, type Slot } from './grammar.ts';
import { FingerprintSet } from './fingerprint-set.ts';
import { Prng, pickWeighted } from './prng.ts';
import type { Template } from './template.ts';
import { dataViews } from '../util/data-view.ts';

export interface PromptRow {
  prompt_id: string;
  prompt_split: 'train' | 'eval';
  category: string;
  source_prompt: string;
  instruction: string;
  target_prompt: string;
  identity_threshold: number | null;
  attributes: Record<string, string>;
}

export interface ExpandOptions {
  /** Number of train rows (the eval rows come on top, first). */
  count: number;
  /** PRNG seed for the train rows, an integer in [0, 2^53). The eval rows use the set's `eval.seed`. */
  seed: number;
}

/** How many times a row is redrawn (duplicate, excluded combination, no-op edit) before giving up. */
export const MAX_ATTEMPTS = 1000;
/** Stream tags mixed into the seed so the train and eval streams differ even for equal seeds. */
const TRAIN_STREAM = 0n;
const EVAL_STREAM = 0x6576616c00000000n; // "eval" in the high bytes

/**
 * prompt_id: the first 32 hex digits (128 bits) of
 * sha256(JSON.stringify([category, source_prompt, instruction, target_prompt])).
 * It depends on content only, never on the row's position, the seed or the count.
 * (row-group.ts computes the same from the rows' UTF-8 bytes.)
 */
export function promptId(category: string, source: string, instruction: string, target: string): string {
  return hash('sha256', JSON.stringify([category, source, instruction, target]), 'hex').slice(0, 32);
}

export function checkExpandOptions(opts: ExpandOptions): void {
  if (!Number.isSafeInteger(opts.count) || opts.count < 0) throw new UserError(`--count must be an integer >= 0, got ${opts.count}`);
  if (!Number.isSafeInteger(opts.seed) || opts.seed < 0) throw new UserError(`--seed must be an integer in [0, 2^53), got ${opts.seed}`);
}

/** The rows as a stream: eval rows first, then `count` train rows. Holds only the dedup fingerprints. */
export async function* expandPromptSet(set: PromptSet, opts: ExpandOptions): AsyncGenerator<PromptRow> {
  for (const row of expandRows(set, opts)) yield { ...row, attributes: { ...row.attributes } };
}

/** The same stream, synchronous; rows share their `attributes` object per distinct value (do not mutate). */
export function* expandRows(set: PromptSet, opts: ExpandOptions): Generator<PromptRow> {
  const expansion = new Expansion(set, opts);
  const parsed: Record<string, string>[] = []; // by attributes id (explicit eval rows add ids as they come)
  for (let b = expansion.next(64); b.rows; b = expansion.next(64)) {
    for (let i = 0; i < b.rows; i++) {
      const row = batchRow(b, i, false);
      const id = b.attributes[i];
      const attributes = (parsed[id] ??= JSON.parse(b.tables.attributes[id]) as Record<string, string>);
      yield { prompt_id: promptId(row.category, row.source_prompt, row.instruction, row.target_prompt), ...row, attributes };
    }
  }
}

/** What a batch's small-integer columns refer to; fixed for a prompt set. */
export interface BatchTables {
  categories: string[];
  thresholds: (number | null)[];
  /** Distinct attributes JSON texts (category attributes, then the edit's or the eval row's). */
  attributes: string[];
  /** No text of the set holds a character JSON escapes (", \, control characters): rows go into JSON as they are. */
  jsonPlain: boolean;
}

/**
 * Expanded rows without prompt_id (a hash of the others, computed where the batch is encoded: in a
 * worker thread for the prompt table). Row i is UTF-8 in `text`, laid out as the JSON text prompt_id
 * hashes, with the strings unescaped: `[` + JSON.stringify(category) + `,"` + source + `","` +
 * instruction + `","` + target + `"]` (when tables.jsonPlain, that is the JSON text itself). With
 * bounds[4i..4i+3] = (a, b, c, d): source = text[a, b), instruction = text[b + 3, c), target =
 * text[c + 3, d); the row's text is text[a - jsonHead(category).length, d + 2).
 * Plain arrays and typed arrays only, so a batch moves to a thread cheaply.
 */
export interface RowBatch {
  rows: number;
  text: Uint8Array;
  bounds: Int32Array;
  /** 1 for an eval row, 0 for a train row. */
  eval: Uint8Array;
  /** Index into tables.categories (and thresholds). */
  category: Uint16Array;
  /** Index into tables.attributes. */
  attributes: Uint32Array;
  tables: BatchTables;
}

const decoder = new TextDecoder();
/** The bytes between a row's strings: `","`. */
export const SEPARATOR = 3;
const SEPARATOR_BYTES = new Uint8Array([0x22, 0x2c, 0x22]);
const ROW_END = new Uint8Array([0x22, 0x5d]); // "]

/** What a row's text starts with: `[` + JSON.stringify(category) + `,"`. */
export function jsonHead(category: string): Uint8Array {
  return new TextEncoder().encode(`[${JSON.stringify(category)},"`);
}

/** Row i of a batch as strings (tests, the reference pipeline; the table never decodes); attributes parsed unless told not to. */
export function batchRow(b: RowBatch, i: number, parseAttributes = true): Omit<PromptRow, 'prompt_id'> {
  const text = (s: number, e: number) => decoder.decode(b.text.subarray(s, e));
  const c = b.category[i];
  const [s0, s1, i1, t1] = b.bounds.subarray(4 * i, 4 * i + 4);
  return {
    prompt_split: b.eval[i] ? 'eval' : 'train',
    category: b.tables.categories[c],
    source_prompt: text(s0, s1),
    instruction: text(s1 + SEPARATOR, i1),
    target_prompt: text(i1 + SEPARATOR, t1),
    identity_threshold: b.tables.thresholds[c],
    attributes: parseAttributes ? (JSON.parse(b.tables.attributes[b.attributes[i]]) as Record<string, string>) : {},
  };
}

const encoder = new TextEncoder();
/** A lone surrogate would be encoded as U+FFFD, and two halves in adjacent pieces would not pair up. */
const LONE_SURROGATE = /\p{Surrogate}/u;

/** A compiled template: literals[0], ref 0, literals[1], ..., literals[n]; a ref is (slot, column), slot -1 for {source}. */
interface Compiled {
  literals: Uint8Array[];
  slots: Int32Array;
  /** 0: the slot's value, k > 0: its (k-1)-th var. */
  columns: Int32Array;
}

/** A condition as (slot, accepted item flags) pairs. */
type CompiledCondition = { slot: number; accepted: Uint8Array }[];

interface CompiledEdit {
  instructions: Compiled[];
  target: Compiled | null;
  /** `set` edits: the replaced slots and their templates, in the set's order. */
  setSlots: Int32Array;
  setTemplates: Compiled[];
  when: CompiledCondition[];
  exclude: CompiledCondition[];
  attributes: number;
}

interface CompiledCategory {
  index: number;
  name: string;
  edits: CompiledEdit[];
  editCumulative: Float64Array;
  when: CompiledCondition[];
  exclude: CompiledCondition[];
}

/** The prompt set with every string as UTF-8 and every name as an index. */
class CompiledSet {
  /** Every slot of the set (source slots and categories' own), by index. */
  readonly slots: Slot[] = [];
  /** bytes[slot][item][column]: column 0 the value, k the (k-1)-th var. */
  readonly bytes: Uint8Array[][][] = [];
  /** The number of items of a slot whose weights are all 1 (pickWeighted is then floor(u × n)), else 0. */
  readonly uniform: number[] = [];
  readonly sources: Compiled[];
  /** For each source template, which slots it names directly (a `set` may only replace those). */
  readonly mentions: Uint8Array[];
  readonly exclude: CompiledCondition[];
  readonly categories: CompiledCategory[];
  readonly tables: BatchTables;
  private readonly slotIndex = new Map<Slot, number>();
  private readonly attributesIndex = new Map<string, number>();

  constructor(readonly set: PromptSet) {
    this.tables = { categories: set.categories.map((c) => c.name), thresholds: set.categories.map((c) => c.identityThreshold), attributes: [], jsonPlain: true };
    const sourceScope = new Map<string, Slot>();
    for (const slot of set.slots.values()) {
      sourceScope.set(slot.name, slot);
      for (const v of slot.vars) sourceScope.set(v, slot);
    }
    for (const slot of set.slots.values()) this.slot(slot); // source slots first: indices below set.slots.size
    this.sources = set.sources.map((t) => this.template(t, sourceScope));
    this.mentions = this.sources.map((c) => {
      const m = new Uint8Array(set.slots.size);
      for (let r = 0; r < c.slots.length; r++) if (c.columns[r] === 0) m[c.slots[r]] = 1;
      return m;
    });
    this.exclude = set.exclude.map((c) => this.condition(c, sourceScope));
    this.categories = set.categories.map((cat, index) => ({
      index,
      name: cat.name,
      edits: cat.edits.map((e) => ({
        instructions: e.instructions.map((t) => this.template(t, cat.scope)),
        target: e.target ? this.template(e.target, cat.scope) : null,
        setSlots: Int32Array.from([...(e.set?.keys() ?? [])].map((name) => this.slot(set.slots.get(name)!))),
        setTemplates: [...(e.set?.values() ?? [])].map((t) => this.template(t, cat.scope)),
        when: e.when.map((c) => this.condition(c, cat.scope)),
        exclude: e.exclude.map((c) => this.condition(c, cat.scope)),
        attributes: this.attributesId({ ...cat.attributes, ...e.attributes }),
      })),
      editCumulative: cat.editCumulative,
      when: cat.when.map((c) => this.condition(c, cat.scope)),
      exclude: cat.exclude.map((c) => this.condition(c, cat.scope)),
    }));
  }

  attributesId(attributes: Record<string, string>): number {
    const json = JSON.stringify(attributes);
    let id = this.attributesIndex.get(json);
    if (id === undefined) {
      this.attributesIndex.set(json, (id = this.tables.attributes.length));
      this.tables.attributes.push(json);
    }
    return id;
  }

  private slot(slot: Slot): number {
    let i = this.slotIndex.get(slot);
    if (i === undefined) {
      this.slotIndex.set(slot, (i = this.slots.length));
      this.slots.push(slot);
      this.uniform.push(slot.items.every((it) => it.weight === 1) ? slot.items.length : 0);
      this.bytes.push(slot.items.map((it) => [it.value, ...slot.vars.map((v) => it.vars[v])].map((s) => utf8(s, this.set.path, this.tables))));
    }
    return i;
  }

  private template(t: Template, scope: Map<string, Slot>): Compiled {
    const literals: Uint8Array[] = [];
    const slots: number[] = [];
    const columns: number[] = [];
    for (let i = 0; i < t.parts.length; i++) {
      if (i % 2 === 0) {
        literals.push(utf8(t.parts[i], this.set.path, this.tables));
        continue;
      }
      const name = t.parts[i];
      const slot = scope.get(name);
      if (!slot || name === SOURCE_REF) {
        slots.push(-1);
        columns.push(0);
      } else {
        slots.push(this.slot(slot));
        columns.push(name === slot.name ? 0 : 1 + slot.vars.indexOf(name));
      }
    }
    return { literals, slots: Int32Array.from(slots), columns: Int32Array.from(columns) };
  }

  private condition(c: Condition, scope: Map<string, Slot>): CompiledCondition {
    return [...c].map(([name, values]) => {
      const slot = scope.get(name)!;
      return { slot: this.slot(slot), accepted: Uint8Array.from(slot.items.map((it) => (values.has(it.value) ? 1 : 0))) };
    });
  }
}

const JSON_ESCAPED = /["\\\u0000-\u001f]/;

function utf8(s: string, path: string, tables?: BatchTables): Uint8Array {
  if (tables && JSON_ESCAPED.test(s)) tables.jsonPlain = false;
  if (LONE_SURROGATE.test(s)) throw new UserError(`${path}: ${JSON.stringify(s)} holds a lone UTF-16 surrogate (an unpaired \\uD800-\\uDFFF escape): prompt text must be valid Unicode`);
  return encoder.encode(s);
}

/** A batch being filled: rows' UTF-8 at the end of `text`, grown by doubling. */
class BatchBuilder {
  text: Uint8Array;
  pos = 0;
  rows = 0;
  readonly bounds: Int32Array;
  readonly eval: Uint8Array;
  readonly category: Uint16Array;
  readonly attributes: Uint32Array;

  constructor(max: number) {
    this.text = new Uint8Array(Math.max(1024, max * 512));
    this.bounds = new Int32Array(4 * max);
    this.eval = new Uint8Array(max);
    this.category = new Uint16Array(max);
    this.attributes = new Uint32Array(max);
  }

  /** Room for n more bytes. */
  ensure(n: number): void {
    if (this.pos + n <= this.text.length) return;
    const grown = new Uint8Array(Math.max(this.text.length * 2, this.pos + n));
    grown.set(this.text.subarray(0, this.pos));
    this.text = grown;
  }

  append(bytes: Uint8Array): void {
    const n = bytes.length;
    if (this.pos + n > this.text.length) this.ensure(n);
    const text = this.text;
    let p = this.pos;
    // a native copy costs a call; a JS byte loop costs a few ns a byte
    if (n > 8) text.set(bytes, p);
    else for (let i = 0; i < n; i++) text[p + i] = bytes[i];
    this.pos = p + n;
  }

  /** Append a copy of text[start, end). */
  appendOwn(start: number, end: number): void {
    this.ensure(end - start);
    this.text.copyWithin(this.pos, start, end);
    this.pos += end - start;
  }

  finish(tables: BatchTables): RowBatch {
    const n = this.rows;
    return {
      rows: n,
      text: this.text.subarray(0, this.pos), // not copied: the batch owns the buffer from here on
      bounds: this.bounds.slice(0, 4 * n),
      eval: this.eval.slice(0, n),
      category: this.category.slice(0, n),
      attributes: this.attributes.slice(0, n),
      tables,
    };
  }
}

/**
 * The expansion, pulled batch by batch: the set's explicit eval rows, then `eval.count` drawn eval
 * rows, then `count` train rows. Builds no object per row.
 */
export class Expansion {
  private readonly seen: FingerprintSet;
  /** Eval instructions (as latin1 strings of their UTF-8, for holdout `instruction`). */
  private readonly evalInstructions = new Set<string>();
  private readonly compiled: CompiledSet;
  private readonly evalDrawer: Drawer;
  private readonly trainDrawer: Drawer;
  private readonly holdout: boolean;
  private readonly heads: Uint8Array[];
  private explicitDone = 0;
  private evalDone = 0;
  private trainDone = 0;

  constructor(
    private readonly set: PromptSet,
    private readonly opts: ExpandOptions,
  ) {
    checkExpandOptions(opts);
    this.seen = new FingerprintSet(Math.max(1024, set.eval.rows.length + set.eval.count + opts.count));
    this.compiled = new CompiledSet(set);
    for (const r of set.eval.rows) for (const s of [r.source, r.instruction, r.target]) utf8(s, set.path, this.compiled.tables);
    this.evalDrawer = new Drawer(new Prng(set.eval.seed, EVAL_STREAM), this.compiled);
    this.trainDrawer = new Drawer(new Prng(opts.seed, TRAIN_STREAM), this.compiled);
    this.holdout = set.eval.holdout === 'instruction';
    this.heads = set.categories.map((c) => jsonHead(c.name));
  }

  get tables(): BatchTables {
    return this.compiled.tables;
  }

  /** The next rows, at most `max`; a batch of 0 rows once all are drawn. */
  next(max: number): RowBatch {
    const { set, compiled } = this;
    const b = new BatchBuilder(max);
    while (b.rows < max && this.explicitDone < set.eval.rows.length) {
      const r = set.eval.rows[this.explicitDone++];
      const cat = set.categories.findIndex((c) => c.name === r.category);
      b.append(this.heads[cat]);
      const start = b.pos;
      b.append(encoder.encode(r.source));
      const sourceEnd = b.pos;
      b.append(SEPARATOR_BYTES);
      b.append(encoder.encode(r.instruction));
      const instructionEnd = b.pos;
      b.append(SEPARATOR_BYTES);
      b.append(encoder.encode(r.target));
      this.seen.add(fingerprint(b.text, start, sourceEnd, instructionEnd), fingerprintLo); // the loader checks they are distinct
      this.evalInstructions.add(latin1(b.text, sourceEnd + SEPARATOR, instructionEnd));
      const attributes = compiled.attributesId({ ...set.categories[cat].attributes, ...r.attributes });
      this.accept(b, 1, cat, attributes, start, sourceEnd, instructionEnd);
    }
    while (b.rows < max && this.evalDone < set.eval.count) this.draw(b, this.evalDrawer, true, this.evalDone++);
    while (b.rows < max && this.trainDone < this.opts.count) this.draw(b, this.trainDrawer, false, this.trainDone++);
    return b.finish(compiled.tables);
  }

  private accept(b: BatchBuilder, isEval: number, category: number, attributes: number, start: number, sourceEnd: number, instructionEnd: number): void {
    const i = b.rows++;
    b.bounds[4 * i] = start;
    b.bounds[4 * i + 1] = sourceEnd;
    b.bounds[4 * i + 2] = instructionEnd;
    b.bounds[4 * i + 3] = b.pos;
    b.append(ROW_END);
    b.eval[i] = isEval;
    b.category[i] = category;
    b.attributes[i] = attributes;
  }

  private draw(b: BatchBuilder, drawer: Drawer, isEval: boolean, done: number): void {
    const { compiled } = this;
    const cat = compiled.categories[pickWeighted(drawer.prng, this.set.categoryCumulative)];
    const rowStart = b.pos;
    b.append(this.heads[cat.index]);
    const start = b.pos;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      b.pos = start;
      const edit = drawer.draw(cat, b);
      if (!edit) continue;
      const { sourceEnd, instructionEnd } = drawer;
      const text = b.text;
      if (this.holdout && !isEval && this.evalInstructions.size && this.evalInstructions.has(latin1(text, sourceEnd + SEPARATOR, instructionEnd))) continue;
      if (!this.seen.add(fingerprint(text, start, sourceEnd, instructionEnd), fingerprintLo)) continue;
      if (isEval) this.evalInstructions.add(latin1(text, sourceEnd + SEPARATOR, instructionEnd));
      this.accept(b, isEval ? 1 : 0, cat.index, edit.attributes, start, sourceEnd, instructionEnd);
      return;
    }
    b.pos = rowStart;
    const split = isEval ? 'eval' : 'train';
    throw new UserError(
      `${this.set.path}: category "${cat.name}": no new distinct row after ${MAX_ATTEMPTS} draws (${done} ${split} rows drawn so far). ` +
        `Its (source, instruction) combinations are used up or its when/exclude rules reject nearly every draw: ` +
        `lower ${isEval ? 'eval.count' : '--count'}, or add slot values, templates or edits.`,
    );
  }
}

function latin1(text: Uint8Array, start: number, end: number): string {
  return Buffer.from(text.buffer, text.byteOffset + start, end - start).toString('latin1');
}

/**
 * 64-bit fingerprint of (source, instruction) = text[start, sourceEnd) and text[sourceEnd + 3, end) (the
 * bytes between are always `","`):
 * two 32-bit multiply-xorshift hashes of their UTF-8 bytes (4 at a time, as little-endian words, then the
 * last 0-3 one by one) with different seeds, both lengths mixed in
 * (so ("ab", "c") and ("a", "bc") differ), each finished by murmur3's avalanche; returns the high
 * half and leaves the low half in `fingerprintLo`. It only de-duplicates (a collision among 10M rows
 * has a chance of about 3e-6 and would replace one row by the next draw, the same way on every run).
 */
let fingerprintLo = 0;
const viewOf = dataViews();
function fingerprint(text: Uint8Array, start: number, sourceEnd: number, end: number): number {
  let a = 0x9747b28c ^ (sourceEnd - start) ^ ((end - sourceEnd - SEPARATOR) << 16);
  let b = 0x5bd1e995 ^ (end - sourceEnd - SEPARATOR) ^ ((sourceEnd - start) << 16);
  const view = viewOf(text);
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const c = view.getInt32(i, true);
    a = Math.imul(a ^ c, 0x85ebca6b);
    a ^= a >>> 13;
    b = Math.imul(b ^ c, 0xc2b2ae35);
    b ^= b >>> 16;
  }
  for (; i < end; i++) {
    const c = text[i];
    a = Math.imul(a ^ c, 0x85ebca6b);
    a ^= a >>> 13;
    b = Math.imul(b ^ c, 0xc2b2ae35);
    b ^= b >>> 16;
  }
  fingerprintLo = fmix32(b);
  return fmix32(a);
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Draws candidate rows from one PRNG stream into a batch's text; slot values are drawn on first
 * reference, in template order. `chosen[slot]` is the drawn item, -1 before the first reference.
 */
class Drawer {
  private readonly chosen: Int32Array;
  /** A `set` edit's rendered replacement value per slot, null for the others. */
  private readonly replaced: (Uint8Array | null)[];
  /** Where the source's r-th reference's value starts and ends in the batch's text. */
  private readonly valueStart: Int32Array;
  private readonly valueEnd: Int32Array;
  sourceEnd = 0;
  instructionEnd = 0;

  constructor(
    readonly prng: Prng,
    private readonly c: CompiledSet,
  ) {
    this.chosen = new Int32Array(c.slots.length);
    this.replaced = new Array<Uint8Array | null>(c.slots.length).fill(null);
    const refs = Math.max(0, ...c.sources.map((t) => t.slots.length));
    this.valueStart = new Int32Array(refs);
    this.valueEnd = new Int32Array(refs);
  }

  /** Draw one candidate at the end of b's text; its edit, or null when the draw is not allowed (set on an unmentioned slot, rules, no-op edit). */
  draw(cat: CompiledCategory, b: BatchBuilder): CompiledEdit | null {
    const { c, prng, chosen } = this;
    chosen.fill(-1);
    const start = b.pos;
    const s = pickWeighted(prng, c.set.sourceCumulative);
    // The source's slots are drawn first and its text rendered only once the cheap checks pass: a third
    // of the attempts end there (a `set` the source does not mention, a source exclusion, a rule).
    this.drawSlots(c.sources[s]);
    if (c.exclude.length && anyMatches(c.exclude, chosen)) return null;
    const edit = cat.edits[pickWeighted(prng, cat.editCumulative)];
    // `set` replaces a slot's value in the source template: only meaningful when the source mentions it.
    const mentions = c.mentions[s];
    for (let k = 0; k < edit.setSlots.length; k++) if (!mentions[edit.setSlots[k]]) return null;
    const instruction = edit.instructions[Math.floor(prng.uniform() * edit.instructions.length)];
    if (rejectedAlready(cat, edit, chosen)) {
      // Rendering would only be thrown away; the slot draws it makes still happen, so the stream goes on as if rendered.
      this.drawSlots(instruction);
      if (edit.target) this.drawSlots(edit.target);
      else for (const t of edit.setTemplates) this.drawSlots(t);
      return null;
    }
    this.renderSource(c.sources[s], b);
    const sourceEnd = b.pos;
    b.append(SEPARATOR_BYTES);
    this.render(instruction, b, start, sourceEnd);
    const instructionEnd = b.pos;
    b.append(SEPARATOR_BYTES);
    if (edit.target) this.render(edit.target, b, start, sourceEnd);
    else this.renderSet(c.sources[s], edit, b, start, sourceEnd);
    if (equalBytes(b.text, start, sourceEnd, instructionEnd + SEPARATOR, b.pos)) return null;
    if (!allowed(cat.when, cat.exclude, chosen) || !allowed(edit.when, edit.exclude, chosen)) return null;
    this.sourceEnd = sourceEnd;
    this.instructionEnd = instructionEnd;
    return edit;
  }

  private item(slot: number): number {
    let it = this.chosen[slot];
    if (it < 0) {
      // with weights of 1, cumulative[i] = i + 1 and u × n is exact: the search's answer is floor(u × n)
      const n = this.c.uniform[slot];
      it = n ? Math.floor(this.prng.uniform() * n) : pickWeighted(this.prng, this.c.slots[slot].cumulative);
      this.chosen[slot] = it;
    }
    return it;
  }

  /** The slot draws rendering t would make. */
  private drawSlots(t: Compiled): void {
    for (let r = 0; r < t.slots.length; r++) if (t.slots[r] >= 0) this.item(t.slots[r]);
  }

  /** Render t at the end of b's text; {source} copies text[sourceStart, sourceEnd). */
  private render(t: Compiled, b: BatchBuilder, sourceStart: number, sourceEnd: number): void {
    const { literals, slots, columns } = t;
    b.append(literals[0]);
    for (let r = 0; r < slots.length; r++) {
      const slot = slots[r];
      if (slot < 0) b.appendOwn(sourceStart, sourceEnd);
      else b.append(this.c.bytes[slot][this.item(slot)][columns[r]]);
      b.append(literals[r + 1]);
    }
  }

  /** Render a source template, noting where each reference's value lands (for renderSet). */
  private renderSource(t: Compiled, b: BatchBuilder): void {
    const { literals, slots, columns } = t;
    const { valueStart, valueEnd } = this;
    b.append(literals[0]);
    for (let r = 0; r < slots.length; r++) {
      const slot = slots[r];
      valueStart[r] = b.pos;
      b.append(this.c.bytes[slot][this.item(slot)][columns[r]]);
      valueEnd[r] = b.pos;
      b.append(literals[r + 1]);
    }
  }

  /**
   * The source with the edit's `set` values in place of the replaced slots' values (each rendered first, in
   * order, drawing as needed): the source's bytes between them are copied as they are.
   */
  private renderSet(source: Compiled, edit: CompiledEdit, b: BatchBuilder, sourceStart: number, sourceEnd: number): void {
    const { replaced } = this;
    const { setSlots, setTemplates } = edit;
    for (let k = 0; k < setSlots.length; k++) {
      const t = setTemplates[k];
      if (!t.slots.length) {
        replaced[setSlots[k]] = t.literals[0]; // a constant, the usual case
        continue;
      }
      const from = b.pos;
      this.render(t, b, sourceStart, sourceEnd);
      replaced[setSlots[k]] = b.text.slice(from, b.pos);
      b.pos = from;
    }
    const { slots, columns } = source;
    let from = sourceStart;
    for (let r = 0; r < slots.length; r++) {
      const value = columns[r] === 0 ? replaced[slots[r]] : null;
      if (!value) continue;
      b.appendOwn(from, this.valueStart[r]);
      b.append(value);
      from = this.valueEnd[r];
    }
    b.appendOwn(from, sourceEnd);
    for (let k = 0; k < setSlots.length; k++) replaced[setSlots[k]] = null;
  }
}

/**
 * Whether the category's or the edit's rules reject the row whatever the slots not drawn yet turn out to
 * be: an `exclude` matches on drawn slots, or every `when` fails on a drawn slot.
 */
function rejectedAlready(cat: CompiledCategory, edit: CompiledEdit, chosen: Int32Array): boolean {
  return excludedAlready(cat.exclude, chosen) || excludedAlready(edit.exclude, chosen) || failsAlready(cat.when, chosen) || failsAlready(edit.when, chosen);
}

function excludedAlready(exclude: CompiledCondition[], chosen: Int32Array): boolean {
  for (let k = 0; k < exclude.length; k++) if (matches(exclude[k], chosen)) return true;
  return false;
}

function failsAlready(when: CompiledCondition[], chosen: Int32Array): boolean {
  if (!when.length) return false;
  for (let k = 0; k < when.length; k++) {
    let fails = false;
    for (const { slot, accepted } of when[k]) {
      const it = chosen[slot];
      if (it >= 0 && !accepted[it]) fails = true;
    }
    if (!fails) return false;
  }
  return true;
}

function equalBytes(text: Uint8Array, a: number, aEnd: number, b: number, bEnd: number): boolean {
  if (aEnd - a !== bEnd - b) return false;
  for (let i = 0; i < aEnd - a; i++) if (text[a + i] !== text[b + i]) return false;
  return true;
}

/** Conditions see the slots the row mentions: an unmentioned slot fails `when` and never matches `exclude`. */
function allowed(when: CompiledCondition[], exclude: CompiledCondition[], chosen: Int32Array): boolean {
  if (when.length && !anyMatches(when, chosen)) return false;
  return !exclude.length || !anyMatches(exclude, chosen);
}

function anyMatches(conditions: CompiledCondition[], chosen: Int32Array): boolean {
  for (let k = 0; k < conditions.length; k++) if (matches(conditions[k], chosen)) return true;
  return false;
}

function matches(c: CompiledCondition, chosen: Int32Array): boolean {
  for (let k = 0; k < c.length; k++) {
    const it = chosen[c[k].slot];
    if (it < 0 || !c[k].accepted[it]) return false;
  }
  return true;
}

