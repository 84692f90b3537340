import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, matchesGlob } from 'node:path';
import { PassThrough } from 'node:stream';
import sharp from 'sharp';
import YAML from 'yaml';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { UserError } from '../../src/errors.ts';
import {
  buildMarker, columnDescriptions, computeStats, encodeImage, encodeRejects, encodeShard, manifestSchema, pairSchema,
  markerJson, parseMarker, readShardMetadataRows, renderDatasetCard, StatsAccumulator, toPairRecord,
  verifyMarker, verifyMarkerSizes, writeManifest, type ImageFormat, type ManifestRow, type PairRecord,
} from '../../src/shards/index.ts';
import type { CandidateSpec, IdentityVerdict, StageInfo } from '../../src/types.ts';
import { shardKeys, splitGlob } from '../../src/dataset/layout.ts';
import { SPLIT_NAMES } from '../../src/dataset/splits.ts';

const W = 64;
const H = 48;

/** A deterministic gradient-plus-noise RGB image (xorshift PRNG), different for each seed. */
function pixels(seed: number, w = W, h = H): Uint8Array {
  const data = new Uint8Array(w * h * 3);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
      const i = (y * w + x) * 3;
      data[i] = (x * 4 + seed * 7) & 255;
      data[i + 1] = (y * 5 + (s & 31)) & 255;
      data[i + 2] = ((x + y) * 2 + seed) & 255;
    }
  }
  return data;
}

const teacher: StageInfo = { name: 'diffusers:tiny-sd', modelDigest: 'a'.repeat(64), settings: { steps: 4, scheduler: 'euler', guidance: 7.5 } };
const identity: StageInfo = { name: 'faceres', modelDigest: 'b'.repeat(64), settings: { detector: 'blazeface', min_score: 0.5 } };

async function makeRecord(i: number, accepted: boolean, format: ImageFormat, withImages = true): Promise<PairRecord> {
  const spec: CandidateSpec = {
    pairId: `p${String(i).padStart(4, '0')}`, index: i, seed: 2 ** 52 + i * 1001, promptId: `prompt-${i % 3}`, sampleIndex: i % 2,
    category: ['hair', 'expression', 'style'][i % 3], sourcePrompt: `a portrait of person ${i}`, instruction: 'make the hair red | now',
    targetPrompt: `a portrait of person ${i} with red hair`, identityThreshold: 0.5, attributes: { edit: `e${i}`, strength: 'high' },
  };
  const verdict: IdentityVerdict = {
    // Values exact in float32, so reading them back compares equal.
    similarity: i % 5 === 4 ? null : accepted ? 0.75 + (i % 4) / 16 : 0.25,
    sourceFaces: 1, editedFaces: i % 5 === 4 ? 0 : 1,
    sourceFace: { box: [4, 4.5, 40, 44], score: 0.875, keypoints: [[10, 12], [30, 12.25], [20, 20], [12, 30], [28, 30]] },
    editedFace: i % 5 === 4 ? null : { box: [5, 5, 41, 43], score: 0.5, keypoints: [[11, 12], [31, 12]] },
    threshold: 0.5, accepted, rejectReason: accepted ? null : i % 5 === 4 ? 'no_face_edited' : 'identity_below_threshold',
  };
  const images = withImages
    ? { source: await encodeImage({ width: W, height: H, data: pixels(i) }, { format }), edited: await encodeImage({ width: W, height: H, data: pixels(i + 1000) }, { format, quality: 80 }) }
    : null;
  return toPairRecord({ spec, runId: 'run-1', shard: 0, split: ['train', 'validation', 'test'][i % 3], teacher, identity, codeVersion: '0.1.0+test', verdict, width: W, height: H, imageFormat: format, images, extra: { bank_item: i, note: null } });
}

