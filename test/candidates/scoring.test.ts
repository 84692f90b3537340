/**
 * The scoring pool (src/candidates/scoring.ts, threads from src/util/thread-pool.ts) on real models and real faces: the same pairs scored on the
 * calling thread, on one thread and on two give the same numbers; errors inside a thread reach the
 * caller (a bad image, a missing model at start, a thread that dies); close ends every thread.
 * Pairs: a portrait cut from @vladmandic/face-api's demo photo 5 (as test/scorers/faces.test.ts and
 * test/cli/score.test.ts do) against itself turned, blurred and mirrored, demo photo 1 against a
 * brighter copy, and a faceless pair.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp, { type Sharp } from 'sharp';
import { isUserError } from '../../src/errors.ts';
import { DEFAULT_IDENTITY } from '../../src/identity/config.ts';
import { openDetector } from '../../src/identity/models.ts';
import { decodeImage } from '../../src/image/index.ts';
import { DEFAULT_RUNTIME } from '../../src/onnx/session.ts';
import { packagePath } from '../../src/onnx/tfjs/cache.ts';
import { DEFAULT_SCORERS } from '../../src/scorers/index.ts';
import { createScoringPool, defaultScoringThreads, type PoolScore, type ScoringPool } from '../../src/candidates/scoring.ts';
import { ThreadPool } from '../../src/util/thread-pool.ts';
import type { CandidateSpec, RgbImage } from '../../src/types.ts';
import { tempDir } from '../helpers/run-fixture.ts';

const dir = tempDir('pairgen-pool-');
test.after(() => rmSync(dir, { recursive: true, force: true }));

const raw = async (s: Sharp): Promise<RgbImage> => {
  const { data, info } = await s.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data) };
};
const image = (img: RgbImage) => sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
const spec = (n: number, instruction: string): CandidateSpec => ({
  pairId: `pair-${n}`, index: n, seed: n, promptId: 'p', sampleIndex: n, category: 'portrait', sourcePrompt: '', instruction, targetPrompt: '', identityThreshold: null, attributes: {},
});

const pairs: { source: RgbImage; edited: RgbImage; spec: CandidateSpec }[] = await (async () => {
  const photo = await decodeImage(packagePath('@vladmandic/face-api', 'demo/sample5.jpg'));
  const detector = await openDetector(DEFAULT_IDENTITY, DEFAULT_RUNTIME);
  const [x1, y1, x2, y2] = (await detector.detect(photo))[0].box;
  await detector.close();
  const side = Math.round(2.5 * Math.max(x2 - x1, y2 - y1));
  const left = Math.max(0, Math.round((x1 + x2 - side) / 2)), top = Math.max(0, Math.round((y1 + y2 - side) / 2));
  const portrait = await raw(image(photo).extract({ left, top, width: Math.min(side, photo.width - left), height: Math.min(side, photo.height - top) }).resize(256, 256));
  const group = await raw(sharp(packagePath('@vladmandic/face-api', 'demo/sample1.jpg')).resize(384));
  const grey = await raw(sharp({ create: { width: 96, height: 64, channels: 3, background: '#808080' } }));
  return [
    { source: portrait, edited: await raw(image(portrait).rotate(20, { background: '#000' }).resize(256, 256)), spec: spec(0, 'turn the head') },
    { source: portrait, edited: await raw(image(portrait).blur(2)), spec: spec(1, 'soften the photo') },
    { source: portrait, edited: await raw(image(portrait).flop()), spec: spec(2, 'mirror it') },
    { source: group, edited: await raw(image(group).modulate({ brightness: 1.2 })), spec: spec(3, 'make it brighter') },
    // A Node Buffer as the pixels (what sharp returns): the pool must copy it, not move the caller's memory.
    { source: { ...grey, data: Buffer.from(grey.data) }, edited: await raw(image(grey).tint('#ff8040')), spec: spec(4, 'make it orange') },
  ];
})();

const options = { identity: DEFAULT_IDENTITY, scorers: DEFAULT_SCORERS, runtime: DEFAULT_RUNTIME };
/** Every pair at once (the pool queues what its threads cannot take yet); the seconds are left out, they are timings. */
type Scored = { identity: PoolScore['identity']; scores: Record<string, number | null>; texts: Record<string, string | null> };
async function scoreAll(pool: ScoringPool): Promise<Scored[]> {
  const results = await Promise.all(pairs.map((p) => pool.score(p.source, p.edited, p.spec)));
  return results.map((r) => ({ identity: r.identity, scores: r.scores.scores, texts: r.scores.texts }));
}
const threadsOfProcess = () => Number(/^Threads:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]);

