/**
 * Bookkeeping at scale: `pairgen status` and `pairgen finalize` over 10,000 committed shards holding
 * 10 million candidate rows, and the memory of one worker over 200 shards.
 *
 *   node --import tsx bench/bookkeeping.ts [--shards 10000] [--rows 1000] [--worker-shards 200] [--preview-shards 100]
 *
 * Aim (issue 15): finalize at 10M rows in ≤ 60 s and ≤ 1 GiB peak RSS; the previous figure (read from
 * bench/results/bookkeeping.json before it is overwritten) is reported beside the new one. At
 * `preview-shards` shards the manifest is also written three ways side by side, each in its own process:
 * from the shards' files alone (`manifest-from-files`: every part made from the files, as finalize does
 * for shards committed before parts existed, which is the whole of what finalize did before), and merged
 * from the stored parts on 1 thread and on one thread per core; the three files must be the same bytes.
 *
 * The big run is synthetic and made fast: TEMPLATES real shards of `rows` candidates, all rejected (so
 * each one's only file is its rejects file, with every metadata column and no images), are made by the
 * worker with the test teacher and the duplicates scorer on (as in every shipped pipeline). Shards
 * TEMPLATES..N-1 are then committed by writeShard, the worker's own commit (rejects file, manifest part,
 * marker), in two child processes, from the rows of template s mod TEMPLATES with the row's own
 * identity: a unique pair_id and index, and a dHash of its own (uniform pseudo-random 64 bits, 1% of the
 * rows a near-copy of an earlier row's with 0..4 bits flipped), so that finalize's near-duplicate pass
 * reads, orders and joins as on a real run (every row is rejected, so none can be a reference and
 * nothing is marked: the join compares the same pairs, the walk marks none). Neighbouring shards hold
 * different prompts and categories, so their parts' dictionaries differ and the merge remaps indexes as
 * on a real run. run.json is widened to N shards (and sealed again). Status and finalize then do exactly
 * what they do on a real run: list, read and check every marker, mark near-duplicates across the run,
 * read every shard's metadata rows, stream manifest.parquet, write stats.json, checksums.sha256 and the
 * card. The near-duplicate pass is also timed on its own in a process of its own. Finalize runs with
 * `trustSizes`
 * (`pairgen finalize --trust-sizes`): it checks files against their markers by size, as status does,
 * so that it measures the bookkeeping, not sha256 over every byte of the run (which its default does).
 * Each phase runs in a child process so its peak RSS is its own. Local folder (s3rver would measure
 * s3rver). Writes bench/results/bookkeeping.json and bookkeeping.md.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { planRun } from '../src/run/plan.ts';
import { workRun } from '../src/run/work.ts';
import { runStatus } from '../src/run/status.ts';
import { finalizeRun } from '../src/run/finalize.ts';
import { writePreview } from '../src/report/index.ts';
import { shardMarkerKey, shardRejectsKey } from '../src/dataset/layout.ts';
import { serializePlan } from '../src/dataset/run-file.ts';
import { parseMarker, readShardMetadataRows, writeManifestFromShards, type ManifestRow, type ManifestShard, type PairRecord } from '../src/shards/index.ts';
import { writeShard } from '../src/dataset/commit.ts';
import { readPlan } from '../src/dataset/run-file.ts';
import { nearDuplicateMarks } from '../src/run/duplicates.ts';
import { syntheticId } from './synthetic-manifest.ts';
import { openStore } from '../src/store/index.ts';
import { TestScorer, TestTeacher } from '../test/helpers/test-teacher.ts';
import { writeConfig } from '../test/helpers/run-fixture.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const SHARDS = arg('shards', 10_000);
const ROWS = arg('rows', 1000);
const WORKER_SHARDS = arg('worker-shards', 200);
const PREVIEW_SHARDS = Math.min(SHARDS, arg('preview-shards', 100));
const TEMPLATES = Math.min(SHARDS, 8);
/** The share of rows whose dHash is a near-copy of an earlier row's, and the most bits a near-copy flips. */
const NEAR_COPY_PERCENT = 1;
const NEAR_COPY_BITS = 4;
const SELF = fileURLToPath(import.meta.url);
const RESULTS = fileURLToPath(new URL('./results/', import.meta.url));
/** The near-duplicate marks of the side-by-side run, beside it, for the manifest-only ways. */
const MARKS_FILE = 'bench-duplicate-of.json';

