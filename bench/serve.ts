/**
 * `pairgen serve` on a big manifest (issue 16: the pair browser's first page and a filtered page each
 * answer within 1 s on a 1-million-row manifest).
 *
 *   node --import tsx bench/serve.ts [--rows 1000000] [--repeats 5]
 *
 * A planned run (tiny fixture teacher, scorers edit + quality, not worked) gets a synthetic manifest.parquet
 * of --rows candidates written with src/shards writeManifest (realistic columns and spreads, no images,
 * as bench/query.ts makes its own); then the real server (startServer, in this process) answers HTTP
 * requests over loopback, each timed from request to the last byte: the first request of all (it opens
 * the manifest), then the median of --repeats of each kind. Writes bench/results/serve.json and serve.md.
 */
import { createWriteStream, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FIXTURES } from '../test/helpers/fixtures.ts';
import { planRun } from '../src/run/plan.ts';
import { startServer } from '../src/serve/server.ts';
import { writeManifest } from '../src/shards/index.ts';
import { syntheticId, syntheticRows } from './synthetic-manifest.ts';
import { scoreColumns } from '../src/scorers/config.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const ROWS = arg('rows', 1_000_000);
const REPEATS = arg('repeats', 5);
const AIM_MS = 1000;
const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..');
const tmp = mkdtempSync(join(tmpdir(), 'pairgen-bench-serve-'));
const SCORERS = ['edit', 'quality'] as const;


const big = join(tmp, 'big');
const config = join(tmp, 'big.yaml');
writeFileSync(config, [
  'seed: 3', 'pairs: 8', 'shard_size: 8',
  `prompts: { set: ${join(repo, 'prompts/demo.yaml')} }`,
  `teacher: { model: ${join(FIXTURES, 'tiny-sd')}, steps: 2 }`,
  'identity: { enabled: true }', `scorers: { enabled: [${SCORERS.join(', ')}] }`, 'output: { image_format: jpeg }',
].join('\n'));
await planRun(config, big);
let t = performance.now();
await writeManifest(createWriteStream(join(big, 'manifest.parquet')), syntheticRows(ROWS, { seed: 0x2545f491, splits: ['train', 'train', 'train', 'train', 'train', 'train', 'train', 'train', 'validation', 'test'], scoreColumns: scoreColumns([...SCORERS]).filter((c) => c.kind === 'number').map((c) => c.column) }), { scorers: [...SCORERS] });
const writeSeconds = (performance.now() - t) / 1000;

const server = await startServer(big, { port: 0 });
async function timed(path: string): Promise<{ ms: number; body: Record<string, unknown> }> {
  const t0 = performance.now();
  const r = await fetch(server.url + path);
  const text = await r.text();
  const ms = performance.now() - t0;
  if (r.status !== 200) throw new Error(`${path}: ${r.status} ${text}`);
  return { ms, body: JSON.parse(text) };
}

const REQUESTS: Record<string, string> = {
  first_page: 'api/pairs',
  filtered_page: `api/pairs?${new URLSearchParams({ where: "identity_similarity >= 0.7 AND edit_magnitude < 0.5 AND category IN ('style', 'hair')", verdict: 'accepted', sort: 'quality_edited_sharpness', order: 'desc' })}`,
  filtered_page_10: `api/pairs?${new URLSearchParams({ where: 'identity_similarity BETWEEN 0.5 AND 0.9', split: 'train', page: '10' })}`,
  middle_page: `api/pairs?page=${Math.floor(ROWS / 48 / 2)}`,
  one_pair: `api/pairs/${syntheticId(ROWS >> 1)}`,
};
const load = loadavg()[0];
const cold = await timed(REQUESTS.first_page);
const medians: Record<string, number> = {};
const totals: Record<string, number> = {};
for (const [name, path] of Object.entries(REQUESTS)) {
  const times: number[] = [];
  for (let k = 0; k < REPEATS; k++) {
    const r = await timed(path);
    times.push(r.ms);
    if (typeof r.body.total === 'number') totals[name] = r.body.total;
  }
  medians[name] = Math.round(times.sort((a, b) => a - b)[Math.floor(times.length / 2)]);
  process.stderr.write(`${name}: ${medians[name]} ms\n`);
}
// The what-if reads every row into the verdict function: timed once, for the record (not an aim).
const whatIf = await timed(`api/whatif?set=${encodeURIComponent('identity.threshold=0.7')}`);
await server.close();

const result = {
  bench: 'serve',
  date: new Date().toISOString(),
  command: `node --import tsx bench/serve.ts --rows ${ROWS} --repeats ${REPEATS}`,
  machine: { cpus: cpus().length, node: process.version, load_average_1m_before: Number(load.toFixed(2)) },
  manifest: { rows: ROWS, mib: Number((statSync(join(big, 'manifest.parquet')).size / 2 ** 20).toFixed(1)), write_seconds: Number(writeSeconds.toFixed(1)), scorers: SCORERS },
  first_request_ms_opens_manifest: Math.round(cold.ms),
  median_ms: medians,
  matching_rows: totals,
  whatif_identity_threshold_ms_once: Math.round(whatIf.ms),
  aim: { ms: AIM_MS, first_page: medians.first_page <= AIM_MS, filtered_page: medians.filtered_page <= AIM_MS },
};
rmSync(tmp, { recursive: true, force: true });
writeFileSync(join(here, 'results/serve.json'), JSON.stringify(result, null, 2) + '\n');
writeFileSync(
  join(here, 'results/serve.md'),
  `# pairgen serve on a big manifest\n\n\`${result.command}\` on ${result.date} (${result.machine.cpus} cpus, Node ${result.machine.node}, load ${result.machine.load_average_1m_before} before).\n\n` +
    `Manifest: ${ROWS.toLocaleString('en-US')} rows, ${result.manifest.mib} MiB, scorers ${SCORERS.join(' + ')}. Times are HTTP over loopback, request to last byte, median of ${REPEATS}; aim ≤ ${AIM_MS} ms for the first and a filtered page.\n\n` +
    `| request | ms | matching rows |\n|---|---|---|\n| first request (opens the manifest) | ${result.first_request_ms_opens_manifest} | |\n` +
    Object.entries(REQUESTS).map(([k, p]) => `| ${k}: \`${decodeURIComponent(p.replace(/\+/g, ' '))}\` | ${medians[k]} | ${totals[k] ?? ''} |`).join('\n') +
    `\n| what-if identity.threshold=0.7 (every row through the verdict function, once) | ${result.whatif_identity_threshold_ms_once} | |\n`,
);
console.log(JSON.stringify(result, null, 2));
if (!result.aim.first_page || !result.aim.filtered_page) process.exitCode = 1;
