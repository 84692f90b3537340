import { Option, type Command } from 'commander';
import { EXPORT_FORMATS, type ExportFormat } from '../research/formats.ts';
import { log } from '../util/log.ts';
import { action, wholeNumber } from './common.ts';

/** `pairgen export <run> --format webdataset --out DIR [--where ...]`: accepted pairs as WebDataset tars per split. */
export function registerExport(program: Command): void {
  program
    .command('export')
    .description('write the accepted pairs of a run (or those matching --where) as WebDataset tars per split (<pair_id>.source.<ext>, .edited.<ext>, .txt, .json), a wids index per split and a README.md that datasets.load_dataset reads')
    .argument('<run-uri>', 'a finalized run')
    .addOption(new Option('--format <format>', 'output format').choices(EXPORT_FORMATS).makeOptionMandatory())
    .requiredOption('--out <dir>', 'an empty or new folder or s3:// prefix for <split>-NNNNN-of-MMMMM.tar, <split>.wids.json and README.md')
    .option('--where <condition>', 'a condition over the manifest columns (columns, literals, comparisons, AND/OR/NOT, IN, BETWEEN, LIKE, IS NULL; no subqueries), e.g. "split = \'train\'" or "category = \'style\'"')
    .option('--shard-size <n>', 'most pairs per tar file', wholeNumber('--shard-size', 1), 1000)
    .action(
      action(async (runUri: string, opts: { format: ExportFormat; out: string; where?: string; shardSize: number }) => {
        const { exportRun } = await import('../research/export.ts');
        const r = await exportRun(runUri, opts.out, { format: opts.format, where: opts.where, shardSize: opts.shardSize });
        const tars = r.files.filter((f) => f.endsWith('.tar')).length;
        log.info(`exported ${r.pairs} pairs to ${r.uri} in ${tars} tar file${tars === 1 ? '' : 's'}`);
      }),
    );
}
