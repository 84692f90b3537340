import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { loadPipelineConfig, type PipelineConfig } from './index.ts';
import { EXECUTION_PROVIDERS, MAX_PROMPT_ROWS } from './schema.ts';
import { isUserError, UserError } from '../errors.ts';
import { loadPromptSet } from '../prompts/grammar.ts';
import { localModels } from '../models/index.ts';
import { runRules, type RuleTable } from '../scorers/rules.ts';
import type { PromptSet } from '../prompts/grammar.ts';

/** The prompt set's rules by category (only categories that have some): what run.json records as prompt_rules. */
export function promptRulesOf(set: PromptSet): Record<string, RuleTable> {
  return Object.fromEntries(set.categories.filter((c) => Object.keys(c.rules).length > 0).map((c) => [c.name, c.rules]));
}

export interface CheckReport {
  file: string;
  /** Everything that would stop a run, each naming the key or file and what was expected. */
  problems: string[];
  /** One line per stage when it is fine. */
  summary: string[];
  /** The config's leading comment (where its models come from), shown when a model file is missing. */
  howToGetModels: string | null;
}

export interface ValidateOptions {
  /** The prompt set's categories when the caller has them (work: from run.json); otherwise the set is loaded. */
  categories?: string[];
  /** The prompt set's category rules, with `categories` (work: run.json's prompt_rules). */
  promptRules?: Record<string, RuleTable>;
  /** Open the identity models (false: the caller opens the same scorer right after, as work does). */
  openIdentityModels?: boolean;
  /**
   * Refuse execution providers this machine cannot load (`pairgen check`; `work` asks the same through
   * requireProviders). Off for `plan`: a CPU-only submit host plans runs for GPU workers.
   */
  probeProviders?: boolean;
}

/**
 * The one validation of a loaded pipeline config, without running a model: `pairgen check` reports
 * it, `plan` refuses to write a run that fails it, and `work` refuses before it tries a shard (a
 * problem here would fail every shard). The prompt set, the runtime, then each stage by its own check
 * (teacher/check.ts: model folders and ONNX headers, schedulers, mode and size rules, img2img sources;
 * identity/check.ts: face models, per-category thresholds against the prompt set). Every problem is
 * collected, not just the first.
 */
export async function validateConfig(config: PipelineConfig, options: ValidateOptions = {}): Promise<Omit<CheckReport, 'file' | 'howToGetModels'> & { missing: boolean }> {
  const report = { problems: [] as string[], summary: [] as string[], missing: false };
  const prompts = options.categories ? { names: options.categories, rules: options.promptRules ?? {} } : checkPrompts(config, report);
  const categories = prompts?.names ?? null;
  if (prompts) checkRules(config, prompts, report);
  const count = config.prompts.count ?? config.pairs;
  if (count > MAX_PROMPT_ROWS) {
    report.problems.push(`prompts.count: ${config.prompts.count === null ? `null expands one prompt row per pair (pairs: ${config.pairs})` : count}, more than the ${MAX_PROMPT_ROWS} rows a plan expands; set prompts.count to at most ${MAX_PROMPT_ROWS} (prompts then repeat with new seeds)`);
  }
  config.runtime.execution_providers.forEach((ep, i) => {
    if (!EXECUTION_PROVIDERS.includes(ep)) report.problems.push(`runtime.execution_providers.${i}: unknown execution provider ${JSON.stringify(ep)}; known: ${EXECUTION_PROVIDERS.join(', ')}`);
  });
  if (options.probeProviders) await checkProviders(config.runtime.execution_providers, report);
  // The stage checks read model files (ONNX, sharp) and load only here, so that a config that does not load fails fast.
  const [{ checkTeacher }, { checkIdentity }] = await Promise.all([import('../teacher/check.ts'), import('../identity/check.ts')]);
  const stages = [await checkTeacher(config.teacher), await checkIdentity(config.identity, config.runtime, categories, options.openIdentityModels ?? true)];
  for (const stage of stages) {
    report.problems.push(...stage.problems);
    if (stage.summary) report.summary.push(stage.summary);
  }
  report.missing = stages.some((s) => s.missing);
  return report;
}

/** validateConfig's problems as one UserError line starting with `where` (plan, work); nothing when there are none. */
export function refuseProblems(problems: string[], where: string): void {
  if (problems.length === 0) return;
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''}: \`pairgen check\` lists them all)` : '';
  throw new UserError(`${where}: ${problems[0]}${more}`);
}

