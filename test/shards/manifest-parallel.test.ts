/**
 * writeManifestFromShards (finalize's manifest writer): row groups of whole shards merged from the
 * shards' manifest parts on worker threads, placed in order. Pinned against the row path (writeManifest
 * over readShardMetadataRows, each shard's files merged by index): with one shard per row group the same
 * pages, indexes and footer (but for total_byte_size); with several, the same rows and the same chunk statistics. The same bytes on 1, 2 and 3
 * threads, and whether parts are read from the store or made from the shards' files (markers written
 * before parts existed). Bad files give a UserError naming the file and no finished manifest.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { readColumnIndex, readOffsetIndex } from 'hyparquet/src/indexes.js';
import { deserializeTCompactProtocol } from 'hyparquet/src/thrift.js';
import { planRun } from '../../src/run/plan.ts';
import { workRun } from '../../src/run/work.ts';
import { finalizeRun } from '../../src/run/finalize.ts';
import { shardMarkerKey } from '../../src/dataset/layout.ts';
import { markerJson, MANIFEST_ROW_GROUP_ROWS, parseMarker, readShardMetadataRows, writeManifest, writeManifestFromShards, type GroupStatsColumns, type ManifestRow, type ManifestShard } from '../../src/shards/index.ts';
import { openStore, type Store } from '../../src/store/index.ts';
import { ByteWriter } from 'hyparquet-writer';
import { mergeManifestGroup } from '../../src/shards/manifest-merge.ts';
import { parquetWriter } from '../../src/shards/parquet.ts';
import { runSchemas } from '../../src/shards/record.ts';
import { placeRowGroup, SerializedPageIndexes } from '../../src/util/parquet-groups.ts';
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
  shards = Array.from({ length: count }, (_, s) => {
    const marker = parseMarker(readFileSync(join(run, shardMarkerKey(s))), `shard ${s}`);
    return { shard: s, files: marker.files, part: marker.manifest_part };
  });
});

/** The same shards as a run committed before parts existed: finalize makes each part from the files. */
const withoutParts = () => shards.map(({ shard, files }) => ({ shard, files }));

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

/** A manifest's rows as hyparquet reads them. */
async function readRows(bytes: Buffer): Promise<Record<string, unknown>[]> {
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  return parquetReadObjects({ file });
}

/** Every column chunk's footer statistics, row group by row group. */
function chunkStatistics(bytes: Buffer): unknown[] {
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  return parquetMetadata(file).row_groups.map((g) => g.columns.map((c) => [c.meta_data!.path_in_schema.join('.'), c.meta_data!.statistics, String(c.meta_data!.num_values)]));
}

test('every shard has a manifest part listed in its marker; rows of a data and a rejects file interleave within shards (the fixture this file relies on)', () => {
  const names = shards.flatMap((s) => s.files.map((f) => f.name));
  assert.ok(names.some((n) => n.startsWith('data/')) && names.some((n) => n.startsWith('rejects/')));
  assert.ok(shards.some((s) => s.files.length > 1));
  for (const s of shards) assert.equal(s.part?.name, `manifest-parts/shard-0000${s.shard}.parquet`);
});

/**
 * The same file but for row groups' total_byte_size: the row path sums the sizes list columns' pages had
 * before their conversion to v1 pages, the merge their final sizes (what the field means).
 */
function assertSameFile(actual: Buffer, expected: Buffer, what: string): void {
  const footerAt = (b: Buffer) => b.length - 8 - b.readUInt32LE(b.length - 8);
  assert.equal(footerAt(actual), footerAt(expected), `${what}: the pages and indexes differ in size`);
  assert.ok(actual.subarray(0, footerAt(actual)).equals(expected.subarray(0, footerAt(expected))), `${what}: the pages or indexes differ`);
  const footer = (b: Buffer) => {
    const f = deserializeTCompactProtocol({ view: new DataView(b.buffer, b.byteOffset, b.length), offset: footerAt(b) }) as { field_4: { field_2?: bigint }[] };
    for (const g of f.field_4) delete g.field_2;
    return f;
  };
  assert.deepEqual(footer(actual), footer(expected), `${what}: the footers differ`);
}