/**
 * The test scorer's scores moved below any threshold, so that every candidate is rejected (the worker
 * judges the similarity against the config's threshold itself): a shard whose files hold every metadata
 * column and no images. The similarities keep their spread, mapped into [-1, -0.5).
 */
class RejectAll extends TestScorer {
  override async score(...args: Parameters<TestScorer['score']>) {
    const v = await super.score(...args);
    return { ...v, similarity: -1 + ((v.similarity ?? 0) + 1) / 4 };
  }
}

const phase = process.argv[process.argv.indexOf('--phase') + 1];
if (process.argv.includes('--phase')) {
  await runPhase(phase, process.argv[process.argv.indexOf('--run') + 1]);
} else {
  await main();
}

/** One measured phase in its own process; prints {seconds, peak_rss_mib, ...} on stdout. */
async function runPhase(name: string, run: string): Promise<void> {
  const t0 = performance.now();
  let extra: Record<string, unknown> = {};
  if (name === 'status') {
    const s = await runStatus(run);
    extra = { committed: s.shards.committed, candidates: s.pairs.done };
  } else if (name === 'finalize' || name === 'finalize-with-preview') {
    // Sizes only, as in the file comment: the bookkeeping at 10M rows, not sha256 over every file.
    const r = await finalizeRun(run, { preview: name === 'finalize-with-preview', trustSizes: true });
    extra = { threads: availableParallelism(), manifest_rows: r.manifestRows, manifest_mib: +(statSync(join(run, 'manifest.parquet')).size / 2 ** 20).toFixed(1) };
  } else if (name === 'preview') {
    // preview/ of the finalized run on its own: the last step of a plain `pairgen finalize`.
    extra = { files: (await writePreview(run)).length };
  } else if (name.startsWith('manifest-')) {
    extra = await writeManifestBy(name, run);
  } else if (name === 'near-duplicates') {
    // finalize's near-duplicate pass on its own: read every shard's part, join, mark.
    const plan = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8'));
    const marks = await nearDuplicateMarks(openStore(run), committedShards(run, plan.shards));
    extra = { threads: availableParallelism(), rows: marks.length, marked: marks.filter((m) => m !== null).length };
  } else if (name === 'copies') {
    return commitCopies(run); // setup, not measured
  } else if (name === 'worker') {
    const rss: number[] = [];
    const heap: number[] = [];
    const s = await workRun(run, {
      teacherFactory: async () => new TestTeacher(),
      scorerFactory: async () => new TestScorer(),
      onShard: () => {
        // A full GC first (the child runs with --expose-gc), so the samples measure what is kept, not garbage.
        (globalThis as { gc?: () => void }).gc?.();
        const m = process.memoryUsage();
        rss.push(m.rss / 2 ** 20);
        heap.push(m.heapUsed / 2 ** 20);
      },
    });
    // Least-squares slopes over the shards after the first quarter (warm-up: JIT, pools, caches).
    const from = Math.floor(rss.length / 4);
    extra = {
      shards: s.committed.length,
      rss_first_mib: +rss[0].toFixed(1),
      rss_after_warmup_mib: +rss[from].toFixed(1),
      rss_last_mib: +rss[rss.length - 1].toFixed(1),
      rss_slope_kib_per_shard: +(slope(rss.slice(from)) * 1024).toFixed(1),
      heap_after_warmup_mib: +heap[from].toFixed(1),
      heap_last_mib: +heap[heap.length - 1].toFixed(1),
      heap_slope_kib_per_shard: +(slope(heap.slice(from)) * 1024).toFixed(1),
    };
  }
  const seconds = (performance.now() - t0) / 1000;
  const u = process.resourceUsage();
  const cpuSeconds = (u.userCPUTime + u.systemCPUTime) / 1e6;
  process.stdout.write(JSON.stringify({ seconds: +seconds.toFixed(2), cpu_seconds: +cpuSeconds.toFixed(1), peak_rss_mib: +(u.maxRSS / 1024).toFixed(0), ...extra }) + '\n');
}