/** `pairgen check`: load the config (a bad config throws its UserError), fetch its models on a store into this node's cache (src/models), then validateConfig. */
export async function checkPipeline(file: string, sets: string[] = []): Promise<CheckReport> {
  const { config, file: abs } = loadPipelineConfig(file, sets);
  const { problems, summary, missing } = await validateConfig((await localModels(config)).config, { probeProviders: true });
  return { file: abs, problems, summary, howToGetModels: missing ? leadingComment(abs) : null };
}

/**
 * Each provider the config lists must load here (onnxruntime never falls back from one that does not),
 * and the summary says which ones this install can load. A CPU-only config needs no probe: the CPU
 * provider is inside the binding.
 */
async function checkProviders(providers: string[], report: { problems: string[]; summary: string[] }): Promise<void> {
  if (providers.every((p) => p === 'cpu') || !providers.every((p) => EXECUTION_PROVIDERS.includes(p))) return;
  const { builtProviders, formatProviderReport, probeProviders, selectDevice } = await import('../onnx/providers.ts');
  let device: string;
  try {
    device = selectDevice(providers).label;
  } catch (e) {
    if (!isUserError(e)) throw e;
    report.problems.push(`runtime.execution_providers: ${e.message}`);
    return;
  }
  const statuses = await probeProviders([...new Set(['cpu', ...builtProviders(), ...providers])]);
  providers.forEach((p, i) => {
    const status = statuses.find((s) => s.name === p)!;
    if (!status.loadable) report.problems.push(`runtime.execution_providers.${i}: ${p} cannot be used on this machine (${formatProviderReport(statuses)}): ${status.problem}`);
  });
  report.summary.push(`runtime: [${providers.join(', ')}] on ${device}; ${formatProviderReport(statuses)}`);
}

/** The scorers and every category's rules: unknown scores or scorers, rules on disabled scorers, malformed conditions. */
function checkRules(config: PipelineConfig, prompts: { names: string[]; rules: Record<string, RuleTable> }, report: { problems: string[]; summary: string[] }): void {
  const problems: string[] = [];
  const rules = runRules({ config, promptRules: prompts.rules, categories: prompts.names }, problems);
  report.problems.push(...new Set(problems));
  if (problems.length || (!config.scorers && !config.rules && Object.keys(prompts.rules).length === 0)) return;
  const enabled = config.scorers?.enabled ?? [];
  const counts = [...rules].map(([c, r]) => `${c} ${r.length}`).join(', ');
  report.summary.push(`scorers: ${enabled.join(', ') || 'none'}; rules per category: ${counts}`);
}

/** The prompt set's category names and rules, or null when it does not load. */
function checkPrompts(config: PipelineConfig, report: { problems: string[]; summary: string[] }): { names: string[]; rules: Record<string, RuleTable> } | null {
  try {
    const set = loadPromptSet(config.prompts.set);
    const names = set.categories.map((c) => c.name);
    report.summary.push(`prompts: ${set.name} (${names.length} categories: ${names.join(', ')})`);
    return { names, rules: promptRulesOf(set) };
  } catch (e) {
    if (!isUserError(e)) throw e;
    report.problems.push(`prompts.set: ${e.message}`);
    return null;
  }
}

/** The comment block at the top of a config file, without the `#` marks. */
function leadingComment(file: string): string | null {
  const lines: string[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (/^\s*#/.test(line)) lines.push(line.replace(/^\s*# ?/, ''));
    else if (line.trim() === '' && lines.length === 0) continue;
    else break;
  }
  return lines.length ? lines.join('\n').trim() : null;
}

/** The report as text: problems first, then how to get the models, or the summary when all is well. */
export function formatCheckReport(r: CheckReport, cwd = process.cwd()): string {
  const name = relative(cwd, r.file).startsWith('..') ? r.file : relative(cwd, r.file);
  if (r.problems.length === 0) return [`${name}: ok`, ...r.summary.map((s) => `  ${s}`)].join('\n');
  if (r.problems.length === 1 && !r.howToGetModels) return `${name}: ${r.problems[0]}`;
  const out = [`${name}: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}`, ...r.problems.map((p) => `  - ${p}`)];
  if (r.howToGetModels) out.push('', `How to get the models (from ${name}):`, ...r.howToGetModels.split('\n').map((l) => `  ${l}`));
  return out.join('\n');
}