const formats: ImageFormat[] = ['jpeg', 'png', 'webp'];
async function acceptedRecords(n: number): Promise<PairRecord[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => makeRecord(i * 5, true, formats[i % 3])));
}
async function rejectedRecords(n: number, withImages = false): Promise<PairRecord[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => makeRecord(i * 5 + 4 - (i % 2) * 2, false, 'jpeg', withImages)));
}

async function withDuck<T>(fn: (con: DuckDBConnection) => Promise<T>): Promise<T> {
  const inst = await DuckDBInstance.create(':memory:');
  const con = await inst.connect();
  try {
    return await fn(con);
  } finally {
    con.closeSync();
    inst.closeSync();
  }
}

async function query(con: DuckDBConnection, sql: string): Promise<Record<string, unknown>[]> {
  return (await con.runAndReadAll(sql)).getRowObjectsJson() as Record<string, unknown>[];
}

const dir = await mkdtemp(join(tmpdir(), 'pairgen-shards-'));
test.after(() => rm(dir, { recursive: true, force: true }));

function stripImages(r: PairRecord): Omit<PairRecord, 'source_image' | 'edited_image'> {
  const { source_image: _s, edited_image: _e, ...rest } = r;
  return rest;
}

test('every column is documented and manifests/schema.md lists it', async () => {
  const doc = await readFile(new URL('../../manifests/schema.md', import.meta.url), 'utf8');
  for (const f of manifestSchema.fields.concat(pairSchema.fields)) {
    assert.ok(columnDescriptions[f.name], `no description for ${f.name}`);
    assert.match(doc, new RegExp('`' + f.name + '`'), `manifests/schema.md does not list ${f.name}`);
  }
  const example = JSON.parse(await readFile(new URL('../../manifests/example-row.json', import.meta.url), 'utf8'));
  assert.deepEqual(Object.keys(example), pairSchema.fields.map((f) => f.name));
});

test('a shard of JPEG/PNG/WebP pairs reads back in DuckDB and hyparquet with the declared types', async () => {
  const records = await acceptedRecords(9);
  const bytes = encodeShard(records, { rowGroupRows: 4 });
  const file = join(dir, 'shard-00000.parquet');
  await writeFile(file, bytes);

  await withDuck(async (con) => {
    const types = Object.fromEntries((await query(con, `DESCRIBE SELECT * FROM read_parquet('${file}')`)).map((r) => [r.column_name, r.column_type]));
    assert.deepEqual(Object.keys(types), pairSchema.fields.map((f) => f.name));
    assert.equal(types.source_image, 'STRUCT(bytes BLOB, path VARCHAR)');
    assert.equal(types.edited_image, 'STRUCT(bytes BLOB, path VARCHAR)');
    assert.equal(types.index, 'BIGINT');
    assert.equal(types.seed, 'BIGINT');
    assert.equal(types.shard, 'INTEGER');
    assert.equal(types.identity_similarity, 'DOUBLE');
    assert.equal(types.source_face_score, 'FLOAT');
    assert.equal(types.source_face_box, 'FLOAT[]');
    assert.equal(types.accepted, 'BOOLEAN');
    assert.equal(types.pair_id, 'VARCHAR');

    const [{ n }] = await query(con, `SELECT count(*)::INT AS n FROM read_parquet('${file}')`);
    assert.equal(n, 9);
    const groups = await query(con, `SELECT DISTINCT row_group_id FROM parquet_metadata('${file}')`);
    assert.equal(groups.length, 3, '9 rows at 4 rows per group');

    const kv = await query(con, `SELECT decode(key) AS key, decode(value) AS value FROM parquet_kv_metadata('${file}')`);
    const hf = kv.find((r) => r.key === 'huggingface');
    assert.ok(hf, 'huggingface key present');
    const features = JSON.parse(String(hf.value)).info.features;
    assert.deepEqual(Object.keys(features), pairSchema.fields.map((f) => f.name));
    assert.deepEqual(features.source_image, { _type: 'Image' });
    assert.deepEqual(features.edited_image, { _type: 'Image' });
    assert.deepEqual(features.seed, { dtype: 'int64', _type: 'Value' });
    assert.deepEqual(features.source_face_box, { feature: { dtype: 'float32', _type: 'Value' }, length: -1, _type: 'Sequence' });

    const rows = (await con.runAndReadAll(`SELECT pair_id, image_format, width, height, source_image.bytes AS s, edited_image.bytes AS e, source_image.path AS sp, seed FROM read_parquet('${file}') ORDER BY index`)).getRowObjects();
    for (const [i, r] of rows.entries()) {
      assert.equal(r.pair_id, records[i].pair_id);
      assert.equal(BigInt(r.seed as bigint), BigInt(records[i].seed));
      assert.equal(r.sp, `${records[i].pair_id}_source.${records[i].image_format === 'jpeg' ? 'jpg' : records[i].image_format}`);
      for (const col of ['s', 'e']) {
        const blob = (r[col] as { bytes: Uint8Array }).bytes;
        const meta = await sharp(blob).metadata();
        assert.equal(meta.format, records[i].image_format);
        assert.equal(meta.width, r.width);
        assert.equal(meta.height, r.height);
      }
    }
  });

  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const meta = parquetMetadata(buf);
  // datasets only recognises an Image column when every level of the struct is nullable.
  for (const name of ['source_image', 'bytes', 'path']) {
    assert.ok(meta.schema.filter((s) => s.name === name).every((s) => s.repetition_type === 'OPTIONAL'), `${name} is OPTIONAL`);
  }
  // utf8: false keeps BYTE_ARRAY columns without the UTF8 annotation (the image bytes) as bytes.
  const back = await parquetReadObjects({ file: buf, utf8: false });
  assert.equal(back.length, 9);
  for (const [i, r] of back.entries()) {
    assert.deepEqual(new Uint8Array(r.source_image.bytes), records[i].source_image!.bytes);
    assert.deepEqual(new Uint8Array(r.edited_image.bytes), records[i].edited_image!.bytes);
    assert.equal(r.edited_image.path, records[i].edited_image!.path);
    assert.equal(JSON.parse(r.sampler).scheduler, 'euler');
    assert.deepEqual(r.source_face_keypoints, records[i].source_face_keypoints);
  }
});

