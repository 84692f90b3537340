/**
 * finalize's near-duplicate marking at 10M rows, three ways side by side, each in its own process so
 * its peak RSS is its own:
 * - `strings`: the rows as arrays of strings and findNearDuplicates (its pair-id order by a comparator
 *   sort), as finalize held them first;
 * - `typed`: the rows as typed arrays (HashColumns; pair_id as a 64-bit key in radix order) and markRows,
 *   the join on one thread;
 * - `threads`: the same with the join on one worker thread per core (markRowsOnThreads), as
 *   src/run/duplicates.ts runs it from 500,000 rows.
 * The rows are pseudo-random 16-hex pair ids (out of order, as in a run) and dHashes from a small
 * generator whose outputs cluster (more near pairs than uniform hashes would have), 75% accepted; every
 * way must mark the same rows. Reading the shard files is not part of it (the same column reader either way).
 *
 *   node --import tsx bench/near-duplicates.ts [--rows 10000000]
 *
 * Writes bench/results/near-duplicates.{json,md}.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { findNearDuplicates, HashColumns, keyOrder, markRows, markRowsOnThreads } from '../src/scorers/near-duplicates.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const ROWS = arg('rows', 10_000_000);
const SELF = fileURLToPath(import.meta.url);

function generator(): () => string {
  let s = 12345;
  const word = () => (s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0);
  return () => word().toString(16).padStart(8, '0') + word().toString(16).padStart(8, '0');
}

async function runWay(way: string, rows: number): Promise<void> {
  const next = generator();
  const t0 = performance.now();
  let marked = 0;
  let digest = createHash('sha256');
  if (way === 'strings') {
    const pairIds: string[] = [];
    const dhashes: string[] = [];
    const accepted: boolean[] = [];
    for (let i = 0; i < rows; i++) {
      pairIds.push(next());
      dhashes.push(next());
      accepted.push(i % 4 !== 0);
    }
    const marks = findNearDuplicates({ pairIds, dhashes, accepted });
    marks.forEach((m, i) => {
      if (m !== null) (marked++, (digest = digest.update(`${i} ${m}\n`)));
    });
  } else {
    const ids = new HashColumns(rows);
    const hashes = new HashColumns(rows);
    const accepted = new Uint8Array(rows);
    for (let i = 0; i < rows; i++) {
      ids.set(i, next());
      hashes.set(i, next());
      accepted[i] = i % 4 !== 0 ? 1 : 0;
    }
    const input = { order: keyOrder(ids), hashes, accepted };
    const markRow = way === 'threads' ? await markRowsOnThreads(input, undefined, availableParallelism()) : markRows(input);
    const hex = (m: number) => ids.hi[m].toString(16).padStart(8, '0') + ids.lo[m].toString(16).padStart(8, '0');
    markRow.forEach((m, i) => {
      if (m >= 0) (marked++, (digest = digest.update(`${i} ${hex(m)}\n`)));
    });
  }
  const u = process.resourceUsage();
  process.stdout.write(JSON.stringify({ way, seconds: +((performance.now() - t0) / 1000).toFixed(1), cpu_seconds: +((u.userCPUTime + u.systemCPUTime) / 1e6).toFixed(1), peak_rss_mib: Math.round(u.maxRSS / 1024), marked, marks_sha256: digest.digest('hex') }) + '\n');
}

if (process.argv.includes('--way')) {
  await runWay(process.argv[process.argv.indexOf('--way') + 1], ROWS);
} else {
  const load = loadavg()[0];
  const results = ['strings', 'typed', 'threads'].map((way) => {
    process.stderr.write(`near-duplicates: ${way}...\n`);
    const r = spawnSync(process.execPath, ['--max-old-space-size=8192', '--import', 'tsx', SELF, '--way', way, '--rows', String(ROWS)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (r.status !== 0) throw new Error(`${way} failed (${r.status ?? r.signal})`);
    return JSON.parse(r.stdout.trim());
  });
  if (new Set(results.map((r) => r.marks_sha256)).size !== 1) throw new Error(`the ways mark different rows (${results.map((r) => r.marked).join(', ')})`);
  const out = { bench: 'near-duplicates', date: new Date().toISOString(), cpus: cpus().length, load_average_1m_before: +load.toFixed(2), rows: ROWS, ways: results };
  const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
  writeFileSync(here('./results/near-duplicates.json'), JSON.stringify(out, null, 2) + '\n');
  writeFileSync(
    here('./results/near-duplicates.md'),
    [
      '# near-duplicates',
      '',
      `finalize's near-duplicate marking over ${ROWS.toLocaleString('en')} pseudo-random rows (pair ids out of order, 75% accepted), each way in its own process; ${cpus().length} cores, 1-minute load average ${load.toFixed(2)} before. Every way gives every row the same mark (${results[0].marked.toLocaleString('en')} rows marked).`,
      '',
      '| way | seconds | CPU seconds | peak RSS MiB |',
      '| --- | --- | --- | --- |',
      ...results.map((r) => `| ${{ strings: 'arrays of strings, comparator sort (first)', typed: 'typed arrays, radix order, join on 1 thread (before)', threads: `typed arrays, join on ${availableParallelism()} worker threads (now)` }[r.way as string]} | ${r.seconds} | ${r.cpu_seconds} | ${r.peak_rss_mib} |`),
      '',
    ].join('\n'),
  );
  process.stderr.write(JSON.stringify(out, null, 2) + '\n');
}
