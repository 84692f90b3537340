/**
 * The prompt-set grammar: a YAML file validated by a JSON Schema (ajv) and then by semantic checks
 * (every `{ref}` defined, condition values known...). Every error names the file, line, key path
 * and what was expected, as a UserError. See docs/prompts.md for the grammar.
 */
import { createHash } from 'node:crypto';
import { Ajv, type ErrorObject } from 'ajv';
import { LineCounter, isMap, isPair, isScalar, type Document, type Node as YamlNode } from 'yaml';
import { UserError } from '../errors.ts';
import { cumulativeWeights } from './prng.ts';
import { parseTemplate, type Template } from './template.ts';
import { parseYamlBytes, readBounded } from './yaml.ts';

export interface SlotItem {
  value: string;
  weight: number;
  /** Values that travel with this item, e.g. pronouns for a gender presentation. */
  vars: Record<string, string>;
}

export interface Slot {
  name: string;
  items: SlotItem[];
  cumulative: Float64Array;
  vars: string[];
}

/** A slot-value condition: matches when every named slot was drawn with one of the listed values. */
export type Condition = Map<string, Set<string>>;

export interface Edit {
  instructions: Template[];
  /** The target prompt template, or null when the target is the source template re-rendered with `set`. */
  target: Template | null;
  set: Map<string, Template> | null;
  weight: number;
  attributes: Record<string, string>;
  when: Condition[];
  exclude: Condition[];
}

export interface Category {
  name: string;
  weight: number;
  identityThreshold: number | null;
  /** The category's verdict rules (src/scorers/rules.ts), checked against the run's scorers at plan time. */
  rules: Record<string, string | string[] | null>;
  attributes: Record<string, string>;
  slots: Map<string, Slot>;
  /** Every name a template of this category may reference (slot or var) → the slot that defines it. */
  scope: Map<string, Slot>;
  edits: Edit[];
  editCumulative: Float64Array;
  when: Condition[];
  exclude: Condition[];
}

export interface EvalRowSpec {
  category: string;
  source: string;
  instruction: string;
  target: string;
  attributes: Record<string, string>;
}

export interface PromptSet {
  path: string;
  name: string;
  description: string;
  /** sha256 (hex) of the YAML file's bytes. */
  sha256: string;
  slots: Map<string, Slot>;
  sources: Template[];
  sourceCumulative: Float64Array;
  /** Source combinations that make no sense (checked on the slots the source prompt mentions). */
  exclude: Condition[];
  categories: Category[];
  categoryCumulative: Float64Array;
  eval: { count: number; seed: number; holdout: 'pair' | 'instruction'; rows: EvalRowSpec[] };
}

const NAME = '^[a-z][a-z0-9_]*$';
/** In a target template, {source} is the row's rendered source prompt. */
export const SOURCE_REF = 'source';
const weight = { type: 'number', exclusiveMinimum: 0 };
const stringMap = { type: 'object', additionalProperties: { type: 'string' } };
const weightedList = {
  type: 'array',
  minItems: 1,
  items: {
    anyOf: [
      { type: 'string' },
      {
        type: 'object',
        additionalProperties: false,
        required: ['value'],
        properties: { value: { type: 'string' }, weight, vars: { type: 'object', propertyNames: { pattern: NAME }, additionalProperties: { type: 'string' } } },
      },
    ],
  },
};
const slotMap = { type: 'object', propertyNames: { pattern: NAME }, additionalProperties: weightedList };
const condition = {
  type: 'object',
  minProperties: 1,
  additionalProperties: { anyOf: [{ type: 'string' }, { type: 'array', minItems: 1, items: { type: 'string' } }] },
};
const conditions = { anyOf: [condition, { type: 'array', items: condition }] };

