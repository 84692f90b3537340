/**
 * Prompt expansion benchmark: expand prompts/portrait.yaml into a temporary Parquet prompt table.
 *
 *   node --import tsx bench/expand.ts [--count 10000000] [--seed 1] [--threads N]
 *
 * Measures rows/s of writePromptTable (expansion + dedup + Parquet encoding + sha256 + disk; --threads:
 * its encoder threads, default as `pairgen expand`), the CPU time of the whole process (all threads)
 * per row, peak RSS (process.resourceUsage().maxRSS, all threads), the file size, and the time to read
 * one 1,000-row range back with readPromptRows (what a worker does). Writes bench/results/expand.json
 * and expand.md, beside the figures of the run before (kept as `previous`, with whether the bytes matched)
 * and the aim of issue 15 (200,000 rows/s at 10M rows).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPromptSet, readPromptRows, writePromptTable } from '../src/prompts/index.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const COUNT = arg('count', 10_000_000);
const SEED = arg('seed', 1);
const THREADS = process.argv.includes('--threads') ? arg('threads', 1) : undefined;
const AIM_ROWS_PER_SECOND = 200_000;
const here = dirname(fileURLToPath(import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'pairgen-bench-expand-'));
const out = join(tmp, 'prompts.parquet');

const set = loadPromptSet(join(here, '../prompts/portrait.yaml'));
const load0 = loadavg()[0];
const cpu0 = process.cpuUsage();
const t0 = performance.now();
let lastLog = t0;
const summary = await writePromptTable(set, {
  count: COUNT,
  seed: SEED,
  encodeThreads: THREADS,
  onProgress: (rows) => {
    const now = performance.now();
    if (now - lastLog > 10_000) {
      lastLog = now;
      console.error(`${rows} rows, ${Math.round(rows / ((now - t0) / 1000))} rows/s, rss ${Math.round(process.memoryUsage().rss / 2 ** 20)} MiB`);
    }
  },
}, out);
const writeSeconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
const load1 = loadavg()[0];
const fileBytes = statSync(out).size;

const mid = Math.floor(COUNT / 2);
const r0 = performance.now();
const range = await readPromptRows(out, { split: 'train', start: mid, end: mid + 1000 });
const readMs = performance.now() - r0;
if (range.length !== Math.min(1000, COUNT - mid)) throw new Error(`read ${range.length} rows`);
rmSync(tmp, { recursive: true, force: true });

const resultsFile = join(here, 'results/expand.json');
const before = existsSync(resultsFile) ? (JSON.parse(readFileSync(resultsFile, 'utf8')) as Record<string, unknown>) : null;
const result = {
  date: new Date().toISOString(),
  machine: {
    cpus: cpus().length,
    node: process.version,
    note: 'shared 2-core machine; other jobs were running',
    load_average_1min: { start: Number(load0.toFixed(1)), end: Number(load1.toFixed(1)) },
  },
  prompt_set: 'prompts/portrait.yaml',
  prompt_set_sha256: set.sha256,
  count: COUNT,
  seed: SEED,
  encode_threads: THREADS ?? 'default',
  rows: summary.rows,
  eval_rows: summary.evalRows,
  write_seconds: Number(writeSeconds.toFixed(1)),
  rows_per_second: Math.round(summary.rows / writeSeconds),
  aim_rows_per_second: AIM_ROWS_PER_SECOND,
  cpu_us_per_row: Number(((cpu.user + cpu.system) / summary.rows).toFixed(1)),
  peak_rss_mib: Math.round((process.resourceUsage().maxRSS * 1024) / 2 ** 20),
  file_mib: Number((fileBytes / 2 ** 20).toFixed(1)),
  bytes_per_row: Number((fileBytes / summary.rows).toFixed(1)),
  read_1000_rows_ms: Math.round(readMs),
  sha256: summary.sha256,
  // the run before, for comparison (same count and seed: same bytes expected)
  previous: before
    ? {
        date: before.date,
        count: before.count,
        seed: before.seed,
        write_seconds: before.write_seconds,
        rows_per_second: before.rows_per_second,
        peak_rss_mib: before.peak_rss_mib,
        sha256: before.sha256,
        // equal bytes are expected only from the same set file, count and seed (and the same table format)
        same_bytes:
          before.count !== COUNT || before.seed !== SEED ? 'not comparable: other count or seed'
          : before.prompt_set_sha256 !== set.sha256 ? 'not comparable: other prompt set file (or not recorded)'
          : before.sha256 === summary.sha256,
      }
    : null,
};
writeFileSync(resultsFile, JSON.stringify(result, null, 2) + '\n');
const num = (v: unknown) => (typeof v === 'number' ? v.toLocaleString('en-US') : String(v ?? '-'));
const cmd = `node --import tsx bench/expand.ts --count ${COUNT}${SEED !== 1 ? ` --seed ${SEED}` : ''}${THREADS !== undefined ? ` --threads ${THREADS}` : ''}`;
const prev = result.previous;
writeFileSync(
  join(here, 'results/expand.md'),
  `# Prompt expansion benchmark\n\n\`${cmd}\` on ${result.date} (${result.machine.cpus} cpus, Node ${result.machine.node}; ${result.machine.note}; ` +
    `1-minute load average ${load0.toFixed(1)} at the start, ${load1.toFixed(1)} at the end).\n\n` +
    `| run | rows | seconds | rows/s | aim | CPU µs/row | peak RSS | file | bytes/row | read 1,000 rows | sha256 |\n|---|---|---|---|---|---|---|---|---|---|---|\n` +
    `| this | ${num(result.rows)} | ${result.write_seconds} | ${num(result.rows_per_second)} | ${num(AIM_ROWS_PER_SECOND)} | ${result.cpu_us_per_row} | ${result.peak_rss_mib} MiB | ${result.file_mib} MiB | ${result.bytes_per_row} | ${result.read_1000_rows_ms} ms | \`${result.sha256.slice(0, 16)}…\` |\n` +
    (prev
      ? `| previous (${String(prev.date).slice(0, 10)}) | ${num(before?.rows)} | ${prev.write_seconds} | ${num(prev.rows_per_second)} | | ${num(before?.cpu_us_per_row)} | ${prev.peak_rss_mib} MiB | ${num(before?.file_mib)} MiB | ${num(before?.bytes_per_row)} | ${num(before?.read_1000_rows_ms)} ms | \`${String(prev.sha256).slice(0, 16)}…\` |\n\n` +
        `Same bytes as the previous run: ${prev.same_bytes}. rows/s relative to the previous run: ${(result.rows_per_second / Number(prev.rows_per_second)).toFixed(2)}x ` +
        `(the machine's load differs between runs; compare with care).\n`
      : ''),
);
console.log(JSON.stringify(result, null, 2));
