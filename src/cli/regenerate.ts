import type { Command } from 'commander';
import { parseSplits, type SplitFractions } from '../dataset/splits.ts';
import { log } from '../util/log.ts';
import { action, collectSet, wholeNumber } from './common.ts';

/** `pairgen regenerate <run> --where "<condition>" [--set k=v] --out <new>`: chosen pairs again from their seeds. */
export function registerRegenerate(program: Command): void {
  program
    .command('regenerate')
    .description('the pairs chosen by --where, again from their own seeds, as a new run: byte-identical with no --set; with --set each pair records the pair_id it came from and what changed')
    .argument('<run-uri>', 'the finalized run to draw pairs from')
    .requiredOption('--where <condition>', 'a condition over the manifest columns (columns, literals, comparisons, AND/OR/NOT, IN, BETWEEN, LIKE, IS NULL; no subqueries), e.g. "category = \'style\' AND accepted" ("true" for all)')
    .option('--set <key.path=value>', 'override a setting of the parent run, e.g. --set teacher.steps=50 (repeatable)', collectSet, [])
    .requiredOption('--out <uri>', 'where to write the new run (a new folder or s3:// prefix); running again resumes it')
    .option('--shard-size <k>', 'candidates per shard of the new run (default: the parent\'s)', wholeNumber('--shard-size', 1))
    .option('--splits <fractions>', 'split fractions of the new run, e.g. train=0.9,validation=0.05,test=0.05 (default: the parent\'s)', (v: string) => parseSplits(v))
    .option('--plan-only', 'write the new run\'s plan only; then `pairgen work` (e.g. as an array job) and `pairgen finalize`')
    .action(
      action(async (runUri: string, opts: { where: string; set: string[]; out: string; shardSize?: number; splits?: SplitFractions; planOnly?: boolean }) => {
        const { regenerateRun } = await import('../research/regenerate.ts');
        const { logShard } = await import('../run/work.ts');
        const r = await regenerateRun(runUri, opts.out, { where: opts.where, sets: opts.set, shardSize: opts.shardSize, splits: opts.splits, planOnly: opts.planOnly, work: { onShard: logShard } });
        const changed = Object.keys(r.changes);
        const what = changed.length ? `with ${changed.map((k) => `${k}: ${JSON.stringify(r.changes[k].from)} → ${JSON.stringify(r.changes[k].to)}`).join(', ')}` : 'with the parent\'s settings (exact replay)';
        if (opts.planOnly) log.info(`planned ${r.pairs} pairs in ${r.shards} shards at ${r.uri} ${what}; run \`pairgen work ${opts.out}\` then \`pairgen finalize ${opts.out}\``);
        else log.info(`regenerated ${r.pairs} pairs into ${r.uri} ${what}: ${r.accepted} accepted, ${r.rejected} rejected`, { shards: r.shards });
      }),
    );
}