const schema = {
  type: 'object',
  additionalProperties: false,
  required: ['sources', 'categories'],
  properties: {
    name: { type: 'string' },
    description: { type: 'string' },
    slots: slotMap,
    exclude: conditions,
    sources: {
      type: 'array',
      minItems: 1,
      items: {
        anyOf: [
          { type: 'string' },
          { type: 'object', additionalProperties: false, required: ['template'], properties: { template: { type: 'string' }, weight } },
        ],
      },
    },
    categories: {
      type: 'object',
      minProperties: 1,
      propertyNames: { pattern: NAME },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['edits'],
        properties: {
          weight,
          identity_threshold: { type: 'number', minimum: -1, maximum: 1 },
          // Checked against the run's scorers at plan time (src/scorers/rules.ts); here only the shape.
          rules: { type: 'object', additionalProperties: { anyOf: [{ type: 'string' }, { type: 'array', minItems: 1, items: { type: 'string' } }, { type: 'null' }] } },
          attributes: stringMap,
          slots: slotMap,
          when: conditions,
          exclude: conditions,
          edits: {
            type: 'array',
            minItems: 1,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['instructions'],
              properties: {
                instructions: { anyOf: [{ type: 'string' }, { type: 'array', minItems: 1, items: { type: 'string' } }] },
                target: { type: 'string' },
                set: { type: 'object', minProperties: 1, additionalProperties: { type: 'string' } },
                weight,
                attributes: stringMap,
                when: conditions,
                exclude: conditions,
              },
            },
          },
        },
      },
    },
    eval: {
      type: 'object',
      additionalProperties: false,
      properties: {
        count: { type: 'integer', minimum: 0 },
        seed: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
        holdout: { enum: ['pair', 'instruction'] },
        rows: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['category', 'source', 'instruction', 'target'],
            properties: { category: { type: 'string' }, source: { type: 'string' }, instruction: { type: 'string' }, target: { type: 'string' }, attributes: stringMap },
          },
        },
      },
    },
  },
} as const;

const validate = new Ajv({ allErrors: true, verbose: true, strict: true }).compile(schema);

/**
 * One error to show out of ajv's list: the deepest one (anyOf branches report at the value and
 * below it), preferring a specific complaint over "wrong type" and over the anyOf summary.
 */
function mostSpecific(errors: ErrorObject[]): ErrorObject {
  const rank = (e: ErrorObject) => e.instancePath.split('/').length * 10 + (e.keyword === 'type' ? 0 : e.keyword === 'anyOf' ? 1 : 2);
  return errors.reduce((best, e) => (rank(e) > rank(best) ? e : best));
}

type Path = (string | number)[];

/** Load, validate and compile a prompt set. Throws UserError naming file, line and key on bad input. */
export function loadPromptSet(path: string): PromptSet {
  let bytes: Buffer;
  try {
    bytes = readBounded(path, path);
  } catch (e) {
    if (e instanceof UserError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`${path}: cannot read the prompt set (${code === 'ENOENT' ? 'no such file' : code ?? String(e)})`, { cause: e });
  }
  const { doc, lines, value: raw } = parseYamlBytes(bytes, path, { syntax: 'malformed YAML' });
  const at = locator(path, doc, lines);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new UserError(`${path}:1:1: expected a YAML mapping with keys sources, categories (and optional name, description, slots, eval)`);
  if (!validate(raw)) throw describeSchemaError(mostSpecific(validate.errors!), at);
  return compile(raw as RawSet, path, createHash('sha256').update(bytes).digest('hex'), at);
}

type Locate = (path: Path, message: string, key?: boolean) => UserError;

/** Build UserErrors that point at a node of the document: "file:line:col: key.path: message". */
function locator(file: string, doc: Document, lines: LineCounter): Locate {
  return (path, message, key = false) => {
    let node: unknown = doc.contents;
    let found: YamlNode | null = doc.contents as YamlNode | null;
    for (const seg of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === seg);
        if (!pair) break;
        found = (key ? (pair.key as YamlNode) : (pair.value as YamlNode | null)) ?? (pair.key as YamlNode);
        node = pair.value;
        if (key && seg === path[path.length - 1]) break;
      } else if (node && typeof node === 'object' && 'items' in node && typeof seg === 'number') {
        node = (node as { items: unknown[] }).items[seg];
        if (!node) break;
        found = node as YamlNode;
      } else break;
    }
    const offset = found?.range?.[0] ?? 0;
    const { line, col } = lines.linePos(offset);
    const where = path.length ? `${formatPath(path)}: ` : '';
    return new UserError(`${file}:${line}:${col}: ${where}${message}`);
  };
}