test('same records give the same bytes; row groups follow the byte target', async () => {
  const a = encodeShard(await acceptedRecords(6));
  const b = encodeShard(await acceptedRecords(6));
  assert.deepEqual(a, b);
  const records = await acceptedRecords(6);
  const perRow = records[0].source_image!.bytes.length + records[0].edited_image!.bytes.length;
  const small = encodeShard(records, { rowGroupBytes: perRow * 2 });
  const groups = parquetMetadata(small.buffer.slice(small.byteOffset, small.byteOffset + small.byteLength) as ArrayBuffer).row_groups.length;
  assert.ok(groups >= 3 && groups <= 6, `expected 3..6 row groups, got ${groups}`);
  assert.equal(parquetMetadata(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength) as ArrayBuffer).row_groups.length, 1);
});

test('rejects files drop the image columns; metadata rows read back without image bytes', async () => {
  const accepted = await acceptedRecords(3);
  const rejected = await rejectedRecords(4);
  const rejBytes = encodeRejects(rejected);
  const file = join(dir, 'shard-00000.rejects.parquet');
  await writeFile(file, rejBytes);
  await withDuck(async (con) => {
    const cols = (await query(con, `DESCRIBE SELECT * FROM read_parquet('${file}')`)).map((r) => r.column_name);
    assert.ok(!cols.includes('source_image') && !cols.includes('edited_image'));
    assert.equal(cols.length, pairSchema.fields.length - 2);
    const reasons = await query(con, `SELECT reject_reason, count(*)::INT AS n FROM read_parquet('${file}') GROUP BY 1 ORDER BY 1`);
    assert.deepEqual(reasons, [{ reject_reason: 'identity_below_threshold', n: 2 }, { reject_reason: 'no_face_edited', n: 2 }]);
  });
  const rows = await readShardMetadataRows(rejBytes, 'rejects/shard-00000.parquet');
  assert.deepEqual(rows, rejected.map((r, i) => ({ ...stripImages(r), file: 'rejects/shard-00000.parquet', file_row: i })));
  const shardRows = await readShardMetadataRows(encodeShard(accepted), 'data/train-00000-of-00001.parquet');
  assert.deepEqual(shardRows, accepted.map((r, i) => ({ ...stripImages(r), file: 'data/train-00000-of-00001.parquet', file_row: i })));
  assert.equal(shardRows[0].seed, accepted[0].seed, 'int64 back as number');
});

