import { InvalidArgumentError, type Command } from 'commander';
import { UserError } from '../errors.ts';
import type { ScorerName } from '../scorers/config.ts';
import type { CandidateSpec } from '../types.ts';
import { action, collectSet } from './common.ts';

interface ScoreOpts {
  instruction: string;
  sourcePrompt: string;
  targetPrompt: string;
  category: string;
  config?: string;
  set?: string[];
  scorers?: ScorerName[];
  clipModel?: string;
  json?: boolean;
}

/** "pose,expression" → scorer names, checked against the stage's list (loaded lazily: --help stays light). */
function scorerList(value: string): string[] {
  const names = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (!names.length) throw new InvalidArgumentError('expected a comma list of scorer names');
  return names;
}

const round = (v: number | null) => (v === null ? null : Math.round(v * 1e6) / 1e6);

/**
 * `pairgen score <source> <edited>`: the identity stage, the pair scorers and the verdict (identity, then
 * the category's rules) on one pair of images: issue 11's quick check. Without --config: the packaged
 * face models, every scorer and the built-in default rules.
 */
export function registerScore(program: Command): void {
  program
    .command('score')
    .description('score one pair of images: the identity stage (faces, similarity), every enabled pair scorer (docs/scorers.md) and the verdict of the identity threshold and the category\'s rules (docs/rules.md)')
    .argument('<source-image>', 'the source image (JPEG, PNG, WebP, TIFF, GIF)')
    .argument('<edited-image>', 'the edited image')
    .option('--instruction <text>', 'the edit instruction (given to the scorers)', '')
    .option('--source-prompt <text>', 'the source image\'s caption (the clip scorer compares it with the source image)', '')
    .option('--target-prompt <text>', 'the edited image\'s caption (the clip scorer compares it with the edited image)', '')
    .option('--category <name>', 'the pair\'s category: its identity threshold and rules apply (with --config: a category of its prompt set)', '')
    .option('-c, --config <pipeline.yaml>', 'take the identity models and thresholds, the scorers, the rules (with the prompt set\'s) and the runtime from a pipeline config (default: the packaged models, every scorer, the built-in rules)')
    .option('--set <key.path=value>', 'override a config key (repeatable; needs --config)', collectSet)
    .option('--scorers <list>', 'comma list of scorers to run (default: the config\'s scorers.enabled, else all of pose, expression, age, edit, background, quality, safety, duplicates; clip needs --clip-model)', scorerList)
    .option('--clip-model <folder>', 'a CLIP ONNX export folder for the clip scorer (docs/clip.md)')
    .option('--json', 'print one JSON object on stdout (default: one "name value" line per number)')
    .action(action(async (sourceFile: string, editedFile: string, opts: ScoreOpts) => {
      const [{ decodeImage }, { openScoringStage }, { identityVerdict }, scorerStage, { identitySettings }, { verbRules }] = await Promise.all([
        import('../image/index.ts'),
        import('../candidates/scoring-stage.ts'),
        import('../candidates/verdict.ts'),
        import('../scorers/index.ts'),
        import('./face-settings.ts'),
        import('./score-rules.ts'),
      ]);
      for (const name of opts.scorers ?? []) {
        if (!(scorerStage.SCORER_NAMES as readonly string[]).includes(name)) throw new UserError(`--scorers: unknown scorer "${name}" (known: ${scorerStage.SCORER_NAMES.join(', ')})`);
      }
      const { identity, runtime, config } = identitySettings(opts.config, opts.set);
      if (opts.scorers?.includes('clip') && !opts.clipModel && !config?.scorers?.clip_model) throw new UserError('--scorers clip needs --clip-model <folder>: a CLIP ONNX export (docs/clip.md)');
      const chosen = opts.scorers ? { enabled: [...new Set(opts.scorers)] } : (config?.scorers ?? scorerStage.DEFAULT_SCORERS);
      const enabled = scorerStage.parseScorersConfig({ ...chosen, ...(opts.clipModel ?? config?.scorers?.clip_model ? { clip_model: opts.clipModel ?? config?.scorers?.clip_model } : {}) }, opts.scorers ? '--scorers' : 'scorers');
      const rules = verbRules(config, opts.config, enabled.enabled, identity.enabled, opts.category);
      const [source, edited] = await Promise.all([decodeImage(sourceFile), decodeImage(editedFile)]);
      // The stage `work` runs on each scoring thread; this verb always compares the faces, whatever identity.enabled says.
      const stage = await openScoringStage({ identity: { ...identity, enabled: true }, scorers: enabled, runtime });
      let scoredPair;
      try {
        // The stage reads no field of the spec but these (candidate specs come from a plan).
        const spec = { category: opts.category, identityThreshold: null, instruction: opts.instruction, sourcePrompt: opts.sourcePrompt, targetPrompt: opts.targetPrompt } as unknown as CandidateSpec;
        scoredPair = await stage.score(source, edited, spec);
      } finally {
        await stage.close();
      }
      const idScore = scoredPair.identity!;
      const scored = scoredPair.scores;
      const verdict = identityVerdict(idScore, { category: opts.category, identityThreshold: rules.promptThreshold }, identity, rules.rules, scored.scores);
      const result = {
        source: sourceFile,
        edited: editedFile,
        instruction: opts.instruction,
        category: opts.category,
        identity: {
          similarity: round(idScore.similarity),
          source_faces: idScore.sourceFaces,
          edited_faces: idScore.editedFaces,
          face_problem: idScore.faceProblem,
        },
        scores: Object.fromEntries(Object.entries(scored.scores).map(([k, v]) => [k, round(v)])),
        texts: scored.texts,
        verdict: { accepted: verdict.accepted, reason: verdict.rejectReason, threshold: verdict.threshold, rules: Object.fromEntries(rules.rules.map((r) => [r.name, r.text])) },
      };
      if (opts.json) {
        process.stdout.write(JSON.stringify(result) + '\n');
        return;
      }
      const lines = [
        `identity.similarity ${result.identity.similarity ?? 'null'}`,
        ...Object.entries(result.scores).map(([k, v]) => `${k} ${v ?? 'null'}`),
        ...Object.entries(result.texts).map(([k, v]) => `${k} ${v ?? 'null'}`),
        `verdict ${verdict.accepted ? 'accepted' : `rejected (${verdict.rejectReason})`} at identity threshold ${verdict.threshold}; rules: ${rules.rules.map((r) => `${r.name}: ${r.text}`).join('; ') || 'none'}`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    }));
}