test('one shard per row group: the same bytes as the row path, from stored parts and from the files, on 1, 2 and 3 threads', async () => {
  const reference = await rowPathManifest(7); // shards of 7 rows (the last of 2)
  for (const source of [shards, withoutParts()]) {
    for (const threads of [1, 2, 3]) {
      const c = collector();
      const groups: GroupStatsColumns[] = [];
      const n = await writeManifestFromShards(c.sink, { shards: source, store, storeUri: run, threads, rowGroupRows: 7, onGroup: (g) => groups.push(g) });
      assert.equal(n, 30);
      assert.ok(c.finished(), 'the sink is ended');
      assertSameFile(c.bytes(), reference.bytes, `${threads} thread(s), ${source === shards ? 'stored parts' : 'parts made from files'}`);
      assert.equal(groups.length, 5);
    }
  }
});

for (const rowGroupRows of [4, 15, MANIFEST_ROW_GROUP_ROWS]) {
  test(`row groups of at most ${rowGroupRows} rows (whole shards): the row path's rows and chunk statistics, the same bytes on 1, 2 and 3 threads and without stored parts, and the same stats columns`, async () => {
    const groupSizes = rowGroupRows === 4 ? [7, 7, 7, 7, 2] : rowGroupRows === 15 ? [14, 14, 2] : [30];
    const reference = await rowPathManifest(groupSizes[0]);
    let first: Buffer | null = null;
    for (const source of [shards, withoutParts()]) {
      for (const threads of [1, 2, 3]) {
        const c = collector();
        const groups: GroupStatsColumns[] = [];
        assert.equal(await writeManifestFromShards(c.sink, { shards: source, store, storeUri: run, threads, rowGroupRows, onGroup: (g) => groups.push(g) }), 30);
        first ??= c.bytes();
        assert.ok(c.bytes().equals(first), `${threads} thread(s): other bytes`);
        assert.deepEqual(groups.map((g) => g.category.length), groupSizes);
        const flat = (k: keyof GroupStatsColumns) => groups.flatMap((g) => Array.from(g[k] as ArrayLike<unknown>));
        assert.deepEqual(flat('category'), reference.rows.map((r) => r.category));
        assert.deepEqual(flat('split'), reference.rows.map((r) => r.split));
        assert.deepEqual(flat('accepted'), reference.rows.map((r) => (r.accepted ? 1 : 0)));
        assert.deepEqual(flat('reject_reason'), reference.rows.map((r) => r.reject_reason));
        assert.deepEqual(flat('identity_similarity'), reference.rows.map((r) => r.identity_similarity));
        assert.deepEqual(flat('identity_kept'), reference.rows.map((r) => (typeof r.extra.identity_kept === 'boolean' ? Number(r.extra.identity_kept) : -1)));
      }
    }
    assert.deepEqual(await readRows(first!), await readRows(reference.bytes));
    // The row path with the same group sizes: chunk statistics of pages put together equal those of one pass.
    if (groupSizes.every((n, i) => n === groupSizes[0] || i === groupSizes.length - 1)) assert.deepEqual(chunkStatistics(first!), chunkStatistics(reference.bytes));
  });
}

test('the page indexes of merged chunks: a page per shard, first rows at the shards\' starts, each page\'s min and max bound its values', async () => {
  const c = collector();
  await writeManifestFromShards(c.sink, { shards, store, storeUri: run, threads: 1, rowGroupRows: 15 });
  const bytes = c.bytes();
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const metadata = parquetMetadata(file);
  const rows = await readRows(bytes);
  const schema = metadata.schema;
  let indexed = 0;
  for (const [g, group] of metadata.row_groups.entries()) {
    const groupStart = g * 14;
    for (const chunk of group.columns) {
      const name = chunk.meta_data!.path_in_schema[0];
      if (chunk.offset_index_offset === undefined || chunk.meta_data!.path_in_schema.length > 1) continue;
      const view = new DataView(file);
      const pages = readOffsetIndex({ view, offset: Number(chunk.offset_index_offset) }).page_locations;
      if (chunk.meta_data!.dictionary_page_offset === undefined) assert.deepEqual(pages.map((p) => Number(p.first_row_index)), [0, 7], name);
      if (chunk.column_index_offset === undefined) continue;
      const element = schema.find((e) => e.name === name)!;
      const index = readColumnIndex({ view, offset: Number(chunk.column_index_offset) }, element);
      pages.forEach((p, i) => {
        const end = i + 1 < pages.length ? Number(pages[i + 1].first_row_index) : Number(group.num_rows);
        const values = rows.slice(groupStart + Number(p.first_row_index), groupStart + end).map((r) => r[name]).filter((v) => v !== null && v !== undefined);
        if (index.null_pages[i] || typeof values[0] === 'object') return;
        const min = index.min_values[i] as never;
        const max = index.max_values[i] as never;
        for (const v of values) {
          const text = typeof v === 'string';
          assert.ok(text ? (v as string) >= (min as string) : (v as number) >= (min as number), `${name} page ${i}: ${String(v)} < min ${String(min)}`);
          assert.ok(text ? (v as string).slice(0, (max as string).length) <= (max as string) : (v as number) <= (max as number), `${name} page ${i}: ${String(v)} > max ${String(max)}`);
        }
        indexed++;
      });
    }
  }
  assert.ok(indexed > 30, `${indexed} pages checked`);
});

