import type { Command } from 'commander';
import { log } from '../util/log.ts';
import { action, collectSet } from './common.ts';

/** `pairgen refilter <run> --set identity.threshold=0.5 --set 'rules.default.not_edited=edit.magnitude >= 0.05' --out <new>`: a new selection from recorded scores. */
export function registerRefilter(program: Command): void {
  program
    .command('refilter')
    .description('a new run whose selection comes from the recorded scores judged against new identity thresholds or rules; stored images are copied, only newly accepted pairs are regenerated (from their seeds), nothing is scored again')
    .argument('<run-uri>', 'the finished run to refilter (all shards committed)')
    .option('--drop-duplicates', 'also reject the pairs the parent\'s manifest marks as near-duplicates (duplicate_of; runs with the duplicates scorer), as near_duplicate')
    .option('--set <key.path=value>', 'identity.threshold=X, identity.category_thresholds.<category>=X, rules.default.<name>=CONDITION or rules.categories.<category>.<name>=CONDITION (null removes a rule; repeatable)', collectSet, [])
    .requiredOption('--out <uri>', 'where to write the new run (a new folder or s3:// prefix)')
    .action(
      action(async (runUri: string, opts: { set: string[]; out: string; dropDuplicates?: boolean }) => {
        const { refilterRun } = await import('../research/refilter.ts');
        const r = await refilterRun(runUri, opts.out, { sets: opts.set, dropDuplicates: opts.dropDuplicates, onShard: (e) => e.status === 'skipped' && log.info(`shard ${e.shard} already written, skipped`) });
        log.info(`refiltered into ${r.uri}: ${r.accepted} accepted, ${r.rejected} rejected; images copied for ${r.copied} pairs, regenerated for ${r.regenerated} newly accepted pairs; ${r.dropped} no longer accepted`, { copied: r.copied, regenerated: r.regenerated, dropped: r.dropped });
      }),
    );
}