/**
 * The manifest of `run`'s committed shards, written to manifest-<way>.parquet beside it by
 * writeManifestFromShards: `manifest-from-files` with every part made from the shard's files (one thread
 * per core), `manifest-threads-N` merged from the stored parts on N threads.
 */
async function writeManifestBy(name: string, run: string): Promise<Record<string, unknown>> {
  const store = openStore(run);
  const plan = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8'));
  const fromFiles = name === 'manifest-from-files';
  // From files: the shards as committed before parts existed (no part listed).
  const shards = committedShards(run, plan.shards).map(({ part, ...shard }) => (fromFiles ? shard : { ...shard, part }));
  const file = join(run, `${name}.parquet`);
  const sink = createWriteStream(file);
  const closed = new Promise<void>((resolve, reject) => sink.on('close', () => resolve()).on('error', reject));
  const threads = fromFiles ? availableParallelism() : Number(name.split('-').pop());
  // The run's scorer columns, and its near-duplicate marks made once beforehand (main, MARKS_FILE): this times the manifest alone.
  const duplicateOf = JSON.parse(readFileSync(join(run, MARKS_FILE), 'utf8'));
  const rows = await writeManifestFromShards(sink, { shards, store, storeUri: run, threads, scorers: plan.config.scorers?.enabled ?? [], duplicateOf });
  await closed;
  return { rows, sha256: createHash('sha256').update(readFileSync(file)).digest('hex') };
}

/** Shards 0..count-1 of `run` as their markers list them: files and manifest part. */
function committedShards(run: string, count: number): ManifestShard[] {
  return Array.from({ length: count }, (_, s) => {
    const marker = parseMarker(readFileSync(join(run, shardMarkerKey(s))), `shard ${s}`);
    return { shard: s, files: marker.files, part: marker.manifest_part };
  });
}