function formatPath(path: Path): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

function describeSchemaError(e: ErrorObject, at: Locate): UserError {
  const path: Path = e.instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties':
      return at([...path, p.additionalProperty as string], `unknown key "${p.additionalProperty}"${allowedKeys(e)}`, true);
    case 'required':
      return at(path, `missing key "${p.missingProperty}"`);
    case 'type':
      return at(path, `expected ${article(String(p.type))}`);
    case 'minItems':
      return at(path, `expected a list with at least ${p.limit} item${p.limit === 1 ? '' : 's'}`);
    case 'minProperties':
      return at(path, `expected a mapping with at least ${p.limit} key${p.limit === 1 ? '' : 's'}`);
    case 'propertyNames':
    case 'pattern': {
      // a key failing `propertyNames`: ajv names it on the error itself
      const name = (e as ErrorObject & { propertyName?: string }).propertyName ?? (p.propertyName as string);
      return at([...path, name], `bad name "${name}": expected lowercase letters, digits and _ (starting with a letter)`, true);
    }
    case 'enum':
      return at(path, `expected one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`);
    case 'exclusiveMinimum':
      return at(path, `expected a number > ${p.limit}`);
    case 'minimum':
    case 'maximum':
      return at(path, `expected a number ${e.keyword === 'minimum' ? '>=' : '<='} ${p.limit}`);
    case 'anyOf':
      return at(path, anyOfHint(path));
    default:
      return at(path, e.message ?? 'invalid value');
  }
}