test('metadata rows over a range reader fetch the footer and metadata columns, not the images', async () => {
  const records = await acceptedRecords(12);
  const big = await Promise.all(records.map(async (r, i) => {
    // 256x256 noise PNGs: ~190 KB each, incompressible (a multiplicative hash per byte, no pattern a PNG filter predicts).
    const noise = new Uint8Array(256 * 256 * 3);
    for (let k = 0; k < noise.length; k += 32) noise.set(createHash('sha256').update(`${i}:${k}`).digest().subarray(0, Math.min(32, noise.length - k)), k);
    const png = await encodeImage({ width: 256, height: 256, data: noise }, { format: 'png' });
    return { ...r, width: 256, height: 256, image_format: 'png' as const, source_image: { bytes: png, path: 'a.png' }, edited_image: { bytes: png, path: 'b.png' } };
  }));
  const bytes = encodeShard(big);
  const imageBytes = big.reduce((n, r) => n + 2 * r.source_image.bytes.length, 0);
  assert.ok(imageBytes > 4e6, `images are ${imageBytes} bytes`);
  let fetched = 0;
  const reader = {
    byteLength: bytes.length,
    slice(start: number, end = bytes.length) {
      fetched += end - start;
      return bytes.slice(start, end).buffer;
    },
  };
  const rows = await readShardMetadataRows(reader, 'data/train-00001-of-00002.parquet');
  assert.equal(rows.length, 12);
  assert.equal(rows[11].pair_id, big[11].pair_id);
  assert.ok(fetched < bytes.length - imageBytes + 600_000, `fetched ${fetched} of ${bytes.length} bytes`);
});

test('empty shards and rejects are valid Parquet files', async () => {
  const file = join(dir, 'empty.parquet');
  await writeFile(file, encodeShard([]));
  await withDuck(async (con) => assert.deepEqual(await query(con, `SELECT count(*)::INT AS n FROM read_parquet('${file}')`), [{ n: 0 }]));
  assert.deepEqual(await readShardMetadataRows(encodeRejects([]), 'x.rejects.parquet'), []);
});

test('bad inputs: wrong records, bad options, foreign files', async () => {
  const [acc] = await acceptedRecords(1);
  const [rej] = await rejectedRecords(1);
  assert.throws(() => encodeShard([rej]), /encodeShard: pair p0004 is rejected/);
  assert.throws(() => encodeRejects([acc]), /encodeRejects: pair p0000 is accepted/);
  assert.throws(() => encodeShard([{ ...acc, source_image: null }]), /no encoded images/);
  assert.throws(() => encodeShard([{ ...acc, category: null as unknown as string }]), /pair record p0000: column category is null/);
  assert.throws(() => encodeShard([{ ...acc, width: 1.5 }]), /column width needs an integer/);
  assert.throws(() => encodeShard([acc], { rowGroupRows: 0 }), (e) => e instanceof UserError && /rowGroupRows/.test(e.message));

  await assert.rejects(readShardMetadataRows(new TextEncoder().encode('not parquet at all'), 'shards/bad.parquet'),
    (e) => e instanceof UserError && /^shards\/bad\.parquet: not a readable Parquet file/.test(e.message));
  const foreign = new Uint8Array(parquetWriteBuffer({ columnData: [{ name: 'a', data: [1, 2], type: 'INT32' }] }));
  await assert.rejects(readShardMetadataRows(foreign, 'shards/other.parquet'),
    (e) => e instanceof UserError && /shards\/other\.parquet: not a pairgen v1 data file .*"pairgen" is missing/.test(e.message));
});