test('page indexes serialized as each group is placed (SerializedPageIndexes): the same file as ParquetWriter.finish()', async () => {
  const tasks = [shards.slice(0, 2), shards.slice(2, 4), shards.slice(4)].map((list) => ({ shards: list, rows: list.reduce((a, sh) => a + sh.files.reduce((b, f) => b + f.rows, 0), 0), scorers: [], statsScores: [] }));
  const files: Uint8Array[] = [];
  for (const serialized of [false, true]) {
    const writer = new ByteWriter();
    const pq = parquetWriter(writer, runSchemas().manifest, 'manifest');
    const indexes = new SerializedPageIndexes();
    for (const task of tasks) {
      placeRowGroup(pq, await mergeManifestGroup(task, (name) => store.get(name), (f) => store.get(f.name)));
      if (serialized) indexes.take(pq);
    }
    if (serialized) await indexes.finish(pq);
    else await pq.finish();
    files.push(writer.getBytes());
  }
  assert.ok(Buffer.from(files[1]).equals(Buffer.from(files[0])));
  const metadata = parquetMetadata(files[0].buffer.slice(files[0].byteOffset, files[0].byteOffset + files[0].byteLength) as ArrayBuffer);
  assert.ok(metadata.row_groups[0].columns.filter((c) => c.column_index_offset !== undefined).length > 20, 'the groups have page indexes');
});

test('finalize writes the same manifest and stats.json on 1 and 2 threads, and for markers without parts (a run committed before them)', async () => {
  await finalizeRun(run, { preview: false, threads: 1 });
  const one = { manifest: readFileSync(join(run, 'manifest.parquet')), stats: readFileSync(join(run, 'stats.json')) };
  await finalizeRun(run, { preview: false, threads: 2 });
  assert.ok(readFileSync(join(run, 'manifest.parquet')).equals(one.manifest));
  assert.ok(readFileSync(join(run, 'stats.json')).equals(one.stats));
  const markers = shards.map((s) => readFileSync(join(run, shardMarkerKey(s.shard))));
  try {
    for (const s of shards) {
      const { manifest_part: _, ...old } = parseMarker(readFileSync(join(run, shardMarkerKey(s.shard))), 'marker');
      writeFileSync(join(run, shardMarkerKey(s.shard)), markerJson(old));
    }
    await finalizeRun(run, { preview: false, threads: 2 });
    assert.ok(readFileSync(join(run, 'manifest.parquet')).equals(one.manifest));
    assert.ok(readFileSync(join(run, 'stats.json')).equals(one.stats));
  } finally {
    shards.forEach((s, i) => writeFileSync(join(run, shardMarkerKey(s.shard)), markers[i]));
  }
  const stats = JSON.parse(one.stats.toString());
  assert.equal(stats.candidates, 30);
  assert.equal(stats.accepted + stats.rejected, 30);
  assert.ok(stats.rejected > 0 && stats.accepted > 0);
});

