/**
 * Demo benchmark: `pairgen run pipelines/demo.yaml` end to end (plan, sample, score, encode, write,
 * finalize) in a child process, as `make demo` runs it. Reports demo pairs per second, the stage
 * timings the shards record (markers/shard-NNNNN.timings.json), and the share of wall time spent inside ONNX model sessions
 * (the teacher's worker thread and the main thread; the scoring pool's threads start without the
 * preload and are not counted: bench/scorers.ts times them), the filters' precision and
 * recall against the reference teacher's ground truth (stats.json), and the same run with scoring on the
 * main thread (`runtime.scoring_threads=0`) right after it: the scoring pool's effect on the whole job.
 *
 *   node --import tsx bench/demo.ts [--pairs 240]      → bench/results/demo.json
 *
 * Session time is measured by a small preload (`--import`) in the child that wraps
 * InferenceSession.prototype.run in every thread (workers inherit the preload) and keeps a per-thread
 * total. Nothing in src/ knows about it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ensureReferenceTeacher } from '../src/reference/index.ts';
import type { RunStats } from '../src/run/finalize.ts';
import { MARKERS_PREFIX } from '../src/dataset/layout.ts';

/**
 * The preload (plain JS: worker threads inherit `--import` but not tsx's hooks for it). It wraps
 * InferenceSession.prototype.run of the same onnxruntime-node module the app loads, and keeps this
 * thread's total in PAIRGEN_BENCH_SESSIONS/<pid>-<thread>.json.
 */
function preloadSource(): string {
  const ort = pathToFileURL(createRequire(import.meta.url).resolve('onnxruntime-node')).href;
  return `import ort from ${JSON.stringify(ort)};
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
const proto = ort.InferenceSession.prototype;
const run = proto.run;
const file = join(process.env.PAIRGEN_BENCH_SESSIONS, process.pid + '-' + threadId + '.json');
let ms = 0, calls = 0;
proto.run = async function (...args) {
  const t0 = performance.now();
  try { return await run.apply(this, args); }
  finally { ms += performance.now() - t0; calls++; writeFileSync(file, JSON.stringify({ thread: threadId, ms, calls })); }
};
`;
}

await main();

async function main(): Promise<void> {
  const here = dirname(fileURLToPath(import.meta.url));
  const i = process.argv.indexOf('--pairs');
  const pairs = i > 0 ? Number(process.argv[i + 1]) : 240;

  await ensureReferenceTeacher();
  const tmp = mkdtempSync(join(tmpdir(), 'pairgen-bench-demo-'));
  try {
    const out = join(tmp, 'run');
    const sessions = join(tmp, 'sessions');
    mkdirSync(sessions);
    const preload = join(tmp, 'session-timer.mjs');
    writeFileSync(preload, preloadSource());
    const demo = (dir: string, extra: string[] = []) => {
      const started = performance.now();
      const r = spawnSync(
        process.execPath,
        ['--import', 'tsx', '--import', preload, join(here, '../bin/pairgen.js'), 'run', join(here, '../pipelines/demo.yaml'), '--out', dir, '--pairs', String(pairs), ...extra],
        { env: { ...process.env, PAIRGEN_BENCH_SESSIONS: sessions }, stdio: ['ignore', 'inherit', 'inherit'] },
      );
      if (r.status !== 0) throw new Error(`pairgen run failed (${r.status ?? r.signal})`);
      return (performance.now() - started) / 1000;
    };
    const wall = demo(out);
    const threads = readdirSync(sessions).map((f) => JSON.parse(readFileSync(join(sessions, f), 'utf8')) as { thread: number; ms: number; calls: number });
    rmSync(sessions, { recursive: true });
    mkdirSync(sessions);
    const mainThreadWall = demo(join(tmp, 'main-thread'), ['--set', 'runtime.scoring_threads=0']);

    const main = threads.filter((t) => t.thread === 0);
    const workers = threads.filter((t) => t.thread !== 0);
    const sum = (ts: { ms: number }[]) => ts.reduce((a, t) => a + t.ms, 0) / 1000;
    const timings: Record<string, number> = {};
    for (const f of readdirSync(join(out, MARKERS_PREFIX)).filter((f) => /^shard-\d+\.timings\.json$/.test(f))) {
      const shard = JSON.parse(readFileSync(join(out, MARKERS_PREFIX, f), 'utf8')) as Record<string, number>;
      for (const [k, v] of Object.entries(shard)) timings[k] = (timings[k] ?? 0) + v;
    }
    const stats = JSON.parse(readFileSync(join(out, 'stats.json'), 'utf8')) as RunStats;
    const pr = (x: { precision: number | null; recall: number | null } | null | undefined) => x && { precision: x.precision && round(x.precision), recall: x.recall && round(x.recall) };
    const round = (x: number, d = 3) => Number(x.toFixed(d));
    const result = {
      command: `node --import tsx bench/demo.ts --pairs ${pairs}`,
      pairs,
      accepted: stats.accepted,
      wall_s: round(wall, 1),
      pairs_per_s: round(pairs / wall),
      scoring_on_main_thread: { wall_s: round(mainThreadWall, 1), pairs_per_s: round(pairs / mainThreadWall), pool_over_main_thread_wall: round(wall / mainThreadWall) },
      inside_sessions: {
        worker_threads_s: round(sum(workers), 1),
        worker_thread_calls: workers.reduce((a, t) => a + t.calls, 0),
        main_thread_s: round(sum(main), 1),
        main_thread_calls: main.reduce((a, t) => a + t.calls, 0),
        share_of_wall: round((sum(workers) + sum(main)) / wall),
        worker_threads_share_of_wall: round(sum(workers) / wall),
        main_thread_share_of_wall: round(sum(main) / wall),
      },
      shard_timings_s: Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, round(v, 1)])),
      identity_vs_ground_truth: pr(stats.identity_vs_ground_truth),
      edit_rules_vs_ground_truth: pr(stats.edit_vs_ground_truth?.edit),
      all_rules_vs_ground_truth: pr(stats.edit_vs_ground_truth?.pair),
      note: 'Worker threads: the teacher\'s only. The scoring pool starts its threads without the parent\'s --import (src/util/thread-pool.ts), so its session time is not counted here; bench/scorers.ts times the scorers. Stages overlap (the teacher samples the next batch while pairs are scored), so session shares can sum past the wall time. The two runs go one after the other on a shared 2-core machine: compare ratios, not absolute times.',
    };
    mkdirSync(join(here, 'results'), { recursive: true });
    writeFileSync(join(here, 'results', 'demo.json'), JSON.stringify(result, null, 2) + '\n');
    console.log(JSON.stringify(result, null, 2));
  } finally {
    if (existsSync(tmp)) rmSync(tmp, { recursive: true, force: true });
  }
}