test('the same pairs scored on this thread, on 1 thread and on 2 give identical numbers, and the images stay with the caller', async (t) => {
  const results: Record<number, unknown> = {};
  const infos: Record<number, unknown> = {};
  const osThreads: { threads: number; during: number; after: number }[] = [];
  for (const threads of [0, 1, 2]) {
    const pool = await createScoringPool({ ...options, threads });
    let during = 0;
    try {
      assert.equal(pool.threads, threads);
      infos[threads] = pool.info;
      const started = performance.now();
      results[threads] = await scoreAll(pool);
      t.diagnostic(`${threads} threads: ${pairs.length} pairs in ${((performance.now() - started) / 1000).toFixed(2)} s`);
      // Counted once the pairs are scored: sharp (libvips) and libuv start helper threads of the process
      // on demand and keep them, so only a count taken after that work compares with one after close.
      during = threadsOfProcess();
    } finally {
      await pool.close();
    }
    osThreads.push({ threads, during, after: threadsOfProcess() });
  }
  assert.deepEqual(results[1], results[0]);
  assert.deepEqual(results[2], results[0]);
  assert.deepEqual(infos[1], infos[0]);
  assert.deepEqual(infos[2], infos[0]);
  // The numbers are the real ones: faces found and compared, a turned face reads its roll, a faceless pair has no face scores.
  const [turned, blurred, , group, faceless] = results[0] as Scored[];
  assert.ok(turned.identity!.similarity! > 0.6 && Math.abs(turned.scores['pose.roll_delta']! - 20) < 3, `turned: similarity ${turned.identity!.similarity}, roll delta ${turned.scores['pose.roll_delta']}`);
  assert.ok(blurred.scores['quality.sharpness_ratio']! < 0.5, `blurred: sharpness ratio ${blurred.scores['quality.sharpness_ratio']}`);
  assert.ok(group.identity!.sourceFaces >= 1 && group.scores['edit.magnitude']! > 0);
  assert.equal(faceless.identity!.faceProblem, 'no_face_source');
  assert.equal(faceless.scores['pose.yaw_delta'], null);
  assert.ok(faceless.scores['edit.magnitude']! > 0);
  assert.match((infos[0] as { identity: { name: string } }).identity.name, /^identity:/);
  // The pool copied the images: the caller's are untouched and still usable.
  assert.equal(pairs[0].source.data.length, 256 * 256 * 3);
  assert.equal(pairs[4].source.data.length, 96 * 64 * 3);
  // close ended every thread: each worker thread is an OS thread of this process, gone once it ends.
  for (const o of osThreads) assert.ok(o.after <= o.during - o.threads, `OS threads with ${o.threads} scoring threads: ${o.during} while open, ${o.after} after close`);
});

test('identity disabled: no identity result, no face scores; a pair that fails inside a thread rejects with its error, and the thread goes on', async () => {
  const bad: RgbImage = { width: 64, height: 64, data: new Uint8Array(100) };
  const messages: string[] = [];
  for (const threads of [0, 1]) {
    const pool = await createScoringPool({ ...options, identity: { ...DEFAULT_IDENTITY, enabled: false }, scorers: { enabled: ['pose', 'edit'] }, threads });
    try {
      assert.equal(pool.info.identity, null);
      assert.equal(pool.info.scorers.name, 'scorers:pose+edit');
      await assert.rejects(pool.score(bad, bad, pairs[0].spec), (e: Error) => (messages.push(e.message), !isUserError(e)));
      const r = await pool.score(pairs[0].source, pairs[0].edited, pairs[0].spec);
      assert.equal(r.identity, null);
      assert.equal(r.scores.scores['pose.roll_delta'], null, 'no faces without the identity stage');
      assert.ok(r.scores.scores['edit.magnitude']! > 0);
    } finally {
      await pool.close();
    }
  }
  // The first line: libvips's error buffer is shared, so two failing resizes at once may both appear.
  const first = (m: string) => m.split('\n')[0];
  assert.equal(first(messages[1]), first(messages[0]), 'the same error on a thread as on this one');
  assert.match(first(messages[0]), /12288/, 'sharp says how many bytes a 64×64 image needs');
});

