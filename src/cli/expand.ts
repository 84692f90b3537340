import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Command } from 'commander';
import { log, progress } from '../util/log.ts';
import { action, wholeNumber } from './common.ts';
import { localPath } from '../store/index.ts';

export function registerExpand(program: Command): void {
  program
    .command('expand')
    .description('expand a prompt set into a prompt table (Parquet): its eval rows, then --count train rows')
    .argument('<promptset>', 'prompt-set YAML file (grammar: docs/prompts.md), e.g. prompts/portrait.yaml')
    .requiredOption('-o, --out <table.parquet>', 'where to write the prompt table (written atomically)')
    .option('-n, --count <N>', 'number of train rows', wholeNumber('--count'), 10000)
    .option('-s, --seed <S>', 'sampling seed; same set + count + seed → same file bytes', wholeNumber('--seed'), 0)
    .option('--json', 'print the summary as one JSON object on stdout')
    .addHelpText('after', '\nPrints the train rows per category, the eval rows and the file\'s sha256.\nExample: pairgen expand prompts/portrait.yaml --out prompts.parquet --count 1000000 --seed 7')
    .action(
      action(async (file: string, opts: { out: string; count: number; seed: number; json?: boolean }) => {
        const { loadPromptSet, writePromptTable } = await import('../prompts/index.ts');
        const set = loadPromptSet(file);
        localPath(opts.out); // refuses special file systems (/proc, /sys, /dev)
        mkdirSync(dirname(opts.out), { recursive: true });
        const total = set.eval.rows.length + set.eval.count + opts.count;
        const bar = progress('expand', total);
        const summary = await writePromptTable(set, { count: opts.count, seed: opts.seed, onProgress: (n) => bar.update(n) }, opts.out);
        bar.stop();
        log.info(`wrote ${opts.out}`, { rows: summary.rows });
        if (opts.json) {
          process.stdout.write(JSON.stringify({ out: opts.out, set: set.name, seed: opts.seed, ...summary }) + '\n');
          return;
        }
        const width = Math.max(5, ...Object.keys(summary.perCategory).map((c) => c.length));
        const lines = Object.entries(summary.perCategory).map(([c, n]) => `${c.padEnd(width)}  ${n}`);
        lines.push(`${'train'.padEnd(width)}  ${summary.rows - summary.evalRows}`, `${'eval'.padEnd(width)}  ${summary.evalRows}`, `sha256 ${summary.sha256}`);
        process.stdout.write(lines.join('\n') + '\n');
      }),
    );
}
