/**
 * The shard row reader (src/dataset/rows.ts) on real shard and rejects files written by src/shards,
 * with real JPEG/PNG images: chosen rows' columns and images by position, checked against pair_id.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { ShardFile } from '../../src/dataset/rows.ts';
import { shardDataKey, shardRejectsKey } from '../../src/dataset/layout.ts';

const DATA = shardDataKey(0, 'train', 2);
import { isUserError } from '../../src/errors.ts';
import { encodeImage } from '../../src/image/encode.ts';
import { encodeRejects, encodeShard, type PairRecord } from '../../src/shards/index.ts';
import { openStore } from '../../src/store/index.ts';
import { tempDir } from '../helpers/run-fixture.ts';

async function image(shade: number, format: 'jpeg' | 'png'): Promise<Uint8Array> {
  const data = new Uint8Array(16 * 16 * 3);
  for (let i = 0; i < data.length; i++) data[i] = (shade * 37 + i) % 256;
  return encodeImage({ width: 16, height: 16, data }, { format, quality: 90 });
}

async function record(index: number, accepted: boolean): Promise<PairRecord> {
  const pair_id = `pair-${index}`;
  return {
    pair_id, run_id: 'run', shard: 0, index, prompt_id: `p${index}`, sample_index: 0, category: index % 2 ? 'style' : 'age', split: 'train',
    source_prompt: 'a face', instruction: 'make it older', target_prompt: 'an older face', attributes: { edit: `e${index}` },
    seed: 2 ** 52 + index, teacher: 'test', teacher_digest: '', sampler: { steps: 2 }, identity_model: 'test', identity_digest: '',
    identity_settings: {}, code_version: 'test', width: 16, height: 16, image_format: 'png',
    source_image: accepted ? { bytes: await image(index, 'png'), path: `${pair_id}_source.png` } : null,
    edited_image: accepted ? { bytes: await image(index + 100, 'png'), path: `${pair_id}_edited.png` } : null,
    identity_similarity: accepted ? 0.9 : 0.1, identity_threshold: 0.5, source_faces: 1, edited_faces: 1,
    source_face_box: null, source_face_score: null, source_face_keypoints: null, edited_face_box: null, edited_face_score: null, edited_face_keypoints: null,
    accepted, reject_reason: accepted ? null : 'identity_below_threshold', extra: {}, parent_pair_id: null, changes: {},
  };
}

const dir = tempDir('pairgen-rows-');
const store = openStore(dir);
after(() => rmSync(dir, { recursive: true, force: true }));
const kept = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => record(i, true)));
const dropped = await Promise.all([6, 7].map((i) => record(i, false)));
await store.put(DATA, encodeShard(kept, { rowGroupRows: 2 }));
await store.put(shardRejectsKey(0), encodeRejects(dropped));

test('chosen rows: their images and columns, by pair_id, with the types of the record schema', async () => {
  const file = await ShardFile.fetch(store, DATA);
  assert.equal(file.hasImages, true);
  const chosen = [kept[4], kept[1]].map((r, k) => ({ pair_id: r.pair_id, file_row: [4, 1][k] }));
  const images = await file.images(chosen);
  assert.deepEqual([...images!.keys()], ['pair-4', 'pair-1']);
  for (const r of [kept[4], kept[1]]) {
    const got = images!.get(r.pair_id)!;
    assert.ok(Buffer.from(got.source_image.bytes).equals(Buffer.from(r.source_image!.bytes)));
    assert.ok(Buffer.from(got.edited_image.bytes).equals(Buffer.from(r.edited_image!.bytes)));
    assert.equal(got.source_image.path, r.source_image!.path);
  }
  const rows = await file.read([{ pair_id: 'pair-3', file_row: 3 }], ['pair_id', 'seed', 'index', 'attributes', 'sampler', 'identity_similarity']);
  assert.deepEqual(rows.get('pair-3'), { pair_id: 'pair-3', seed: 2 ** 52 + 3, index: 3, attributes: { edit: 'e3' }, sampler: { steps: 2 }, identity_similarity: 0.9 });
  assert.equal((await file.read([], ['pair_id'])).size, 0);
});

test('bytes in hand read the same as a fetched file', async () => {
  const file = await ShardFile.open(await store.get(DATA), DATA);
  const all = kept.map((r, i) => ({ pair_id: r.pair_id, file_row: i }));
  const images = await file.images(all);
  assert.equal(images!.size, kept.length);
  assert.ok(Buffer.from(images!.get('pair-5')!.edited_image.bytes).equals(Buffer.from(kept[5].edited_image!.bytes)));
});

test('a rejects file holds no images; its other columns read as usual', async () => {
  const file = await ShardFile.fetch(store, shardRejectsKey(0));
  assert.equal(file.hasImages, false);
  assert.equal(await file.images([{ pair_id: 'pair-6', file_row: 0 }]), null);
  const rows = await file.read([{ pair_id: 'pair-7', file_row: 1 }], ['accepted', 'reject_reason']);
  assert.deepEqual(rows.get('pair-7'), { accepted: false, reject_reason: 'identity_below_threshold' });
});

test('a row that is not the pair the caller names, a missing file, a file that is not Parquet: user errors naming the file', async () => {
  const file = await ShardFile.fetch(store, DATA);
  await assert.rejects(file.images([{ pair_id: 'pair-2', file_row: 3 }]), (e) => isUserError(e) && /train-00000-of-00002\.parquet: row 3 is not pair pair-2 as the manifest says; the manifest is stale/.test((e as Error).message));
  await assert.rejects(file.images([{ pair_id: 'pair-9', file_row: 9 }]), (e) => isUserError(e) && /row 9 is not pair pair-9/.test((e as Error).message));
  await assert.rejects(ShardFile.fetch(store, shardDataKey(1, 'train', 2)), (e) => isUserError(e) && (e as Error).message === `${dir}/data/train-00001-of-00002.parquet: listed in the manifest but missing from the run`);
  await store.put('data/broken.parquet', 'not parquet at all');
  await assert.rejects(ShardFile.fetch(store, 'data/broken.parquet'), (e) => isUserError(e) && /broken\.parquet: not a readable Parquet file/.test((e as Error).message));
});
