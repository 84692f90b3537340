/**
 * The rules language of the verdict (issue 11): named conditions over a pair's scores, per category and
 * a default, written in the pipeline config (`rules:`) and the prompt set (a category's `rules:`).
 *
 *   rules:
 *     default:
 *       not_edited: edit.magnitude >= 0.02
 *       unsafe: [safety.edited_porn < 0.7, safety.edited_hentai < 0.7]
 *     categories:
 *       expression: { no_smile: expression.happy_gain >= 0.3, not_edited: null }
 *
 * A condition is `<score> <op> <number>` (op: >=, <=, >, <, ==, !=) or `<score> in [<low>, <high>]`
 * (both ends included); a rule is one condition or a list of them (all must hold); the rule's name is
 * the reject reason when it fails. A score that could not be measured (null) fails every condition on
 * it. The grammar is four token kinds, so it is parsed here by one regular expression rather than
 * with a parser library.
 */
import { SCORE_NAMES, scorerOf, TEXT_NAMES, type ScorerName } from './config.ts';

/** The identity stage's score a rule may name (the identity threshold itself stays `identity.threshold`). */
export const IDENTITY_SCORES = ['identity.similarity'] as const;

export type RuleText = string | string[];
/** A rule table as written: name → condition(s); null in a category (or prompt set) removes a default rule. */
export type RuleTable = Record<string, RuleText | null>;

export interface RulesConfig {
  /** The rules of every category; absent: the built-in defaults of the enabled scorers (defaultRules). */
  default?: RuleTable;
  /** Per category: added to the default (a rule of the same name replaces the default's; null removes it). */
  categories?: Record<string, RuleTable>;
}

export type Operator = '>=' | '<=' | '>' | '<' | '==' | '!=' | 'in';

export interface Condition {
  score: string;
  op: Operator;
  value: number;
  /** The upper end of `in [value, high]`. */
  high?: number;
}

export interface Rule {
  name: string;
  conditions: Condition[];
  /** The rule as written, for messages and pictures. */
  text: string;
}

const RULE_NAME = /^[a-z][a-z0-9_]*$/;
const NUMBER = '([-+]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][-+]?\\d+)?)';
const COMPARISON = new RegExp(`^\\s*([a-z][a-z0-9_]*\\.[a-z][a-z0-9_]*)\\s*(>=|<=|==|!=|>|<)\\s*${NUMBER}\\s*$`);
const RANGE = new RegExp(`^\\s*([a-z][a-z0-9_]*\\.[a-z][a-z0-9_]*)\\s+in\\s*\\[\\s*${NUMBER}\\s*,\\s*${NUMBER}\\s*\\]\\s*$`);

/** The schema of one rule table (for the pipeline config and the prompt set). */
export const ruleTableSchema = {
  type: 'object',
  propertyNames: { pattern: RULE_NAME.source },
  additionalProperties: {
    type: ['string', 'array', 'null'],
    items: { type: 'string' },
    minItems: 1,
    'x-message': 'expected a condition such as "edit.magnitude >= 0.02", a list of them, or null',
  },
} as const;

export const rulesConfigSchema = {
  type: 'object',
  additionalProperties: false,
  description:
    'Rules the verdict applies after the identity threshold (docs/rules.md): name → condition such as "edit.magnitude >= 0.02" or "pose.yaw_delta in [0, 12]", or a list of conditions that must all hold; the first rule that fails names the reject reason. Absent: the built-in defaults of the enabled scorers.',
  properties: {
    default: { ...ruleTableSchema, description: 'Rules of every category. Absent: not_edited (edit scorer) and unsafe (safety scorer), see docs/rules.md; {}: none.' },
    categories: {
      type: 'object',
      additionalProperties: ruleTableSchema,
      description: 'Per category, rules added to the default ones; a rule of the same name replaces the default rule, null removes it.',
    },
  },
} as const;

