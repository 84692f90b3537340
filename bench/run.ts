/**
 * `make bench`: run every benchmark, one at a time (they measure ratios side by side inside one
 * process, so each is fair on its own), then write bench/results/summary.md with the machine it ran on.
 * Each bench writes its own bench/results/<name>.json; pass names to run a subset: `make bench BENCH="write expand"`,
 * or `--summary-only` to rebuild summary.md from the existing results.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';

const ORDER = ['expand', 'write', 'images', 'store', 'model-cache', 'teacher-micro', 'teacher', 'identity', 'scorers', 'demo', 'bookkeeping', 'near-duplicates', 'query', 'serve'];
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
// `--summary-only` rewrites summary.md from the results already in bench/results/ without running anything.
const summaryOnly = process.argv.includes('--summary-only');
const args = process.argv.slice(2).filter((a) => a !== '--summary-only');
const wanted = args.length ? args : (process.env.BENCH ?? '').split(/\s+/).filter(Boolean);
const names = summaryOnly ? [] : (wanted.length ? wanted : ORDER).filter((n) => existsSync(here(`./${n}.ts`)));

const failures: string[] = [];
for (const name of names) {
  process.stderr.write(`\n== bench ${name}\n`);
  const started = Date.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', here(`./${name}.ts`)], { stdio: 'inherit' });
  process.stderr.write(`== bench ${name}: ${r.status === 0 ? 'ok' : `failed (${r.status ?? r.signal})`} in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  if (r.status !== 0) failures.push(name);
}

const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${process.platform}/${process.arch}`;
const lines = [`# Benchmark results`, '', `Machine: ${machine}. Shared and noisy: compare the ratios measured side by side within one bench, not absolute times across runs.`, ''];
for (const name of ORDER) {
  const file = here(`./results/${name}.json`);
  if (!existsSync(file)) continue;
  lines.push(`## ${name}`, '', '```json', readFileSync(file, 'utf8').trim(), '```', '');
}
writeFileSync(here('./results/summary.md'), lines.join('\n'));
process.stderr.write(`\nwrote bench/results/summary.md${failures.length ? `; failed: ${failures.join(', ')}` : ''}\n`);
process.exitCode = failures.length ? 1 : 0;