test('commit marker: verify catches a flipped byte, a size change and a missing file', async () => {
  const records = await acceptedRecords(2);
  const data = encodeShard(records);
  const rejects = encodeRejects(await rejectedRecords(1));
  const keys = shardKeys(7, 12);
  assert.deepEqual(keys, {
    data: { train: 'data/train-00007-of-00012.parquet', validation: 'data/validation-00007-of-00012.parquet', test: 'data/test-00007-of-00012.parquet' },
    rejects: 'rejects/shard-00007.parquet',
    marker: 'markers/shard-00007.json',
  });
  const names = { data: keys.data.train, rejects: keys.rejects, marker: keys.marker };
  const marker = buildMarker({
    shard: 7, runId: 'run-1', codeVersion: '0.1.0',
    files: [{ name: names.data, bytes: data, rows: 2 }, { name: names.rejects, bytes: rejects, rows: 1 }],
    counts: { candidates: 3, accepted: 2, rejected: 1 },
  });
  const files = new Map([[names.data, data], [names.rejects, rejects]]);
  assert.deepEqual(verifyMarker(marker, files), { ok: true, problems: [] });
  assert.equal(markerJson(marker), markerJson(buildMarker({ shard: 7, runId: 'run-1', codeVersion: '0.1.0', files: [{ name: names.data, bytes: data, rows: 2 }, { name: names.rejects, bytes: rejects, rows: 1 }], counts: { candidates: 3, accepted: 2, rejected: 1 } })), 'two attempts at one shard write the same marker bytes');
  assert.ok(!('timings' in marker));

  const flipped = data.slice();
  flipped[100] ^= 1;
  const c1 = verifyMarker(marker, new Map([...files, [names.data, flipped]]));
  assert.deepEqual(c1, { ok: false, problems: [`${names.data}: sha256 differs from the marker`] });
  const c2 = verifyMarker(marker, new Map([...files, [names.rejects, rejects.subarray(1)]]));
  assert.deepEqual(c2.problems, [`${names.rejects}: size ${rejects.length - 1}, marker says ${rejects.length}`]);
  assert.deepEqual(verifyMarker(marker, new Map([[names.data, data]])).problems, [`${names.rejects}: missing`]);
  assert.equal(verifyMarkerSizes(marker, new Map([[names.data, data.length], [names.rejects, rejects.length]])).ok, true);
  assert.equal(verifyMarkerSizes(marker, new Map([[names.data, data.length + 1], [names.rejects, rejects.length]])).ok, false);

  assert.deepEqual(parseMarker(JSON.stringify(marker), names.marker), marker);
  assert.throws(() => parseMarker('{"format": ', names.marker), (e) => e instanceof UserError && /^markers\/shard-00007\.json: not valid JSON/.test(e.message));
  const bad = { ...marker, files: [{ ...marker.files[0], sha256: 'xyz' }] };
  assert.throws(() => parseMarker(JSON.stringify(bad), names.marker), /markers\/shard-00007\.json: field "files\[0\]\.sha256" must be 64 hex digits/);
  assert.throws(() => buildMarker({ shard: 1, runId: 'r', codeVersion: 'v', files: [], counts: { candidates: 2, accepted: 1, rejected: 0 } }), /accepted 1 \+ rejected 0 != candidates 2/);
});