test('a model that cannot be opened fails the pool at start with the thread\'s user error, and no thread is left running', async () => {
  const missing = join(dir, 'missing-scrfd.onnx');
  const identity = { ...DEFAULT_IDENTITY, detector: { ...DEFAULT_IDENTITY.detector, kind: 'scrfd' as const, model: missing } };
  const before = threadsOfProcess();
  await assert.rejects(createScoringPool({ ...options, identity, threads: 2 }), (e: Error) => isUserError(e) && e.message.includes(missing));
  await assert.rejects(createScoringPool({ ...options, identity, threads: 0 }), (e: Error) => isUserError(e) && e.message.includes(missing));
  assert.ok(threadsOfProcess() <= before, `OS threads: ${before} before, ${threadsOfProcess()} after`);
  await assert.rejects(createScoringPool({ ...options, threads: -1 }), (e: Error) => isUserError(e) && /threads/.test(e.message));
});

test('close: queued pairs are rejected, later calls too, and closing twice is harmless', async () => {
  const pool = await createScoringPool({ ...options, scorers: { enabled: ['edit'] }, threads: 1 });
  const first = pool.score(pairs[3].source, pairs[3].edited, pairs[3].spec);
  const queued = assert.rejects(pool.score(pairs[3].source, pairs[3].edited, pairs[3].spec), /closed before this request ran/);
  const closing = pool.close();
  assert.ok((await first).scores.scores['edit.magnitude']! > 0, 'the pair a thread was scoring finishes');
  await queued;
  await closing;
  await pool.close();
  await assert.rejects(pool.score(pairs[3].source, pairs[3].edited, pairs[3].spec), /closed/);
});

test('a thread that dies rejects its request, the queued ones and any later one, saying which thread and how', async () => {
  // Real threads serving with thread-pool.ts's own serveThread; a request for a negative number makes its thread exit.
  const module = join(dir, 'dying.mjs');
  writeFileSync(module, `import { serveThread } from ${JSON.stringify(new URL('../../src/util/thread-pool.ts', import.meta.url).href)};
await serveThread(async () => ({ ready: 'up', handle: async (n) => { if (n < 0) process.exit(7); return n * 2; }, close: async () => {} }));
`);
  const { pool, ready } = await ThreadPool.start<number, number, string>(pathToFileURL(module), 2, {}, 'test thread');
  try {
    assert.equal(ready, 'up');
    assert.deepEqual(await Promise.all([1, 2, 3, 4, 5].map((n) => pool.run(n))), [2, 4, 6, 8, 10], 'results in request order');
    const dying = [pool.run(-1), pool.run(-2)]; // one on each thread
    const queued = [pool.run(6), pool.run(7), pool.run(8)];
    for (const d of dying) await assert.rejects(d, /^Error: test thread [01] of 2 exited \(code 7\)$/);
    for (const q of queued) await assert.rejects(q, /^Error: test thread [01] of 2 exited \(code 7\)$/);
    await assert.rejects(pool.run(9), /exited \(code 7\)/);
  } finally {
    await pool.close();
  }
});

test('defaultScoringThreads: a core is left to the teacher and the main thread, and each thread\'s onnxruntime threads count', () => {
  const runtime = (intra: number) => ({ ...DEFAULT_RUNTIME, intra_op_threads: intra });
  assert.equal(defaultScoringThreads(runtime(1), 8), 7);
  assert.equal(defaultScoringThreads(runtime(2), 8), 3);
  assert.equal(defaultScoringThreads(runtime(0), 8), 1, '0 = onnxruntime\'s default, every core per session');
  assert.equal(defaultScoringThreads(runtime(1), 2), 1);
  assert.equal(defaultScoringThreads(runtime(1), 1), 1);
  assert.ok(defaultScoringThreads(DEFAULT_RUNTIME) >= 1);
});
