import type { Command } from 'commander';
import { UserError } from '../errors.ts';
import { action, collectSet } from './common.ts';

/** `pairgen check <pipeline.yaml>`: is everything a run needs in place? Exit 0 with a summary, or 2 with every problem. */
export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('validate a pipeline config, its prompt set and every model file (folder layout, ONNX inputs/outputs) without running a model, and that its execution providers other than cpu load on this machine (docs/gpu.md); exit 2 listing everything missing')
    .argument('<pipeline.yaml>', 'pipeline config (YAML or JSON)')
    .option('--set <key.path=value>', 'override a config key (repeatable), e.g. --set teacher.model=/models/sd15', collectSet, [])
    .action(
      action(async (file: string, opts: { set: string[] }) => {
        const { checkPipeline, formatCheckReport } = await import('../config/check.ts');
        const report = await checkPipeline(file, opts.set);
        const text = formatCheckReport(report);
        if (report.problems.length) throw new UserError(text);
        process.stdout.write(text + '\n');
      }),
    );
}
