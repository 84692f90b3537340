import { UserError } from '../errors.ts';
import type { PipelineConfig } from '../config/index.ts';
import { promptRulesOf } from '../config/check.ts';
import { loadPromptSet } from '../prompts/grammar.ts';
import { runRules, type Rule } from '../scorers/rules.ts';
import type { ScorerName } from '../scorers/config.ts';

/**
 * The rules `pairgen score` judges one pair by: with a config, its rules and its prompt set's for the
 * category (which must be one of the set's); without, the built-in default rules of the scorers that run.
 * `promptThreshold` is the prompt set's identity threshold of the category (null: none).
 */
export function verbRules(config: PipelineConfig | undefined, configFile: string | undefined, enabled: ScorerName[], identity: boolean, category: string): { rules: Rule[]; promptThreshold: number | null } {
  const problems: string[] = [];
  if (!config) {
    const rules = runRules({ config: { scorers: { enabled }, identity: { enabled: identity } }, promptRules: {}, categories: [category] }, problems);
    return { rules: rules.get(category)!, promptThreshold: null };
  }
  const set = loadPromptSet(config.prompts.set);
  const names = set.categories.map((c) => c.name);
  if (category && !names.includes(category)) throw new UserError(`--category ${category}: the prompt set of ${configFile} has no such category (it has ${names.join(', ')})`);
  const rules = runRules({ config: { ...config, scorers: { enabled } }, promptRules: promptRulesOf(set), categories: category ? names : [...names, category] }, problems);
  if (problems.length) throw new UserError(`${configFile}: ${problems[0]}`);
  return { rules: rules.get(category)!, promptThreshold: set.categories.find((c) => c.name === category)?.identityThreshold ?? null };
}