function allowedKeys(e: ErrorObject): string {
  const props = (e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties;
  return props ? ` (expected one of: ${Object.keys(props).join(', ')})` : '';
}

function article(type: string): string {
  return { object: 'a mapping', array: 'a list', string: 'a string', number: 'a number', integer: 'an integer', boolean: 'true or false' }[type] ?? type;
}

function anyOfHint(path: Path): string {
  const last = path[path.length - 1];
  if (path[0] === 'sources') return 'expected a template string or { template, weight }';
  if (last === 'instructions') return 'expected an instruction template or a list of them';
  if (last === 'when' || last === 'exclude') return 'expected a condition { slot: value or [values] } or a list of them';
  if (path.includes('when') || path.includes('exclude')) return 'expected a condition { slot: value or [values] }';
  return 'expected a string or { value, weight, vars }';
}

// ---- compilation: raw (schema-valid) YAML → PromptSet, with the semantic checks ----

type RawItem = string | { value: string; weight?: number; vars?: Record<string, string> };
type RawCondition = Record<string, string | string[]>;
interface RawEdit {
  instructions: string | string[];
  target?: string;
  set?: Record<string, string>;
  weight?: number;
  attributes?: Record<string, string>;
  when?: RawCondition | RawCondition[];
  exclude?: RawCondition | RawCondition[];
}
interface RawCategory {
  weight?: number;
  identity_threshold?: number;
  rules?: Record<string, string | string[] | null>;
  attributes?: Record<string, string>;
  slots?: Record<string, RawItem[]>;
  when?: RawCondition | RawCondition[];
  exclude?: RawCondition | RawCondition[];
  edits: RawEdit[];
}
interface RawSet {
  name?: string;
  description?: string;
  slots?: Record<string, RawItem[]>;
  exclude?: RawCondition | RawCondition[];
  sources: (string | { template: string; weight?: number })[];
  categories: Record<string, RawCategory>;
  eval?: { count?: number; seed?: number; holdout?: 'pair' | 'instruction'; rows?: (Omit<EvalRowSpec, 'attributes'> & { attributes?: Record<string, string> })[] };
}

function compile(raw: RawSet, path: string, sha256: string, at: Locate): PromptSet {
  const slots = compileSlots(raw.slots ?? {}, ['slots'], at);
  const sourceScope = scopeOf([slots], ['slots'], at);

  const sources = raw.sources.map((s, i) => {
    const text = typeof s === 'string' ? s : s.template;
    return template(text, sourceScope, typeof s === 'string' ? ['sources', i] : ['sources', i, 'template'], at);
  });
  const sourceWeights = raw.sources.map((s) => (typeof s === 'string' ? 1 : s.weight ?? 1));

  const categories = Object.entries(raw.categories).map(([name, rc]) => {
    const base: Path = ['categories', name];
    const own = compileSlots(rc.slots ?? {}, [...base, 'slots'], at);
    for (const slotName of own.keys()) {
      if (slots.has(slotName)) throw at([...base, 'slots', slotName], `slot "${slotName}" is already a source slot; give the category's slot another name`, true);
    }
    const scope = scopeOf([slots, own], [...base, 'slots'], at);
    const edits = rc.edits.map((re, i) => compileEdit(re, [...base, 'edits', i], scope, slots, at));
    return {
      name,
      weight: rc.weight ?? 1,
      identityThreshold: rc.identity_threshold ?? null,
      rules: rc.rules ?? {},
      attributes: rc.attributes ?? {},
      slots: own,
      scope,
      edits,
      editCumulative: cumulativeWeights(edits.map((e) => e.weight)),
      when: compileConditions(rc.when, [...base, 'when'], scope, at),
      exclude: compileConditions(rc.exclude, [...base, 'exclude'], scope, at),
    } satisfies Category;
  });

  const byName = new Map(categories.map((c) => [c.name, c]));
  const seenEval = new Map<string, number>();
  const rows = (raw.eval?.rows ?? []).map((r, i) => {
    if (!byName.has(r.category)) throw at(['eval', 'rows', i, 'category'], `unknown category "${r.category}" (expected one of: ${[...byName.keys()].join(', ')})`);
    const key = `${r.source}\u0000${r.instruction}`;
    if (seenEval.has(key)) throw at(['eval', 'rows', i], `repeats the source + instruction of eval.rows[${seenEval.get(key)}]`);
    seenEval.set(key, i);
    return { ...r, attributes: r.attributes ?? {} };
  });

  return {
    path,
    name: raw.name ?? path.replace(/^.*\//, '').replace(/\.ya?ml$/, ''),
    description: raw.description ?? '',
    sha256,
    slots,
    sources,
    sourceCumulative: cumulativeWeights(sourceWeights),
    exclude: compileConditions(raw.exclude, ['exclude'], sourceScope, at),
    categories,
    categoryCumulative: cumulativeWeights(categories.map((c) => c.weight)),
    eval: { count: raw.eval?.count ?? 0, seed: raw.eval?.seed ?? 0, holdout: raw.eval?.holdout ?? 'pair', rows },
  };
}

function compileSlots(raw: Record<string, RawItem[]>, base: Path, at: Locate): Map<string, Slot> {
  const out = new Map<string, Slot>();
  for (const [name, list] of Object.entries(raw)) {
    if (name === SOURCE_REF) throw at([...base, name], `"${SOURCE_REF}" is reserved (target templates use {${SOURCE_REF}} for the rendered source prompt); rename the slot`, true);
    const items = list.map((it) => (typeof it === 'string' ? { value: it, weight: 1, vars: {} } : { value: it.value, weight: it.weight ?? 1, vars: it.vars ?? {} }));
    const vars = Object.keys(items[0].vars).sort();
    items.forEach((it, i) => {
      const mine = Object.keys(it.vars).sort();
      if (mine.join() !== vars.join()) {
        throw at([...base, name, i], `every item of slot "${name}" must define the same vars (item 0 defines: ${vars.join(', ') || 'none'}; this one: ${mine.join(', ') || 'none'})`);
      }
    });
    const seen = new Set<string>();
    items.forEach((it, i) => {
      if (seen.has(it.value)) throw at([...base, name, i], `duplicate value "${it.value}" in slot "${name}" (merge them and add the weights)`);
      seen.add(it.value);
    });
    out.set(name, { name, items, cumulative: cumulativeWeights(items.map((i) => i.weight)), vars });
  }
  return out;
}

/** Every referencable name → its slot; a var name must not collide with a slot or another var. */
function scopeOf(groups: Map<string, Slot>[], base: Path, at: Locate): Map<string, Slot> {
  const scope = new Map<string, Slot>();
  for (const group of groups) for (const slot of group.values()) scope.set(slot.name, slot);
  for (const group of groups) {
    for (const slot of group.values()) {
      for (const v of slot.vars) {
        if (v === SOURCE_REF) throw at(group === groups[groups.length - 1] ? [...base, slot.name] : ['slots', slot.name], `var name "${SOURCE_REF}" is reserved for the rendered source prompt; rename it`);
        const other = scope.get(v);
        if (other) {
          throw at(group === groups[groups.length - 1] ? [...base, slot.name] : ['slots', slot.name], `var "${v}" of slot "${slot.name}" clashes with ${other.name === v ? 'the slot' : `a var of slot "${other.name}"`} named "${v}"`);
        }
        scope.set(v, slot);
      }
    }
  }
  return scope;
}

function template(text: string, scope: Map<string, Slot>, path: Path, at: Locate, allowSource = false): Template {
  const t = parseTemplate(text);
  if (typeof t === 'string') throw at(path, t);
  for (const ref of t.refs) {
    if (ref === SOURCE_REF && allowSource) continue;
    if (!scope.has(ref)) {
      const known = [...scope.keys()];
      throw at(path, `{${ref}} is not a defined slot or var (defined here: ${known.length ? known.join(', ') : 'none'})`);
    }
  }
  return t;
}

function compileEdit(re: RawEdit, base: Path, scope: Map<string, Slot>, sourceSlots: Map<string, Slot>, at: Locate): Edit {
  const list = typeof re.instructions === 'string' ? [re.instructions] : re.instructions;
  const instructions = list.map((s, i) => template(s, scope, typeof re.instructions === 'string' ? [...base, 'instructions'] : [...base, 'instructions', i], at));
  if ((re.target === undefined) === (re.set === undefined)) {
    throw at(base, 'an edit needs exactly one of `target` (the edited portrait\'s prompt template) or `set` (source slots to replace in the source template)');
  }
  let set: Map<string, Template> | null = null;
  if (re.set) {
    set = new Map();
    for (const [slotName, value] of Object.entries(re.set)) {
      const slot = sourceSlots.get(slotName);
      if (!slot) throw at([...base, 'set', slotName], `"${slotName}" is not a source slot (expected one of: ${[...sourceSlots.keys()].join(', ') || 'none'})`, true);
      if (slot.vars.length) throw at([...base, 'set', slotName], `slot "${slotName}" defines vars (${slot.vars.join(', ')}), which \`set\` cannot change; write a \`target\` template instead`, true);
      set.set(slotName, template(value, scope, [...base, 'set', slotName], at));
    }
  }
  return {
    instructions,
    target: re.target === undefined ? null : template(re.target, scope, [...base, 'target'], at, true),
    set,
    weight: re.weight ?? 1,
    attributes: re.attributes ?? {},
    when: compileConditions(re.when, [...base, 'when'], scope, at),
    exclude: compileConditions(re.exclude, [...base, 'exclude'], scope, at),
  };
}

function compileConditions(raw: RawCondition | RawCondition[] | undefined, base: Path, scope: Map<string, Slot>, at: Locate): Condition[] {
  if (raw === undefined) return [];
  const list = Array.isArray(raw) ? raw : [raw];
  return list.map((c, i) => {
    const cpath = Array.isArray(raw) ? [...base, i] : base;
    const cond: Condition = new Map();
    for (const [slotName, v] of Object.entries(c)) {
      const slot = scope.get(slotName);
      if (!slot || slot.name !== slotName) {
        throw at([...cpath, slotName], `"${slotName}" is not a slot here (expected one of: ${[...scope.values()].filter((s, j, a) => a.indexOf(s) === j).map((s) => s.name).join(', ') || 'none'})`, true);
      }
      const values = Array.isArray(v) ? v : [v];
      values.forEach((value, j) => {
        if (!slot.items.some((it) => it.value === value)) {
          throw at(Array.isArray(v) ? [...cpath, slotName, j] : [...cpath, slotName], `"${value}" is not a value of slot "${slotName}"`);
        }
      });
      cond.set(slotName, new Set(values));
    }
    return cond;
  });
}
