import type { Command } from 'commander';
import { log } from '../util/log.ts';
import { action } from './common.ts';

/** `pairgen upgrade <old-run> --out <new>`: a run of an earlier layout rewritten in the current one. */
export function registerUpgrade(program: Command): void {
  program
    .command('upgrade')
    .description('copy a run written by an earlier pairgen (layout 1: shards/) into the current layout (data/<split>-*.parquet, rejects/, markers/) at --out; rows and image bytes are kept, the old run is only read; resumable')
    .argument('<old-run-uri>', 'the layout-1 run')
    .requiredOption('--out <uri>', 'where to write the upgraded run (a new folder or s3:// prefix)')
    .action(
      action(async (oldUri: string, opts: { out: string }) => {
        const { upgradeRun } = await import('../research/upgrade.ts');
        const r = await upgradeRun(oldUri, opts.out);
        const pending = r.pending.length ? `; ${r.pending.length} shards were not committed in the old run: finish them with \`pairgen work ${r.uri}\`, then \`pairgen finalize\`` : '';
        log.info(`upgraded into ${r.uri}: ${r.upgraded} shards copied, ${r.skipped} already there${r.finalized ? '; finalized' : ''}${pending}`, { upgraded: r.upgraded, skipped: r.skipped, pending: r.pending.length });
      }),
    );
}
