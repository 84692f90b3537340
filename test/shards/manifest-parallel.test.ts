/**
 * writeManifestFromShards (finalize's manifest writer): row groups read and encoded on worker threads,
 * placed in order. Pinned against the row path it replaced (writeManifest over readShardMetadataRows,
 * each shard's files merged by index): the same bytes, on this thread and on 2 and 3 threads, with row
 * groups that straddle shards. Bad files give a UserError naming the file and no finished manifest.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { planRun } from '../../src/run/plan.ts';
import { workRun } from '../../src/run/work.ts';
import { finalizeRun } from '../../src/run/finalize.ts';
import { shardMarkerKey } from '../../src/dataset/layout.ts';
import { MANIFEST_ROW_GROUP_ROWS, parseMarker, readShardMetadataRows, writeManifest, writeManifestFromShards, type GroupStatsColumns, type ManifestRow, type ManifestShard } from '../../src/shards/index.ts';
import { openStore, type Store } from '../../src/store/index.ts';
import { isUserError } from '../../src/errors.ts';
import { TestScorer } from '../helpers/test-teacher.ts';
import { FIXTURES, REPO, tempDir } from '../helpers/run-fixture.ts';

const dir = tempDir('manifest-parallel');
const run = join(dir, 'run');
let store: Store;
let shards: ManifestShard[];

before(async () => {
  const config = join(dir, 'scored.yaml');
  // Fixture edits keep ~0.97-0.999 pixel correlation: a high colour-grade threshold rejects some, so
  // shards have a data file and a rejects file whose rows interleave by index. 30 pairs in shards of 7.
  writeFileSync(config, [
    'seed: 5', 'pairs: 30', 'shard_size: 7', `prompts: { set: ${join(REPO, 'prompts/demo.yaml')} }`,
    `teacher: { model: ${join(FIXTURES, 'tiny-sd')}, steps: 2 }`,
    'identity: { enabled: true, category_thresholds: { color_grade: 0.997, lighting: -1, style: -1 } }',
    'output: { image_format: png, splits: { train: 0.5, validation: 0.25, test: 0.25 } }',
  ].join('\n'));
  await planRun(config, run);
  await workRun(run, { scorerFactory: async () => new TestScorer() });
  store = openStore(run);
  const count = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8')).shards as number;
  shards = Array.from({ length: count }, (_, s) => ({ shard: s, files: parseMarker(readFileSync(join(run, shardMarkerKey(s))), `shard ${s}`).files }));
});

/** Collects what a writer sends, and whether the sink was ended (finished) or destroyed. */
function collector() {
  const chunks: Buffer[] = [];
  const sink = new Writable({ write: (c, _e, cb) => (chunks.push(Buffer.from(c)), cb()) });
  let finished = false;
  sink.on('finish', () => (finished = true));
  sink.on('error', () => {});
  return { sink, bytes: () => Buffer.concat(chunks), finished: () => finished };
}

/** The row path finalize used before: every shard's files read as rows, merged by index, written row by row. */
async function rowPathManifest(rowGroupRows: number): Promise<{ bytes: Buffer; rows: ManifestRow[] }> {
  const all: ManifestRow[] = [];
  for (const sh of shards) {
    const rows: ManifestRow[] = [];
    for (const f of sh.files) rows.push(...(await readShardMetadataRows(await store.get(f.name), f.name)));
    all.push(...rows.sort((a, b) => a.index - b.index));
  }
  const c = collector();
  await writeManifest(c.sink, all, { rowGroupRows });
  return { bytes: c.bytes(), rows: all };
}

test('the run has accepted and rejected rows interleaved within shards (the fixture this file relies on)', () => {
  const names = shards.flatMap((s) => s.files.map((f) => f.name));
  assert.ok(names.some((n) => n.startsWith('data/')) && names.some((n) => n.startsWith('rejects/')));
  assert.ok(shards.some((s) => s.files.length > 1));
});

for (const rowGroupRows of [4, MANIFEST_ROW_GROUP_ROWS]) {
  test(`row groups of ${rowGroupRows} rows: the same manifest bytes as the row path on 1, 2 and 3 threads, and the same stats columns`, async () => {
    const reference = await rowPathManifest(rowGroupRows);
    for (const threads of [1, 2, 3]) {
      const c = collector();
      const groups: GroupStatsColumns[] = [];
      const n = await writeManifestFromShards(c.sink, { shards, store, storeUri: run, threads, rowGroupRows, onGroup: (g) => groups.push(g) });
      assert.equal(n, 30);
      assert.ok(c.finished(), 'the sink is ended');
      assert.ok(c.bytes().equals(reference.bytes), `${threads} thread(s): manifest bytes differ from the row path`);
      assert.equal(groups.length, Math.ceil(30 / rowGroupRows));
      const flat = (k: keyof GroupStatsColumns) => groups.flatMap((g) => Array.from(g[k] as ArrayLike<unknown>));
      assert.deepEqual(flat('category'), reference.rows.map((r) => r.category));
      assert.deepEqual(flat('split'), reference.rows.map((r) => r.split));
      assert.deepEqual(flat('accepted'), reference.rows.map((r) => (r.accepted ? 1 : 0)));
      assert.deepEqual(flat('reject_reason'), reference.rows.map((r) => r.reject_reason));
      assert.deepEqual(flat('identity_similarity'), reference.rows.map((r) => r.identity_similarity));
      assert.deepEqual(flat('identity_kept'), reference.rows.map((r) => (typeof r.extra.identity_kept === 'boolean' ? Number(r.extra.identity_kept) : -1)));
    }
  });
}