test('finalize refuses a run whose manifest part was damaged or removed, naming it; nothing is written', async () => {
  const part = shards[1].part!.name;
  const good = readFileSync(join(run, part));
  const before = readFileSync(join(run, 'manifest.parquet'));
  try {
    for (const [what, damage] of [['truncated', () => writeFileSync(join(run, part), good.subarray(0, good.length - 10))], ['removed', () => rmSync(join(run, part))]] as const) {
      damage();
      for (const trustSizes of [false, true]) {
        await assert.rejects(finalizeRun(run, { preview: false, trustSizes }), (e: Error) => {
          assert.ok(isUserError(e), `${what}: ${e.message}`);
          assert.match(e.message, new RegExp(`shard-00001: ${part.replace(/[.]/g, '\\.')}: (size|missing)`));
          return true;
        });
      }
      assert.ok(readFileSync(join(run, 'manifest.parquet')).equals(before), `${what}: the manifest was rewritten`);
    }
  } finally {
    writeFileSync(join(run, part), good);
  }
});

test('a file or part with another row count than its marker says: a UserError naming it, with 1 and 2 threads; the sink is not ended', async () => {
  const target = shards.findIndex((s) => s.files.length > 1);
  const file = shards[target].files[0];
  const lie = (list: ManifestShard[]) => list.map((s, i) => (i === target ? { ...s, files: s.files.map((f) => (f === file ? { ...f, rows: f.rows + 1 } : f)) } : s));
  const rows = shards[target].part!.rows;
  const cases: [ManifestShard[], string, RegExp][] = [
    [lie(shards), shards[target].part!.name, new RegExp(`holds ${rows} rows, its shard's marker says ${rows + 1}`)],
    [lie(withoutParts()), file.name, new RegExp(`holds ${file.rows} rows, its shard's marker says ${file.rows + 1}`)],
  ];
  for (const [lying, name, message] of cases) {
    for (const threads of [1, 2]) {
      const c = collector();
      await assert.rejects(writeManifestFromShards(c.sink, { shards: lying, store, storeUri: run, threads, rowGroupRows: 4 }), (e: Error) => {
        assert.ok(isUserError(e), `${threads} thread(s): ${e.message}`);
        assert.ok(e.message.includes(name), e.message);
        assert.match(e.message, message);
        return true;
      });
      assert.ok(!c.finished(), 'a failed manifest must not be ended (an atomic upload would publish it)');
      assert.ok(c.sink.destroyed);
    }
  }
});

test('a part or a rejects file replaced by a manifest, or by a file that is not Parquet: a UserError naming it (from a worker thread too)', async () => {
  const copy = join(dir, 'copy');
  const bad = openStore(copy);
  for (const sh of shards) for (const f of [...sh.files, sh.part!]) await bad.put(f.name, await store.get(f.name));
  const victims: [string, ManifestShard[]][] = [[shards.at(-1)!.part!.name, shards], [shards.at(-1)!.files.at(-1)!.name, withoutParts()]];
  const cases: [string, Uint8Array, RegExp, RegExp][] = [
    ['manifest', readFileSync(join(run, 'manifest.parquet')), /not a pairgen manifest part/, /is a manifest, expected a shard or rejects file/],
    ['not parquet', new TextEncoder().encode('not a parquet file at all'), /not a readable Parquet file/, /not a readable Parquet file/],
  ];
  for (const [v, [victim, list]] of victims.entries()) {
    for (const [what, bytes, partMessage, fileMessage] of cases) {
      await bad.put(victim, bytes);
      for (const threads of [1, 2]) {
        const c = collector();
        await assert.rejects(writeManifestFromShards(c.sink, { shards: list, store: bad, storeUri: copy, threads, rowGroupRows: 4 }), (e: Error) => {
          assert.ok(isUserError(e), `${what}, ${threads} thread(s): ${e.message}`);
          assert.ok(e.message.includes(victim), e.message);
          assert.match(e.message, v === 0 ? partMessage : fileMessage);
          return true;
        });
        assert.ok(!c.finished());
      }
    }
    copyFileSync(join(run, victim), join(copy, victim));
  }
});

test('a worker thread that runs out of its heap cap hands its groups back to this thread: the same bytes', async () => {
  const reference = await rowPathManifest(7);
  const c = collector();
  assert.equal(await writeManifestFromShards(c.sink, { shards, store, storeUri: run, threads: 2, rowGroupRows: 7, workerHeapMib: 1 }), 30);
  assertSameFile(c.bytes(), reference.bytes, 'heap cap');
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
