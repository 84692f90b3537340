/**
 * Expansion: a prompt set + (count, seed) → a stream of prompt rows, first the eval split, then
 * `count` train rows. Deterministic (own PRNG, see prng.ts), de-duplicated on (source, instruction)
 * with a fingerprint set in bounded memory, rows identified by a content hash.
 */
import { hash } from 'node:crypto';
import { UserError } from '../errors.ts';
import { SOURCE_REF, type Category, type Condition, type Edit, type PromptSet, type Slot } from './grammar.ts';
import { FingerprintSet } from './fingerprint-set.ts';
import { Prng, pickWeighted } from './prng.ts';
import { render, type Template } from './template.ts';

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
  const parsed = new Map<string, Record<string, string>>();
  for (let b = expansion.next(64); b.rows; b = expansion.next(64)) {
    for (let i = 0; i < b.rows; i++) {
      const json = b.attributes[i];
      let attributes = parsed.get(json);
      if (!attributes) parsed.set(json, (attributes = JSON.parse(json) as Record<string, string>));
      yield {
        prompt_id: promptId(b.category[i], b.source_prompt[i], b.instruction[i], b.target_prompt[i]),
        prompt_split: b.prompt_split[i],
        category: b.category[i],
        source_prompt: b.source_prompt[i],
        instruction: b.instruction[i],
        target_prompt: b.target_prompt[i],
        identity_threshold: b.identity_threshold[i],
        attributes,
      };
    }
  }
}

/**
 * Expanded rows as columns, without prompt_id (a hash of the others, computed where the batch is
 * encoded: in a worker thread for the prompt table). `attributes` holds JSON text.
 */
export interface RowBatch {
  rows: number;
  prompt_split: ('train' | 'eval')[];
  category: string[];
  source_prompt: string[];
  instruction: string[];
  target_prompt: string[];
  identity_threshold: (number | null)[];
  attributes: string[];
}

function emptyBatch(): RowBatch {
  return { rows: 0, prompt_split: [], category: [], source_prompt: [], instruction: [], target_prompt: [], identity_threshold: [], attributes: [] };
}

/**
 * The expansion, pulled batch by batch: the set's explicit eval rows, then `eval.count` drawn eval
 * rows, then `count` train rows. Builds no object per row (this loop is the part of `pairgen expand`
 * that cannot run in parallel: each draw depends on the de-duplication of all draws before it).
 */
export class Expansion {
  private readonly seen: FingerprintSet;
  private readonly evalInstructions = new Set<string>();
  /** The attributes JSON of each edit (category attributes, then the edit's). */
  private readonly attributesOf = new Map<Edit, string>();
  private readonly byName: Map<string, Category>;
  private readonly evalDrawer: Drawer;
  private readonly trainDrawer: Drawer;
  private explicitDone = 0;
  private evalDone = 0;
  private trainDone = 0;

  constructor(
    private readonly set: PromptSet,
    private readonly opts: ExpandOptions,
  ) {
    checkExpandOptions(opts);
    this.seen = new FingerprintSet(Math.max(1024, set.eval.rows.length + set.eval.count + opts.count));
    this.byName = new Map(set.categories.map((c) => [c.name, c]));
    this.evalDrawer = new Drawer(new Prng(set.eval.seed, EVAL_STREAM), set);
    this.trainDrawer = new Drawer(new Prng(opts.seed, TRAIN_STREAM), set);
  }

  /** The next rows, at most `max`; a batch of 0 rows once all are drawn. */
  next(max: number): RowBatch {
    const b = emptyBatch();
    const { set } = this;
    while (b.rows < max && this.explicitDone < set.eval.rows.length) {
      const r = set.eval.rows[this.explicitDone++];
      const cat = this.byName.get(r.category)!;
      const fp = fingerprint(r.source, r.instruction);
      this.seen.add(fp[0], fp[1]); // explicit eval rows are distinct: the loader checks it
      this.evalInstructions.add(r.instruction);
      push(b, 'eval', cat, r.source, r.instruction, r.target, JSON.stringify({ ...cat.attributes, ...r.attributes }));
    }
    while (b.rows < max && this.evalDone < set.eval.count) this.draw(b, this.evalDrawer, 'eval', this.evalDone++);
    while (b.rows < max && this.trainDone < this.opts.count) this.draw(b, this.trainDrawer, 'train', this.trainDone++);
    return b;
  }

  private draw(b: RowBatch, drawer: Drawer, split: 'train' | 'eval', done: number): void {
    const { set } = this;
    const cat = set.categories[pickWeighted(drawer.prng, set.categoryCumulative)];
    const holdout = split === 'train' && set.eval.holdout === 'instruction';
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (!drawer.draw(cat)) continue;
      const { source, instruction, target, edit } = drawer;
      if (holdout && this.evalInstructions.has(instruction)) continue;
      const fp = fingerprint(source, instruction);
      if (!this.seen.add(fp[0], fp[1])) continue;
      if (split === 'eval') this.evalInstructions.add(instruction);
      let attributes = this.attributesOf.get(edit);
      if (attributes === undefined) this.attributesOf.set(edit, (attributes = JSON.stringify({ ...cat.attributes, ...edit.attributes })));
      push(b, split, cat, source, instruction, target, attributes);
      return;
    }
    throw new UserError(
      `${set.path}: category "${cat.name}": no new distinct row after ${MAX_ATTEMPTS} draws (${done} ${split} rows drawn so far). ` +
        `Its (source, instruction) combinations are used up or its when/exclude rules reject nearly every draw: ` +
        `lower ${split === 'train' ? '--count' : 'eval.count'}, or add slot values, templates or edits.`,
    );
  }
}

