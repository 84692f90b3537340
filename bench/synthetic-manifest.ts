/**
 * A deterministic synthetic manifest for the benchmarks that need a big run without generating one
 * (bench/query.ts, bench/serve.ts): realistic columns and value spreads, no images, 1000 rows a shard.
 */
import { shardDataKey, shardRejectsKey } from '../src/dataset/layout.ts';
import type { ManifestRow } from '../src/shards/index.ts';

export function syntheticId(i: number): string {
  return ((BigInt(i) * 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn).toString(16).padStart(16, '0');
}

export interface SyntheticOptions {
  /** The generator's seed (a 32-bit integer). */
  seed: number;
  /** Row i's split is splits[i mod length] (default: all train). */
  splits?: readonly string[];
  /** Score columns (e.g. edit_magnitude) filled with uniform numbers in [0, 1). */
  scoreColumns?: readonly string[];
}

export function* syntheticRows(n: number, o: SyntheticOptions): Generator<ManifestRow> {
  const categories = ['color_grade', 'style', 'lighting', 'hair', 'expression', 'age', 'makeup', 'accessories'];
  let x = o.seed;
  const rand = () => ((x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32);
  const splits = o.splits ?? ['train'];
  const shards = Math.ceil(n / 1000);
  for (let i = 0; i < n; i++) {
    const shard = Math.floor(i / 1000);
    const category = categories[i % categories.length];
    const noFace = rand() < 0.03;
    const similarity = noFace ? null : Math.min(1, Math.max(-1, 0.78 + 0.15 * (rand() + rand() + rand() - 1.5)));
    const threshold = category === 'style' ? 0.45 : 0.65;
    const accepted = similarity !== null && similarity >= threshold;
    const split = splits[i % splits.length];
    yield {
      pair_id: syntheticId(i), run_id: 'bench', shard, index: i, prompt_id: `p${(i % 50000).toString(16)}`, sample_index: Math.floor(i / 50000),
      category, split, source_prompt: 'a close-up portrait photo of a young woman with curly red hair, in a park',
      instruction: 'make the photo black and white', target_prompt: 'a black and white portrait photo of a young woman with curly red hair, in a park',
      attributes: { edit: 'grayscale' }, seed: Math.floor(rand() * 2 ** 53), teacher: 'diffusers:sd15', teacher_digest: 'ab'.repeat(32),
      sampler: { scheduler: 'EulerDiscreteScheduler', steps: 25, guidance_scale: 7.5 }, identity_model: 'identity:scrfd+arcface', identity_digest: 'cd'.repeat(32),
      identity_settings: { threshold: 0.65 }, code_version: '0.1.0', width: 512, height: 512, image_format: 'jpeg',
      identity_similarity: similarity, identity_threshold: threshold, source_faces: noFace ? 0 : 1, edited_faces: noFace ? 0 : 1,
      source_face_box: noFace ? null : [120, 100, 380, 400], source_face_score: noFace ? null : 0.98, source_face_keypoints: noFace ? null : [180, 220, 320, 220, 250, 290, 200, 340, 300, 340],
      edited_face_box: noFace ? null : [122, 101, 381, 402], edited_face_score: noFace ? null : 0.97, edited_face_keypoints: noFace ? null : [181, 221, 321, 221, 251, 291, 201, 341, 301, 341],
      accepted, reject_reason: accepted ? null : noFace ? 'no_face_edited' : 'identity_below_threshold', extra: {},
      parent_pair_id: null, changes: {}, file: accepted ? shardDataKey(shard, split as 'train', shards) : shardRejectsKey(shard), file_row: i % 1000,
      ...Object.fromEntries((o.scoreColumns ?? []).map((c) => [c, rand()])),
    } as ManifestRow;
  }
}