test('finalize writes the row path manifest, and the same manifest and stats.json on 1 and 2 threads', async () => {
  const reference = await rowPathManifest(MANIFEST_ROW_GROUP_ROWS);
  await finalizeRun(run, { preview: false, threads: 1 });
  const one = { manifest: readFileSync(join(run, 'manifest.parquet')), stats: readFileSync(join(run, 'stats.json')) };
  assert.ok(one.manifest.equals(reference.bytes));
  await finalizeRun(run, { preview: false, threads: 2 });
  assert.ok(readFileSync(join(run, 'manifest.parquet')).equals(one.manifest));
  assert.ok(readFileSync(join(run, 'stats.json')).equals(one.stats));
  const stats = JSON.parse(one.stats.toString());
  assert.equal(stats.candidates, 30);
  assert.equal(stats.accepted + stats.rejected, 30);
  assert.ok(stats.rejected > 0 && stats.accepted > 0);
});

test('a file with another row count than its marker says: a UserError naming the file, with 1 and 2 threads; the sink is not ended', async () => {
  const target = shards.findIndex((s) => s.files.length > 1);
  const file = shards[target].files[0];
  const lying = shards.map((s, i) => (i === target ? { ...s, files: s.files.map((f) => (f === file ? { ...f, rows: f.rows + 1 } : f)) } : s));
  for (const threads of [1, 2]) {
    const c = collector();
    await assert.rejects(writeManifestFromShards(c.sink, { shards: lying, store, storeUri: run, threads, rowGroupRows: 4 }), (e: Error) => {
      assert.ok(isUserError(e), `${threads} thread(s): ${e.message}`);
      assert.match(e.message, new RegExp(`${file.name}: holds ${file.rows} rows, its shard's marker says ${file.rows + 1}`));
      return true;
    });
    assert.ok(!c.finished(), 'a failed manifest must not be ended (an atomic upload would publish it)');
    assert.ok(c.sink.destroyed);
  }
});

test('a rejects file replaced by a manifest, or by a file that is not Parquet: a UserError naming it (from a worker thread too)', async () => {
  const copy = join(dir, 'copy');
  const bad = openStore(copy);
  for (const sh of shards) for (const f of sh.files) await bad.put(f.name, await store.get(f.name));
  const victim = shards.at(-1)!.files.at(-1)!;
  const cases: [string, Uint8Array, RegExp][] = [
    ['manifest', readFileSync(join(run, 'manifest.parquet')), /is a manifest, expected a shard or rejects file/],
    ['not parquet', new TextEncoder().encode('not a parquet file at all'), /not a readable Parquet file/],
  ];
  for (const [what, bytes, message] of cases) {
    await bad.put(victim.name, bytes);
    for (const threads of [1, 2]) {
      const c = collector();
      await assert.rejects(writeManifestFromShards(c.sink, { shards, store: bad, storeUri: copy, threads, rowGroupRows: 4 }), (e: Error) => {
        assert.ok(isUserError(e), `${what}, ${threads} thread(s): ${e.message}`);
        assert.match(e.message, new RegExp(victim.name.replace(/[.]/g, '\\.')));
        assert.match(e.message, message);
        return true;
      });
      assert.ok(!c.finished());
    }
  }
  copyFileSync(join(run, victim.name), join(copy, victim.name));
});

test('a worker thread that runs out of its heap cap hands its groups back to this thread: the same bytes', async () => {
  const reference = await rowPathManifest(4);
  const c = collector();
  assert.equal(await writeManifestFromShards(c.sink, { shards, store, storeUri: run, threads: 2, rowGroupRows: 4, workerHeapMib: 1 }), 30);
  assert.ok(c.bytes().equals(reference.bytes));
});

test('no shards: an empty manifest, the same bytes as the row path', async () => {
  const c = collector();
  assert.equal(await writeManifestFromShards(c.sink, { shards: [], store, storeUri: run, threads: 2 }), 0);
  const ref = new PassThrough();
  const chunks: Buffer[] = [];
  ref.on('data', (d) => chunks.push(d));
  await writeManifest(ref, []);
  assert.ok(c.bytes().equals(Buffer.concat(chunks)));
});
