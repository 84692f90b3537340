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

/** The same stream, synchronous; rows share their `attributes` object per edit (do not mutate). */
export function* expandRows(set: PromptSet, opts: ExpandOptions): Generator<PromptRow> {
  checkExpandOptions(opts);
  const seen = new FingerprintSet(Math.max(1024, set.eval.rows.length + set.eval.count + opts.count));
  const evalInstructions = new Set<string>();
  const attrsOf = new Map<object, Record<string, string>>();
  const attributes = (cat: Category, edit: Edit | null): Record<string, string> => {
    const key = edit ?? cat;
    let a = attrsOf.get(key);
    if (!a) attrsOf.set(key, (a = { ...cat.attributes, ...(edit?.attributes ?? {}) }));
    return a;
  };
  const byName = new Map(set.categories.map((c) => [c.name, c]));

  for (const r of set.eval.rows) {
    const cat = byName.get(r.category)!;
    const fp = fingerprint(r.source, r.instruction);
    seen.add(fp[0], fp[1]); // explicit eval rows are distinct: the loader checks it
    evalInstructions.add(r.instruction);
    yield row('eval', cat, r.source, r.instruction, r.target, { ...cat.attributes, ...r.attributes });
  }

  const draw = (prng: Prng, split: 'train' | 'eval', done: number): PromptRow => {
    const cat = set.categories[pickWeighted(prng, set.categoryCumulative)];
    const drawer = new Drawer(prng, cat.scope);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const r = drawer.row(set, cat);
      if (!r) continue;
      if (split === 'train' && set.eval.holdout === 'instruction' && evalInstructions.has(r.instruction)) continue;
      const fp = fingerprint(r.source, r.instruction);
      if (!seen.add(fp[0], fp[1])) continue;
      if (split === 'eval') evalInstructions.add(r.instruction);
      return row(split, cat, r.source, r.instruction, r.target, attributes(cat, r.edit));
    }
    throw new UserError(
      `${set.path}: category "${cat.name}": no new distinct row after ${MAX_ATTEMPTS} draws (${done} ${split} rows drawn so far). ` +
        `Its (source, instruction) combinations are used up or its when/exclude rules reject nearly every draw: ` +
        `lower ${split === 'train' ? '--count' : 'eval.count'}, or add slot values, templates or edits.`,
    );
  };

  const evalPrng = new Prng(set.eval.seed, EVAL_STREAM);
  for (let i = 0; i < set.eval.count; i++) yield draw(evalPrng, 'eval', i);
  const trainPrng = new Prng(opts.seed, TRAIN_STREAM);
  for (let i = 0; i < opts.count; i++) yield draw(trainPrng, 'train', i);
}

function row(split: 'train' | 'eval', cat: Category, source: string, instruction: string, target: string, attributes: Record<string, string>): PromptRow {
  return {
    prompt_id: promptId(cat.name, source, instruction, target),
    prompt_split: split,
    category: cat.name,
    source_prompt: source,
    instruction,
    target_prompt: target,
    identity_threshold: cat.identityThreshold,
    attributes,
  };
}

/** 64-bit fingerprint of (source, instruction): the first 8 bytes of their sha256. */
function fingerprint(source: string, instruction: string): [number, number] {
  const d = hash('sha256', `${source}\u0000${instruction}`, 'buffer');
  return [d.readUInt32BE(0), d.readUInt32BE(4)];
}

/** Draws one candidate row of a category; slot values are drawn on first reference, in template order. */
class Drawer {
  private readonly values = new Map<string, string>();
  constructor(
    private readonly prng: Prng,
    private readonly scope: Map<string, Slot>,
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

  /** A candidate, or null when the draw is not allowed (set on an unmentioned slot, rules, no-op edit). */
  row(set: PromptSet, cat: Category): { source: string; instruction: string; target: string; edit: Edit } | null {
    this.values.clear();
    const sourceTemplate = set.sources[pickWeighted(this.prng, set.sourceCumulative)];
    const source = render(sourceTemplate, this.resolve);
    if (set.exclude.some((c) => matches(c, this.values))) return null;
    const edit = cat.edits[pickWeighted(this.prng, cat.editCumulative)];
    // `set` replaces a slot's value in the source template: only meaningful when the source mentions it.
    if (edit.set) for (const slot of edit.set.keys()) if (!sourceTemplate.refs.includes(slot)) return null;
    const instruction = render(edit.instructions[Math.floor(this.prng.uniform() * edit.instructions.length)], this.resolve);
    const target = edit.target ? render(edit.target, (name) => (name === SOURCE_REF ? source : this.resolve(name))) : this.renderSet(sourceTemplate, edit.set!);
    if (target === source) return null;
    if (!allowed(cat.when, cat.exclude, this.values) || !allowed(edit.when, edit.exclude, this.values)) return null;
    return { source, instruction, target, edit };
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
  return !exclude.some((c) => matches(c, values));
}

function matches(c: Condition, values: Map<string, string>): boolean {
  for (const [slot, accepted] of c) {
    const v = values.get(slot);
    if (v === undefined || !accepted.has(v)) return false;
  }
  return true;
}
