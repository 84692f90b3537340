import { Option, type Command } from 'commander';
import { QUERY_FORMATS, QUERY_LIMITS, type QueryFormat } from '../research/formats.ts';
import { log } from '../util/log.ts';
import { action, wholeNumber } from './common.ts';

/** `pairgen query <run> "<SQL>"`: read-only SQL over a run's manifest, shards, rejects and prompts. */
export function registerQuery(program: Command): void {
  program
    .command('query')
    .description('one read-only SQL query (DuckDB) over a run: views manifest (every candidate, no images), pairs (accepted, images included), rejects, prompts, candidates; the run\'s files only (no other file, extension or http)')
    .argument('<run-uri>', 'a run folder or s3://bucket/prefix (s3: the files of the views the query names are downloaded first)')
    .argument('<sql>', 'e.g. "SELECT category, avg(accepted::INT) FROM manifest GROUP BY 1"')
    .addOption(new Option('--format <format>', 'table (aligned text), json (one object per line, binary as base64) or parquet (needs --out)').choices(QUERY_FORMATS).default('table'))
    .option('--out <file>', 'write the result to this file (path or s3:// URI) instead of stdout')
    .option('--limit <rows>', 'most rows a result may have; a larger one is refused (exit 2), not cut', wholeNumber('--limit', 1), QUERY_LIMITS.rows)
    .option('--max-bytes <n>', 'most bytes of the printed result or the Parquet file; a larger one is refused (exit 2)', wholeNumber('--max-bytes', 1), QUERY_LIMITS.bytes)
    .action(
      action(async (runUri: string, sql: string, opts: { format: QueryFormat; out?: string; limit: number; maxBytes: number }) => {
        const { queryRun } = await import('../research/query.ts');
        const result = await queryRun(runUri, sql, { format: opts.format, out: opts.out, limit: opts.limit, maxBytes: opts.maxBytes });
        if (result.text !== undefined) process.stdout.write(result.text);
        else log.info(`wrote ${result.rows} row${result.rows === 1 ? '' : 's'} to ${opts.out}`);
      }),
    );
}
