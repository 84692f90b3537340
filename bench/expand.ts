/**
 * Prompt expansion benchmark: expand prompts/portrait.yaml into a temporary Parquet prompt table.
 *
 *   node --import tsx bench/expand.ts [--count 10000000] [--seed 1]
 *
 * Measures rows/s of writePromptTable (expansion + dedup + Parquet encoding + sha256 + disk), peak RSS
 * (process.resourceUsage().maxRSS), the file size, and the time to read one 1,000-row range back with
 * readPromptRows (what a worker does). Writes bench/results/expand.json and expand.md.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPromptSet, readPromptRows, writePromptTable } from '../src/prompts/index.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const COUNT = arg('count', 10_000_000);
const SEED = arg('seed', 1);
const here = dirname(fileURLToPath(import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'pairgen-bench-expand-'));
const out = join(tmp, 'prompts.parquet');

const set = loadPromptSet(join(here, '../prompts/portrait.yaml'));
const t0 = performance.now();
let lastLog = t0;
const summary = await writePromptTable(set, {
  count: COUNT,
  seed: SEED,
  onProgress: (rows) => {
    const now = performance.now();
    if (now - lastLog > 10_000) {
      lastLog = now;
      console.error(`${rows} rows, ${Math.round(rows / ((now - t0) / 1000))} rows/s, rss ${Math.round(process.memoryUsage().rss / 2 ** 20)} MiB`);
    }
  },
}, out);
const writeSeconds = (performance.now() - t0) / 1000;
const fileBytes = statSync(out).size;

const mid = Math.floor(COUNT / 2);
const r0 = performance.now();
const range = await readPromptRows(out, { split: 'train', start: mid, end: mid + 1000 });
const readMs = performance.now() - r0;
if (range.length !== Math.min(1000, COUNT - mid)) throw new Error(`read ${range.length} rows`);
rmSync(tmp, { recursive: true, force: true });

const result = {
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, node: process.version, note: 'shared 2-core machine; other jobs were running' },
  prompt_set: 'prompts/portrait.yaml',
  count: COUNT,
  seed: SEED,
  rows: summary.rows,
  eval_rows: summary.evalRows,
  write_seconds: Number(writeSeconds.toFixed(1)),
  rows_per_second: Math.round(summary.rows / writeSeconds),
  peak_rss_mib: Math.round((process.resourceUsage().maxRSS * 1024) / 2 ** 20),
  file_mib: Number((fileBytes / 2 ** 20).toFixed(1)),
  bytes_per_row: Number((fileBytes / summary.rows).toFixed(1)),
  read_1000_rows_ms: Math.round(readMs),
  sha256: summary.sha256,
};
writeFileSync(join(here, 'results/expand.json'), JSON.stringify(result, null, 2) + '\n');
writeFileSync(
  join(here, 'results/expand.md'),
  `# Prompt expansion benchmark\n\n\`node --import tsx bench/expand.ts --count ${COUNT}\` on ${result.date} (${result.machine.cpus} cpus, Node ${result.machine.node}; ${result.machine.note}).\n\n` +
    `| rows | seconds | rows/s | peak RSS | file | bytes/row | read 1,000 rows |\n|---|---|---|---|---|---|---|\n` +
    `| ${result.rows.toLocaleString('en-US')} | ${result.write_seconds} | ${result.rows_per_second.toLocaleString('en-US')} | ${result.peak_rss_mib} MiB | ${result.file_mib} MiB | ${result.bytes_per_row} | ${result.read_1000_rows_ms} ms |\n`,
);
console.log(JSON.stringify(result, null, 2));
