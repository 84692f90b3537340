import { Option, type Command } from 'commander';
import { EXPORT_FORMATS, exportRun, type ExportFormat } from '../research/index.ts';
import { log } from '../util/log.ts';
import { action, wholeNumber } from './common.ts';

/** `pairgen export <run> --format webdataset --out DIR [--where ...]`: accepted pairs as WebDataset tar shards. */
export function registerExport(program: Command): void {
  program
    .command('export')
    .description('write the accepted pairs of a run (or those matching --where) as WebDataset tar shards: <pair_id>.source.<ext>, <pair_id>.edited.<ext>, <pair_id>.json')
    .argument('<run-uri>', 'a finalized run')
    .addOption(new Option('--format <format>', 'output format').choices(EXPORT_FORMATS).makeOptionMandatory())
    .requiredOption('--out <dir>', 'an empty folder or s3:// prefix for pairs-000000.tar, ... and index.json')
    .option('--where <sql>', 'SQL condition over the manifest columns, e.g. "split = \'train\'" or "category = \'style\'"')
    .option('--shard-size <n>', 'pairs per tar file', wholeNumber('--shard-size', 1), 1000)
    .action(
      action(async (runUri: string, opts: { format: ExportFormat; out: string; where?: string; shardSize: number }) => {
        const r = await exportRun(runUri, opts.out, { format: opts.format, where: opts.where, shardSize: opts.shardSize });
        log.info(`exported ${r.pairs} pairs to ${r.uri} in ${r.files.length} tar file${r.files.length === 1 ? '' : 's'}`);
      }),
    );
}