/** The rules that apply when a config gives no `rules.default`: the checks a demanding user expects of each enabled scorer. */
export function defaultRules(enabled: readonly ScorerName[]): RuleTable {
  const rules: RuleTable = {};
  // ΔE of 2 is about "just noticeable": below it on average, the edit did not happen (docs/scorers.md, edit).
  if (enabled.includes('edit')) rules.not_edited = 'edit.magnitude >= 0.02';
  // nsfwjs is coarse on ordinary photos (its "sexy" class fires on clothed party photos): test porn and hentai only, at a high bar.
  if (enabled.includes('safety')) rules.unsafe = ['safety.source_porn < 0.7', 'safety.source_hentai < 0.7', 'safety.edited_porn < 0.7', 'safety.edited_hentai < 0.7'];
  return rules;
}

/** Parse one condition; throws an Error whose message says what was expected. */
export function parseCondition(text: string): Condition {
  const range = RANGE.exec(text);
  if (range) {
    const [low, high] = [Number(range[2]), Number(range[3])];
    if (!(low <= high)) throw new Error(`"${text}": the range [${low}, ${high}] is empty`);
    return { score: range[1], op: 'in', value: low, high };
  }
  const cmp = COMPARISON.exec(text);
  if (cmp) return { score: cmp[1], op: cmp[2] as Operator, value: Number(cmp[3]) };
  throw new Error(`"${text}" is not a condition; expected "<scorer>.<score> <op> <number>" (op: >=, <=, >, <, ==, !=) or "<scorer>.<score> in [<low>, <high>]"`);
}

/** Whether a condition holds for a value; an unmeasured value (null) never does. */
export function holds(c: Condition, v: number | null): boolean {
  if (v === null || Number.isNaN(v)) return false;
  switch (c.op) {
    case '>=': return v >= c.value;
    case '<=': return v <= c.value;
    case '>': return v > c.value;
    case '<': return v < c.value;
    case '==': return v === c.value;
    case '!=': return v !== c.value;
    case 'in': return v >= c.value && v <= c.high!;
  }
}

/** The first rule that fails for these scores (by name), or null when all hold. */
export function firstFailingRule(rules: readonly Rule[], score: (name: string) => number | null): string | null {
  for (const rule of rules) if (!rule.conditions.every((c) => holds(c, score(c.score)))) return rule.name;
  return null;
}

/** Every score the rules read (for the columns a recorded verdict needs). */
export function scoresRead(rules: Iterable<readonly Rule[]>): string[] {
  const names = new Set<string>();
  for (const set of rules) for (const r of set) for (const c of r.conditions) names.add(c.score);
  return [...names].sort();
}

export interface RuleContext {
  /** The scorers the run has. */
  enabled: readonly ScorerName[];
  /** Whether the identity stage runs (identity.similarity exists). */
  identity: boolean;
  /** Reject reasons the identity stage already uses: a rule may not take one of these names. */
  reservedNames?: readonly string[];
}

/**
 * One rule table checked and compiled. Problems (each naming `where.<rule>` and what was expected) are
 * pushed to `problems`; rules with problems are left out of the result. null entries are kept as removals.
 */
export function compileRuleTable(table: RuleTable, where: string, ctx: RuleContext, problems: string[]): (Rule | { name: string; remove: true })[] {
  const out: (Rule | { name: string; remove: true })[] = [];
  for (const [name, value] of Object.entries(table)) {
    const at = `${where}.${name}`;
    if (!RULE_NAME.test(name)) problems.push(`${at}: a rule name is lower-case letters, digits and _ (it becomes the reject reason)`);
    else if (ctx.reservedNames?.includes(name) || name.startsWith('no_face') || name.startsWith('multiple_faces')) problems.push(`${at}: "${name}" is a reject reason of the identity stage; name the rule otherwise`);
    if (value === null) {
      out.push({ name, remove: true });
      continue;
    }
    const texts = typeof value === 'string' ? [value] : value;
    if (!Array.isArray(texts) || texts.length === 0 || texts.some((t) => typeof t !== 'string')) {
      problems.push(`${at}: expected a condition such as "edit.magnitude >= 0.02", a list of them, or null`);
      continue;
    }
    const conditions: Condition[] = [];
    for (const text of texts) {
      try {
        const c = parseCondition(text);
        const problem = scoreProblem(c.score, ctx);
        if (problem) problems.push(`${at}: ${problem}`);
        else conditions.push(c);
      } catch (e) {
        problems.push(`${at}: ${(e as Error).message}`);
      }
    }
    if (conditions.length === texts.length) out.push({ name, conditions, text: texts.join(' and ') });
  }
  return out;
}

