import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { loadPipelineConfig, type PipelineConfig } from './index.ts';
import { isUserError } from '../errors.ts';
import { checkIdentity } from '../identity/check.ts';
import { loadPromptSet } from '../prompts/index.ts';
import { checkTeacher } from '../teacher/check.ts';

export interface CheckReport {
  file: string;
  /** Everything that would stop a run, each naming the key or file and what was expected. */
  problems: string[];
  /** One line per stage when it is fine. */
  summary: string[];
  /** The config's leading comment (where its models come from), shown when a model file is missing. */
  howToGetModels: string | null;
}

/**
 * `pairgen check`: load the config (a bad config throws its UserError), then check, without running any
 * model, everything a run will read: the prompt set, then each stage by its own check (teacher/check.ts:
 * model folders, sources, mode; identity/check.ts: face models, per-category thresholds against the
 * prompt set). Every problem is collected, not just the first.
 */
export async function checkPipeline(file: string, sets: string[] = []): Promise<CheckReport> {
  const { config, file: abs } = loadPipelineConfig(file, sets);
  const report: CheckReport = { file: abs, problems: [], summary: [], howToGetModels: null };
  const categories = checkPrompts(config, report);
  const stages = [await checkTeacher(config.teacher), await checkIdentity(config.identity, config.runtime, categories)];
  for (const stage of stages) {
    report.problems.push(...stage.problems);
    if (stage.summary) report.summary.push(stage.summary);
  }
  if (stages.some((s) => s.missing)) report.howToGetModels = leadingComment(abs);
  return report;
}

/** The prompt set's category names, or null when it does not load. */
function checkPrompts(config: PipelineConfig, report: CheckReport): string[] | null {
  try {
    const set = loadPromptSet(config.prompts.set);
    const names = set.categories.map((c) => c.name);
    report.summary.push(`prompts: ${set.name} (${names.length} categories: ${names.join(', ')})`);
    return names;
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
  const out = [`${name}: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}`, ...r.problems.map((p) => `  - ${p}`)];
  if (r.howToGetModels) out.push('', `How to get the models (from ${name}):`, ...r.howToGetModels.split('\n').map((l) => `  ${l}`));
  return out.join('\n');
}

