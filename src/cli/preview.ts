import { dirname, resolve } from 'node:path';
import { existsSync, statSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { UserError } from '../errors.ts';
import { MAX_SHEET_ROWS } from '../report/limits.ts';
import { log } from '../util/log.ts';
import { action } from './common.ts';

function limitArg(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > MAX_SHEET_ROWS) throw new InvalidArgumentError(`expected a whole number from 1 to ${MAX_SHEET_ROWS}`);
  return Number(v);
}

/** `pairgen preview <run>`: a contact sheet PNG of chosen pairs; `--all` (re)writes the run's preview/ folder. */
export function registerPreview(program: Command): void {
  program
    .command('preview')
    .description('draw a contact sheet of a run: source | edited | instruction, category, identity score; rejected pairs framed in red with their reason')
    .argument('<run-uri>', 'a run folder or s3://bucket/prefix (finalized: it needs manifest.parquet)')
    .option('--where <condition>', 'a condition over the manifest columns (columns, literals, comparisons, AND/OR/NOT, IN, BETWEEN, LIKE, IS NULL; no subqueries), e.g. "category = \'style\' AND identity_similarity < 0.5"')
    .option('--limit <n>', `most pairs on the sheet, first in run order (1-${MAX_SHEET_ROWS})`, limitArg, 24)
    .option('--out <file.png>', 'where to write the sheet', 'sheet.png')
    .option('--regenerate', 'draw rejected pairs again from their seeds with the run\'s teacher (its model files must be on this machine); default: grey "not stored" tiles')
    .option('--all', 'instead: write the run\'s preview/ folder (a sheet per category, identity histogram, index.html), as finalize does')
    .action(
      action(async (runUri: string, opts: { where?: string; limit: number; out: string; all?: boolean; regenerate?: boolean }) => {
        if (opts.all) {
          if (opts.where !== undefined) throw new UserError('--all draws fixed per-category sheets; it takes no --where');
          const { writePreview } = await import('../report/preview.ts');
          const keys = await writePreview(runUri, { regenerate: opts.regenerate });
          log.info(`wrote ${keys.length} files under ${runUri.replace(/\/$/, '')}/preview/ (open preview/index.html)`);
          return;
        }
        const out = resolve(opts.out);
        if (!out.toLowerCase().endsWith('.png')) throw new UserError(`--out ${opts.out}: expected a .png file name`);
        if (!existsSync(dirname(out)) || !statSync(dirname(out)).isDirectory()) throw new UserError(`--out ${opts.out}: folder ${dirname(out)} does not exist`);
        const { previewRun } = await import('../report/preview.ts');
        const { putOutput } = await import('../store/output.ts');
        const { png, rows } = await previewRun(runUri, { where: opts.where, limit: opts.limit, regenerate: opts.regenerate });
        await putOutput(out, png); // atomic: an interrupted write never leaves a torn PNG
        log.info(`wrote ${out}: ${rows} pair${rows === 1 ? '' : 's'}`);
      }),
    );
}
