/**
 * Researcher-workflow benchmark.
 *
 *   node --import tsx bench/query.ts [--rows 1000000] [--pairs 24]
 *
 * 1. Query latency over a synthesized manifest of --rows candidates (written with src/shards
 *    writeManifest into a planned run): each query through queryRun (open the run, DuckDB views, run,
 *    render), repeated 3 times, median reported; plus one `pairgen query` through the CLI (process start
 *    included).
 * 2. Regenerate throughput beside the original run's: a run of --pairs candidates with the tiny diffusers
 *    fixture teacher (64 px, 4 steps, identity off), then `regenerate --where true` over it (an exact
 *    replay of every pair, plan + work + finalize).
 * Writes bench/results/query.json and query.md.
 */
import { spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FIXTURES } from '../test/helpers/fixtures.ts';
import { queryRun, regenerateRun } from '../src/research/index.ts';
import { finalizeRun } from '../src/run/finalize.ts';
import { planRun } from '../src/run/plan.ts';
import { workRun } from '../src/run/work.ts';
import { writeManifest } from '../src/shards/index.ts';
import { syntheticId, syntheticRows } from './synthetic-manifest.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const ROWS = arg('rows', 1_000_000);
const PAIRS = arg('pairs', 24);
const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..');
const tmp = mkdtempSync(join(tmpdir(), 'pairgen-bench-query-'));

function config(name: string, pairs: number): string {
  const file = join(tmp, `${name}.yaml`);
  writeFileSync(file, [
    'seed: 3', `pairs: ${pairs}`, 'shard_size: 8',
    `prompts: { set: ${join(repo, 'prompts/demo.yaml')} }`,
    `teacher: { model: ${join(FIXTURES, 'tiny-sd')}, steps: 4 }`,
    'identity: { enabled: false }', 'output: { image_format: png }',
  ].join('\n'));
  return file;
}


// 1. Query latency.
const big = join(tmp, 'big');
await planRun(config('big', 8), big);
let t = performance.now();
await writeManifest(createWriteStream(join(big, 'manifest.parquet')), syntheticRows(ROWS, { seed: 0x9e3779b9 }));
const manifestSeconds = (performance.now() - t) / 1000;
const QUERIES: Record<string, string> = {
  count: 'SELECT count(*) FROM manifest',
  acceptance_by_category: 'SELECT category, count(*) AS n, avg(accepted::INT) AS acceptance, avg(identity_similarity) AS mean_identity FROM manifest GROUP BY 1 ORDER BY 1',
  reject_reasons: 'SELECT reject_reason, count(*) FROM manifest WHERE NOT accepted GROUP BY 1 ORDER BY 2 DESC',
  threshold_what_if: 'SELECT category, count(*) FILTER (WHERE identity_similarity >= 0.5) AS kept_at_05, count(*) FILTER (WHERE identity_similarity >= 0.7) AS kept_at_07 FROM manifest GROUP BY 1 ORDER BY 1',
  quantiles_by_category: 'SELECT category, quantile_cont(identity_similarity, [0.1, 0.5, 0.9]) FROM manifest GROUP BY 1 ORDER BY 1',
  point_lookup: `SELECT * FROM manifest WHERE pair_id = '${syntheticId(ROWS >> 1)}'`,
};
const latency: Record<string, number> = {};
for (const [name, sql] of Object.entries(QUERIES)) {
  const times: number[] = [];
  for (let k = 0; k < 3; k++) {
    t = performance.now();
    const r = await queryRun(big, sql);
    times.push(performance.now() - t);
    if (r.rows < 1) throw new Error(`${name}: no rows`);
  }
  latency[name] = Math.round(times.sort((a, b) => a - b)[1]);
  console.error(`${name}: ${latency[name]} ms`);
}
t = performance.now();
const cli = spawnSync(process.execPath, [join(repo, 'bin/pairgen.js'), 'query', big, QUERIES.acceptance_by_category], { encoding: 'utf8' });
const cliMs = Math.round(performance.now() - t);
if (cli.status !== 0) throw new Error(cli.stderr);

// 2. Regenerate throughput beside the original run's.
const original = join(tmp, 'original');
await planRun(config('original', PAIRS), original);
t = performance.now();
await workRun(original);
const workSeconds = (performance.now() - t) / 1000;
await finalizeRun(original);
t = performance.now();
const regen = await regenerateRun(original, join(tmp, 'regen'), { where: 'true' });
const regenSeconds = (performance.now() - t) / 1000;

const result = {
  date: new Date().toISOString(),
  command: `node --import tsx bench/query.ts --rows ${ROWS} --pairs ${PAIRS}`,
  machine: { cpus: cpus().length, node: process.version, note: 'shared 2-core machine; other jobs were running' },
  manifest: { rows: ROWS, mib: Number((statSync(join(big, 'manifest.parquet')).size / 2 ** 20).toFixed(1)), write_seconds: Number(manifestSeconds.toFixed(1)) },
  query_ms_median_of_3: latency,
  cli_query_ms_with_process_start: cliMs,
  regenerate: {
    teacher: 'tiny-sd fixture, 64 px, 4 steps, guidance 7.5, identity off',
    pairs: PAIRS,
    original_work_seconds: Number(workSeconds.toFixed(2)),
    original_pairs_per_s: Number((PAIRS / workSeconds).toFixed(2)),
    regenerate_seconds_incl_plan_and_finalize: Number(regenSeconds.toFixed(2)),
    regenerate_pairs_per_s: Number((regen.pairs / regenSeconds).toFixed(2)),
  },
};
rmSync(tmp, { recursive: true, force: true });
writeFileSync(join(here, 'results/query.json'), JSON.stringify(result, null, 2) + '\n');
writeFileSync(
  join(here, 'results/query.md'),
  `# Research benchmark\n\n\`${result.command}\` on ${result.date} (${result.machine.cpus} cpus, Node ${result.machine.node}; ${result.machine.note}).\n\n` +
    `Manifest: ${ROWS.toLocaleString('en-US')} rows, ${result.manifest.mib} MiB (written in ${result.manifest.write_seconds} s).\n\n` +
    `| query | ms (median of 3, in process) |\n|---|---|\n${Object.entries(latency).map(([k, v]) => `| ${k} | ${v} |`).join('\n')}\n| \`pairgen query\` acceptance_by_category, CLI incl. process start | ${cliMs} |\n\n` +
    `| ${result.regenerate.teacher} | pairs | seconds | pairs/s |\n|---|---|---|---|\n| original run (work) | ${PAIRS} | ${result.regenerate.original_work_seconds} | ${result.regenerate.original_pairs_per_s} |\n| regenerate --where true (plan + work + finalize) | ${regen.pairs} | ${result.regenerate.regenerate_seconds_incl_plan_and_finalize} | ${result.regenerate.regenerate_pairs_per_s} |\n`,
);
console.log(JSON.stringify(result, null, 2));