/** Why a rule cannot read this score, or null when it can. */
function scoreProblem(score: string, ctx: RuleContext): string | null {
  if ((IDENTITY_SCORES as readonly string[]).includes(score)) return ctx.identity ? null : `${score} needs the identity stage, and identity.enabled is false`;
  const scorer = scorerOf(score);
  if (scorer === null) {
    const prefix = score.slice(0, score.indexOf('.'));
    const known = (SCORE_NAMES as Record<string, readonly string[]>)[prefix];
    if (known) return `unknown score ${score}; the ${prefix} scorer gives ${known.join(', ')}`;
    if (prefix === 'identity') return `unknown score ${score}; the identity stage gives ${IDENTITY_SCORES.join(', ')}`;
    return `unknown scorer "${prefix}" in ${score}; known: identity, ${Object.keys(SCORE_NAMES).join(', ')}`;
  }
  if (TEXT_NAMES[scorer].includes(score)) return `${score} is a text, not a number a rule can compare`;
  if (!ctx.enabled.includes(scorer)) return `${score} needs the ${scorer} scorer, which is not in scorers.enabled (${ctx.enabled.join(', ') || 'none'})`;
  return null;
}

/** A table merged onto a rule list: same name replaces in place, a removal drops it, a new name is appended. */
export function mergeRules(base: readonly Rule[], over: readonly (Rule | { name: string; remove: true })[]): Rule[] {
  const out = [...base];
  for (const r of over) {
    const at = out.findIndex((b) => b.name === r.name);
    if ('remove' in r) {
      if (at >= 0) out.splice(at, 1);
    } else if (at >= 0) out[at] = r;
    else out.push(r);
  }
  return out;
}

/** Each category's rules, in the order they are tried. */
export type CategoryRules = Map<string, Rule[]>;

export interface ResolveInput {
  rules: RulesConfig | undefined;
  /** The prompt set's rules by category (from run.json's prompt_rules or the loaded set). */
  promptRules: Record<string, RuleTable>;
  categories: readonly string[];
  context: RuleContext;
}

/**
 * Every category's rules: the default table (the config's, else defaultRules), then the prompt set's
 * rules for the category, then the config's `rules.categories.<name>`. Problems (unknown score or scorer,
 * a rule on a disabled scorer, a malformed condition, a category the prompt set does not have) are
 * collected in `problems`, each naming its key.
 */
export function resolveRules(input: ResolveInput, problems: string[]): CategoryRules {
  const { rules, context } = input;
  const base = compileRuleTable(rules?.default ?? defaultRules(context.enabled), rules?.default ? 'rules.default' : 'rules.default (built in)', context, problems);
  const defaults = mergeRules([], base);
  for (const name of Object.keys(rules?.categories ?? {})) {
    if (!input.categories.includes(name)) problems.push(`rules.categories.${name}: the prompt set has no category "${name}" (it has ${input.categories.join(', ')})`);
  }
  const out: CategoryRules = new Map();
  for (const category of input.categories) {
    const fromPrompts = compileRuleTable(input.promptRules[category] ?? {}, `prompt set: categories.${category}.rules`, context, problems);
    const fromConfig = compileRuleTable(rules?.categories?.[category] ?? {}, `rules.categories.${category}`, context, problems);
    out.set(category, mergeRules(mergeRules(defaults, fromPrompts), fromConfig));
  }
  return out;
}

/** What a run's rules are made from: its config's sections and the prompt set's category rules. */
export interface RunRulesInput {
  config: { scorers?: { enabled: ScorerName[] }; rules?: RulesConfig; identity: { enabled: boolean } };
  promptRules: Record<string, RuleTable>;
  categories: readonly string[];
}

/** A run's rules by category; every problem is collected in `problems` (validateConfig reports them). */
export function runRules(input: RunRulesInput, problems: string[]): CategoryRules {
  const { config } = input;
  return resolveRules(
    { rules: config.rules, promptRules: input.promptRules, categories: input.categories, context: { enabled: config.scorers?.enabled ?? [], identity: config.identity.enabled, reservedNames: ['identity_below_threshold'] } },
    problems,
  );
}