test('manifest streams rows one row group at a time and reads back in DuckDB', async () => {
  const base = stripImages(await makeRecord(1, true, 'jpeg', false));
  const total = 12_000;
  const groupRows = 5_000;
  let pulled = 0;
  let pulledAtFirstChunk = -1;
  async function* rows(): AsyncGenerator<ManifestRow> {
    for (let i = 0; i < total; i++) {
      pulled++;
      yield { ...base, pair_id: `m${i}`, index: i, accepted: i % 3 !== 0, reject_reason: i % 3 === 0 ? 'identity_below_threshold' : null, file: `data/train-${String(i % 4).padStart(5, '0')}-of-00004.parquet`, file_row: i >> 2 };
    }
  }
  const file = join(dir, 'manifest.parquet');
  const pass = new PassThrough();
  pass.once('data', () => (pulledAtFirstChunk = pulled));
  const out = createWriteStream(file);
  pass.pipe(out);
  const closed = new Promise<void>((r) => out.on('close', () => r()));
  await writeManifest(pass, rows(), { rowGroupRows: groupRows });
  await closed;
  assert.ok(pulledAtFirstChunk > 0 && pulledAtFirstChunk <= groupRows + 1, `first bytes left after ${pulledAtFirstChunk} rows were pulled`);
  await withDuck(async (con) => {
    assert.deepEqual(await query(con, `SELECT count(*)::INT AS n, count(DISTINCT file)::INT AS f, sum(CASE WHEN accepted THEN 1 ELSE 0 END)::INT AS a FROM read_parquet('${file}')`), [{ n: total, f: 4, a: 8000 }]);
    assert.equal((await query(con, `SELECT DISTINCT row_group_id FROM parquet_metadata('${file}')`)).length, 3);
    const cols = (await query(con, `DESCRIBE SELECT * FROM read_parquet('${file}')`)).map((r) => r.column_name);
    assert.deepEqual(cols, manifestSchema.fields.map((f) => f.name));
  });
});

test('manifest: a failing row source destroys the sink instead of ending it', async () => {
  async function* rows(): AsyncGenerator<ManifestRow> {
    throw new UserError('shards/shard-00003.json: not valid JSON');
  }
  const pass = new PassThrough();
  pass.on('error', () => {});
  await assert.rejects(writeManifest(pass, rows()), /shard-00003/);
  assert.equal(pass.destroyed, true);
  assert.equal(pass.writableFinished, false);
});

test('stats: totals, reasons, fixed histogram bins by category, timings', async () => {
  const rows = [
    { category: 'hair', accepted: true, reject_reason: null, identity_similarity: 0.9 },
    { category: 'hair', accepted: true, reject_reason: null, identity_similarity: 1 },
    { category: 'hair', accepted: false, reject_reason: 'identity_below_threshold', identity_similarity: 0.2 },
    { category: 'style', accepted: false, reject_reason: 'no_face_edited', identity_similarity: null },
    { category: 'style', accepted: false, reject_reason: 'identity_below_threshold', identity_similarity: -1 },
  ];
  const s = await computeStats(rows, [{ generate: 2, score: 0.5 }, { generate: 1 }]);
  assert.equal(s.candidates, 5);
  assert.equal(s.accepted, 2);
  assert.equal(s.acceptance_rate, 0.4);
  assert.equal(s.shards, 2);
  assert.deepEqual(s.reject_reasons, { identity_below_threshold: 2, no_face_edited: 1 });
  assert.deepEqual(s.timings_seconds, { generate: 3, score: 0.5 });
  assert.equal(s.histogram_bin_edges.length, 41);
  assert.equal(s.histogram_bin_edges[0], -1);
  assert.equal(s.histogram_bin_edges[40], 1);
  const hair = s.by_category.hair.identity_similarity;
  assert.equal(hair.counts[38], 1, '0.9 is in [0.9, 0.95)');
  assert.equal(hair.counts[39], 1, '1.0 is in the last bin');
  assert.equal(hair.counts[24], 1, '0.2 is in [0.2, 0.25)');
  assert.equal(hair.mean, (0.9 + 1 + 0.2) / 3);
  assert.equal(s.by_category.style.identity_similarity.no_score, 1);
  assert.equal(s.by_category.style.identity_similarity.counts[0], 1);
  assert.deepEqual(Object.keys(s.by_category), ['hair', 'style']);
  const acc = new StatsAccumulator();
  for (const r of rows.slice().reverse()) acc.add(r);
  assert.deepEqual(acc.result().by_category.style.reject_reasons, s.by_category.style.reject_reasons);
});