/** A 32-bit mix of (row, salt) (murmur3's finaliser): the bench's rows are a function of their index alone. */
function mix(row: number, salt: number): number {
  let h = Math.imul(row ^ Math.imul(salt, 0x9e3779b1), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** Row `row`'s source dHash: 64 pseudo-random bits, or for 1% of the rows an earlier row's with a few bits flipped. */
function dhashOf(row: number): string {
  if (row > 0 && mix(row, 1) % 100 < NEAR_COPY_PERCENT) {
    const digits = [...dhashOf(mix(row, 2) % row)].map((c) => parseInt(c, 16));
    for (let f = 0, flips = mix(row, 3) % (NEAR_COPY_BITS + 1); f < flips; f++) {
      const bit = mix(row, 4 + f) % 64;
      digits[bit >> 2] ^= 1 << (bit & 3);
    }
    return digits.map((d) => d.toString(16)).join('');
  }
  return mix(row, 5).toString(16).padStart(8, '0') + mix(row, 6).toString(16).padStart(8, '0');
}

/**
 * Child process `--worker w --workers W --from a --to b`: commit shards a..b-1 that are w mod W, each from
 * its template's rows with the row's own pair_id, index and dHash, by the worker's own writeShard.
 */
async function commitCopies(run: string): Promise<void> {
  const num = (flag: string) => Number(process.argv[process.argv.indexOf(flag) + 1]);
  const [worker, workers, from, to] = ['--worker', '--workers', '--from', '--to'].map(num);
  const store = openStore(run);
  const plan = await readPlan(store);
  const templates: ManifestRow[][] = [];
  for (let t = 0; t < TEMPLATES; t++) templates.push(await readShardMetadataRows(readFileSync(join(run, shardRejectsKey(t))), shardRejectsKey(t)));
  for (let s = from; s < to; s++) {
    if (s % workers !== worker) continue;
    const records = templates[s % TEMPLATES].map((row, i) => {
      const index = s * ROWS + i;
      return { ...row, pair_id: syntheticId(index), shard: s, index, duplicates_source_dhash: dhashOf(index) } as unknown as PairRecord;
    });
    await writeShard(store, plan, s, records, {});
  }
}

function slope(ys: number[]): number {
  const mx = (ys.length - 1) / 2;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let num = 0;
  let den = 0;
  ys.forEach((y, x) => {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  });
  return num / den;
}

function measure(name: string, run: string): Record<string, unknown> {
  process.stderr.write(`bookkeeping: ${name}...\n`);
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', SELF, '--phase', name, '--run', run], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`phase ${name} failed (${r.status ?? r.signal})`);
  const result = JSON.parse(r.stdout.trim().split('\n').pop()!);
  process.stderr.write(`bookkeeping: ${name}: ${JSON.stringify(result)}\n`);
  return result;
}

async function main(): Promise<void> {
  const previousFile = join(RESULTS, 'bookkeeping.json');
  const prior = existsSync(previousFile) ? JSON.parse(readFileSync(previousFile, 'utf8')) : null;
  // The figure this bench's last run measured, and the first figure on record (the row path on one thread).
  const previous = prior ? { date: prior.date, duplicates_scorer: prior.setup?.duplicates_scorer === true, ...prior.finalize_no_preview } : null;
  const original = prior?.finalize_original ?? prior?.finalize_previous ?? null;
  const dir = join(tmpdir(), `pairgen-bench-bookkeeping-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  try {
    // 1. TEMPLATES real all-rejected shards of ROWS candidates.
    const run = join(dir, 'big');
    const t0 = performance.now();
    await planRun(writeConfig(dir, { pairs: TEMPLATES * ROWS, shardSize: ROWS, name: 'bookkeeping', extra: 'scorers:\n  enabled: [duplicates]\n' }), run);
    await workRun(run, { teacherFactory: async () => new TestTeacher(16), scorerFactory: async () => new RejectAll() });
    for (let t = 0; t < TEMPLATES; t++) {
      const marker = parseMarker(readFileSync(join(run, shardMarkerKey(t))), `shard ${t}`);
      if (marker.counts.rejected !== ROWS) throw new Error('a template shard should reject every candidate');
      if (marker.files.length !== 1 || marker.files[0].name !== shardRejectsKey(t)) throw new Error('a template shard should have only its rejects file');
    }
    // 2. Shards TEMPLATES..n-1 committed from the templates' rows (commitCopies), two child processes;
    // run.json widened to n shards first.
    const planFile = join(run, 'run.json');
    const plan = JSON.parse(readFileSync(planFile, 'utf8'));
    let made = TEMPLATES;
    const widen = async (n: number) => {
      Object.assign(plan, { pairs: n * ROWS, shards: n });
      plan.config.pairs = n * ROWS;
      writeFileSync(planFile, serializePlan(plan)); // sealed again: readPlan refuses a hand-edited run.json
      const children = [0, 1].map((w) => new Promise<void>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', SELF, '--phase', 'copies', '--run', run, '--worker', String(w), '--workers', '2', '--from', String(made), '--to', String(n)], { stdio: 'inherit' });
        child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`copies ${w} failed (${code})`))));
      }));
      await Promise.all(children);
      made = Math.max(made, n);
    };
    const shardBytes = statSync(join(run, shardRejectsKey(0))).size;

    // The whole `pairgen finalize`, preview/ included, at PREVIEW_SHARDS shards; at full size the
    // manifest (`--no-preview`, the aim's figure) and then preview/ in a process of its own.
    await widen(PREVIEW_SHARDS);
    const withPreview = measure('finalize-with-preview', run);
    writeFileSync(join(run, MARKS_FILE), JSON.stringify(await nearDuplicateMarks(openStore(run), committedShards(run, PREVIEW_SHARDS))));
    const ways = ['manifest-from-files', 'manifest-threads-1', `manifest-threads-${availableParallelism()}`];
    const sideBySide = Object.fromEntries(ways.map((w) => [w, measure(w, run)]));
    const shas = new Set(Object.values(sideBySide).map((r) => r.sha256));
    if (shas.size !== 1) throw new Error(`the manifest differs between ${ways.join(', ')}: ${[...shas].join(', ')}`);
    for (const w of ways) rmSync(join(run, `${w}.parquet`));
    rmSync(join(run, MARKS_FILE));
    await widen(SHARDS);
    const setupSeconds = (performance.now() - t0) / 1000;
    const status = measure('status', run);
    const load = loadavg()[0];
    const finalize = measure('finalize', run);
    const nearDuplicates = measure('near-duplicates', run);
    const preview = measure('preview', run);

    // 3. One worker over WORKER_SHARDS small shards with the test teacher (64 px pairs, 8 per shard).
    const wrun = join(dir, 'worker');
    await planRun(writeConfig(dir, { pairs: WORKER_SHARDS * 8, shardSize: 8, name: 'worker', extra: 'runtime:\n  batch_size: 4\n' }), wrun);
    const worker = measure('worker', wrun);

    const result = {
      bench: 'bookkeeping',
      date: new Date().toISOString(),
      setup: { shards: SHARDS, rows_per_shard: ROWS, candidates: SHARDS * ROWS, shard_files_kib: +(shardBytes / 1024).toFixed(1), seconds: +setupSeconds.toFixed(1), store: 'local folder', duplicates_scorer: true, near_copy_percent: NEAR_COPY_PERCENT },
      status,
      finalize_no_preview: { ...finalize, load_average_1m_before: +load.toFixed(2) },
      finalize_aim: { seconds: 60, peak_rss_mib: 1024, met: (finalize.seconds as number) <= 60 && (finalize.peak_rss_mib as number) <= 1024 },
      near_duplicate_pass: nearDuplicates,
      finalize_previous: previous,
      finalize_original: original,
      manifest_side_by_side: { shards: PREVIEW_SHARDS, candidates: PREVIEW_SHARDS * ROWS, identical_bytes: true, ...sideBySide },
      preview_full_size: { candidates: SHARDS * ROWS, ...preview },
      finalize_with_preview: { shards: PREVIEW_SHARDS, candidates: PREVIEW_SHARDS * ROWS, ...withPreview },
      worker: { shards: WORKER_SHARDS, pairs_per_shard: 8, image_px: 64, ...worker },
    };
    mkdirSync(RESULTS, { recursive: true });
    writeFileSync(join(RESULTS, 'bookkeeping.json'), JSON.stringify(result, null, 2) + '\n');
    const md = [
      '# bookkeeping',
      '',
      `${SHARDS.toLocaleString('en')} committed shards, ${(SHARDS * ROWS).toLocaleString('en')} candidate rows (the rows of ${TEMPLATES} all-rejected ${ROWS}-row shards, each with its own pair_id, index and source dHash, ${NEAR_COPY_PERCENT}% near-copies), duplicates scorer on, local folder; each phase in its own process.`,
      '',
      `Machine: ${availableParallelism()} cores; 1-minute load average ${load.toFixed(2)} when finalize started (other jobs share the machine: CPU seconds are given beside wall seconds).`,
      '',
      '| phase | seconds | CPU seconds | peak RSS MiB | notes |',
      '| --- | --- | --- | --- | --- |',
      `| status (list + read and check ${SHARDS} markers) | ${status.seconds} | ${status.cpu_seconds} | ${status.peak_rss_mib} | ${status.committed} committed |`,
      `| **finalize --no-preview --trust-sizes** (mark near-duplicates, read every shard's metadata, stream manifest, stats, checksums, card), ${finalize.threads} threads | **${finalize.seconds}** | ${finalize.cpu_seconds} | **${finalize.peak_rss_mib}** | ${finalize.manifest_rows} manifest rows, ${finalize.manifest_mib} MiB; aim ≤ 60 s and ≤ 1024 MiB: ${(finalize.seconds as number) <= 60 ? 'time met' : 'time not met'}, ${(finalize.peak_rss_mib as number) <= 1024 ? 'memory met' : 'memory not met'} |`,
      `| of which the near-duplicate pass, on its own (read ${SHARDS} parts' 4 columns, join on ${nearDuplicates.threads} threads, mark) | ${nearDuplicates.seconds} | ${nearDuplicates.cpu_seconds} | ${nearDuplicates.peak_rss_mib} | ${nearDuplicates.marked} rows marked |`,
      ...(previous ? [`| previous run of this bench (${previous.date}${previous.load_average_1m_before !== undefined ? `, load average ${previous.load_average_1m_before}` : ''}${previous.duplicates_scorer ? '' : '; without the duplicates scorer, copies with repeated pair ids'}) | ${previous.seconds} | ${previous.cpu_seconds ?? '—'} | ${previous.peak_rss_mib} | ${previous.manifest_rows} manifest rows, ${previous.manifest_mib} MiB |`] : []),
      ...(original ? [`| first figure (${original.date}, row path on one thread) | ${original.seconds} | — | ${original.peak_rss_mib} | ${original.manifest_rows} manifest rows, ${original.manifest_mib} MiB |`] : []),
      ...ways.map((w) => `| manifest only, ${PREVIEW_SHARDS} shards (${(PREVIEW_SHARDS * ROWS).toLocaleString('en')} rows): ${w === 'manifest-from-files' ? `every part made from the shard files (what finalize did before), ${availableParallelism()} threads` : `merged from stored parts, ${w.split('-').pop()} thread(s)`} | ${sideBySide[w].seconds} | ${sideBySide[w].cpu_seconds} | ${sideBySide[w].peak_rss_mib} | sha256 ${String(sideBySide[w].sha256).slice(0, 12)}… (identical) |`),
      `| preview/ of the ${(SHARDS * ROWS).toLocaleString('en')}-row manifest (the last step of a plain \`pairgen finalize\`: contact sheets, histogram, index.html) | ${preview.seconds} | ${preview.cpu_seconds} | ${preview.peak_rss_mib} | ${preview.files} files |`,
      `| finalize --trust-sizes with preview/, ${PREVIEW_SHARDS} shards (${(PREVIEW_SHARDS * ROWS).toLocaleString('en')} rows) | ${withPreview.seconds} | ${withPreview.cpu_seconds} | ${withPreview.peak_rss_mib} | ${withPreview.manifest_rows} manifest rows |`,
      `| worker, ${WORKER_SHARDS} shards × 8 pairs (test teacher) | ${worker.seconds} | ${worker.cpu_seconds} | ${worker.peak_rss_mib} | after warm-up (GC before each sample): RSS ${worker.rss_after_warmup_mib} → ${worker.rss_last_mib} MiB, slope ${worker.rss_slope_kib_per_shard} KiB/shard; heap ${worker.heap_after_warmup_mib} → ${worker.heap_last_mib} MiB, slope ${worker.heap_slope_kib_per_shard} KiB/shard |`,
      '',
    ].join('\n');
    writeFileSync(join(RESULTS, 'bookkeeping.md'), md);
    process.stderr.write(md);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
