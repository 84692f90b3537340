import type { Command } from 'commander';
import { log } from '../util/log.ts';
import { action } from './common.ts';

/** `pairgen report <run> [--out DIR]`: the HTML report and plots of a finished run. */
export function registerReport(program: Command): void {
  program
    .command('report')
    .description('HTML report of a finalized run: acceptance by category, identity score distributions by category, threshold sweep (pairs kept vs threshold), and with scorers the distribution of every score by category with the bounds of the rules')
    .argument('<run-uri>', 'a finalized run')
    .option('--out <dir>', 'folder or s3:// prefix for index.html and the plots (default: report/ inside the run)')
    .action(
      action(async (runUri: string, opts: { out?: string }) => {
        const { reportRun } = await import('../report/report.ts');
        const r = await reportRun(runUri, { out: opts.out });
        log.info(`wrote ${r.files.length} files to ${r.uri} (open index.html)`);
      }),
    );
}