test('dataset card: configs name each split\'s data files only; dataset_info, license, language; body has counts and columns', async () => {
  const stats = await computeStats([
    { category: 'hair', accepted: true, reject_reason: null, identity_similarity: 0.9 },
    { category: 'style', accepted: false, reject_reason: 'identity_below_threshold', identity_similarity: 0.1 },
  ]);
  const splits = [
    { name: 'train', fraction: 0.9, candidates: 2, accepted: 1, glob: splitGlob('train'), files: 1, bytes: 1234 },
    { name: 'validation', fraction: 0.05, candidates: 0, accepted: 0, glob: splitGlob('validation'), files: 0, bytes: 0 },
    { name: 'test', fraction: 0.05, candidates: 0, accepted: 0, glob: splitGlob('test'), files: 0, bytes: 0 },
  ];
  const card = renderDatasetCard({
    name: 'Portrait edits | demo', runUri: 's3://bucket/runs/a', stats, configSummary: { teacher: 'diffusers:tiny-sd', steps: 4, threshold: 0.5 }, codeVersion: '0.1.0',
    license: 'apache-2.0', language: ['en', 'fr'], splits, acceptance: { identity: { threshold: 0.5 } }, checksumsFile: 'checksums.sha256',
  });
  const m = /^---\n([\s\S]*?)\n---\n/.exec(card);
  assert.ok(m, 'front matter present');
  const front = YAML.parse(m[1]);
  assert.equal(front.license, 'apache-2.0');
  assert.deepEqual(front.language, ['en', 'fr']);
  assert.deepEqual(front.configs, [{ config_name: 'default', data_files: [{ split: 'train', path: 'data/train-*' }] }], 'a split without pairs gets no entry');
  assert.deepEqual(front.dataset_info.splits, [{ name: 'train', num_bytes: 1234, num_examples: 1 }]);
  assert.deepEqual(front.dataset_info.features.map((f: { name: string }) => f.name), pairSchema.fields.map((f) => f.name));
  assert.deepEqual(front.dataset_info.features.find((f: { name: string }) => f.name === 'source_image'), { name: 'source_image', dtype: 'image' });
  assert.deepEqual(front.dataset_info.features.find((f: { name: string }) => f.name === 'source_face_box'), { name: 'source_face_box', sequence: 'float32' });
  assert.deepEqual(front.size_categories, ['n<1K']);
  for (const n of [0, 7, 123456]) {
    const keys = shardKeys(n, 200000);
    for (const split of SPLIT_NAMES) {
      assert.ok(matchesGlob(keys.data[split], splitGlob(split)), `${keys.data[split]} matches`);
      for (const other of SPLIT_NAMES.filter((x) => x !== split)) assert.ok(!matchesGlob(keys.data[split], splitGlob(other)));
      assert.ok(!matchesGlob(keys.rejects, splitGlob(split)) && !matchesGlob(keys.marker, splitGlob(split)) && !matchesGlob('manifest.parquet', splitGlob(split)));
    }
  }
  assert.match(card, /\| 2 \| 1 \| 1 \| 50\.0% \| 0 \|/);
  assert.match(card, /\| hair \| 1 \| 1 \| 100\.0% \| 0\.900 \| 0 \|/);
  assert.match(card, /\| `source_image` \| Image \|/);
  assert.match(card, /\| train \| 0\.9 \| 2 \| 1 \| 1 \| 1234 \|/);
  assert.match(card, /## What decided acceptance\n\n```yaml\nidentity:\n  threshold: 0\.5/);
  assert.match(card, /sha256sum -c checksums\.sha256/);
  assert.match(card, /steps: 4/);
  assert.match(card, /# Portrait edits \| demo/);
});