function push(b: RowBatch, split: 'train' | 'eval', cat: Category, source: string, instruction: string, target: string, attributes: string): void {
  b.prompt_split.push(split);
  b.category.push(cat.name);
  b.source_prompt.push(source);
  b.instruction.push(instruction);
  b.target_prompt.push(target);
  b.identity_threshold.push(cat.identityThreshold);
  b.attributes.push(attributes);
  b.rows++;
}

/**
 * 64-bit fingerprint of (source, instruction): two 32-bit multiply-xorshift hashes of their UTF-16 code
 * units with different seeds, each finished by murmur3's avalanche. It only de-duplicates (a collision
 * among 10M rows has a chance of about 3e-6 and would replace one row by the next draw, the same way on
 * every run); sha256 here was a seventh of the expansion's time.
 */
function fingerprint(source: string, instruction: string): [number, number] {
  let a = 0x9747b28c ^ source.length;
  let b = 0x5bd1e995 ^ instruction.length;
  const mix = (s: string) => {
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      a = Math.imul(a ^ c, 0x85ebca6b);
      a ^= a >>> 13;
      b = Math.imul(b ^ c, 0xc2b2ae35);
      b ^= b >>> 16;
    }
  };
  mix(source);
  a = Math.imul(a ^ 0xffff, 0x85ebca6b); // the separator: ("ab", "c") and ("a", "bc") differ
  b = Math.imul(b ^ 0xffff, 0xc2b2ae35);
  mix(instruction);
  return [fmix32(a), fmix32(b)];
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
 * Draws candidate rows from one PRNG stream; slot values are drawn on first reference, in template
 * order. The last accepted candidate is left in source/instruction/target/edit.
 */
class Drawer {
  private readonly values = new Map<string, string>();
  private scope: Map<string, Slot> = new Map();
  source = '';
  instruction = '';
  target = '';
  edit!: Edit;

  constructor(
    readonly prng: Prng,
    private readonly set: PromptSet,
  ) {}

  private readonly resolve = (name: string): string => {
    const v = this.values.get(name);
    if (v !== undefined) return v;
    const slot = this.scope.get(name)!;
    const item = slot.items[pickWeighted(this.prng, slot.cumulative)];
    this.values.set(slot.name, item.value);
    for (const k of slot.vars) this.values.set(k, item.vars[k]);
    return this.values.get(name)!;
  };

  private readonly resolveWithSource = (name: string): string => (name === SOURCE_REF ? this.source : this.resolve(name));

  /** Draw one candidate; false when the draw is not allowed (set on an unmentioned slot, rules, no-op edit). */
  draw(cat: Category): boolean {
    const { set } = this;
    this.values.clear();
    this.scope = cat.scope;
    const sourceTemplate = set.sources[pickWeighted(this.prng, set.sourceCumulative)];
    const source = render(sourceTemplate, this.resolve);
    if (set.exclude.length && set.exclude.some((c) => matches(c, this.values))) return false;
    const edit = cat.edits[pickWeighted(this.prng, cat.editCumulative)];
    // `set` replaces a slot's value in the source template: only meaningful when the source mentions it.
    if (edit.set) for (const slot of edit.set.keys()) if (!sourceTemplate.refs.includes(slot)) return false;
    const instruction = render(edit.instructions[Math.floor(this.prng.uniform() * edit.instructions.length)], this.resolve);
    this.source = source;
    const target = edit.target ? render(edit.target, this.resolveWithSource) : this.renderSet(sourceTemplate, edit.set!);
    if (target === source) return false;
    if (!allowed(cat.when, cat.exclude, this.values) || !allowed(edit.when, edit.exclude, this.values)) return false;
    this.instruction = instruction;
    this.target = target;
    this.edit = edit;
    return true;
  }

  private renderSet(sourceTemplate: Template, set: Map<string, Template>): string {
    const replaced = new Map<string, string>();
    for (const [slot, t] of set) replaced.set(slot, render(t, this.resolve));
    return render(sourceTemplate, (name) => replaced.get(name) ?? this.resolve(name));
  }
}

/** Conditions see the slots the row mentions: an unmentioned slot fails `when` and never matches `exclude`. */
function allowed(when: Condition[], exclude: Condition[], values: Map<string, string>): boolean {
  if (when.length && !when.some((c) => matches(c, values))) return false;
  return !exclude.length || !exclude.some((c) => matches(c, values));
}

function matches(c: Condition, values: Map<string, string>): boolean {
  for (const [slot, accepted] of c) {
    const v = values.get(slot);
    if (v === undefined || !accepted.has(v)) return false;
  }
  return true;
}
