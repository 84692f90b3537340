/**
 * A test-only teacher and identity scorer for the spine's own tests. They live in test/ so the CLI can
 * never reach them; the real teacher and scorer are tested in their own suites.
 * The teacher draws a deterministic picture from the pair seed; the "edit" blends in a second picture
 * whose weight depends on the category, so some edits keep "identity" and some lose it.
 */
import { createHash } from 'node:crypto';
import type { StageInfo, CandidateSpec, GeneratedPair, IdentityScore, IdentityScorer, RgbImage, Teacher } from '../../src/types.ts';

function bytesFrom(seed: string, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let filled = 0;
  for (let counter = 0; filled < n; counter++) {
    const block = createHash('sha256').update(`${seed}:${counter}`).digest();
    out.set(block.subarray(0, Math.min(block.length, n - filled)), filled);
    filled += block.length;
  }
  return out;
}

function picture(seed: string, size: number): RgbImage {
  const p = bytesFrom(seed, 12);
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const cx = x - (p[9] / 255) * size;
      const cy = y - (p[10] / 255) * size;
      const blob = Math.exp(-(cx * cx + cy * cy) / (2 * (size / 4) ** 2));
      for (let c = 0; c < 3; c++) {
        const v = (p[c] * x + p[c + 3] * y) / (2 * size) + p[c + 6] * blob;
        data[(y * size + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return { width: size, height: size, data };
}

export class TestTeacher implements Teacher {
  readonly info: StageInfo;
  generated = 0;
  constructor(private readonly size = 64) {
    this.info = { name: 'test-teacher', modelDigest: '', settings: { size } };
  }

  async generate(specs: CandidateSpec[]): Promise<GeneratedPair[]> {
    this.generated += specs.length;
    return specs.map((spec) => {
      const source = picture(`src:${spec.seed}`, this.size);
      const other = picture(`edit:${spec.seed}:${spec.instruction}`, this.size);
      const weight = (bytesFrom(`w:${spec.seed}`, 1)[0] / 255) * 0.9;
      const edited = new Uint8Array(source.data.length);
      for (let i = 0; i < edited.length; i++) edited[i] = Math.round((1 - weight) * source.data[i] + weight * other.data[i]);
      return { source, edited: { width: this.size, height: this.size, data: edited }, extra: { blend: Number(weight.toFixed(4)) } };
    });
  }
  async close(): Promise<void> {}
}

/** "Identity" = Pearson correlation of the two images' pixels; a stand-in for face embeddings. */
export class TestScorer implements IdentityScorer {
  readonly info = { name: 'test-scorer', modelDigest: '', settings: {} };

  async score(source: RgbImage, edited: RgbImage): Promise<IdentityScore> {
    const a = source.data;
    const b = edited.data;
    let ma = 0;
    let mb = 0;
    for (let i = 0; i < a.length; i++) {
      ma += a[i];
      mb += b[i];
    }
    ma /= a.length;
    mb /= b.length;
    let sab = 0;
    let saa = 0;
    let sbb = 0;
    for (let i = 0; i < a.length; i++) {
      sab += (a[i] - ma) * (b[i] - mb);
      saa += (a[i] - ma) ** 2;
      sbb += (b[i] - mb) ** 2;
    }
    const similarity = sab / Math.sqrt(saa * sbb || 1);
    const face = { box: [8, 8, 56, 56] as [number, number, number, number], score: 0.99, keypoints: [[20, 24], [44, 24], [32, 34], [24, 44], [40, 44]] as [number, number][] };
    return { similarity, sourceFaces: 1, editedFaces: 1, sourceFace: face, editedFace: face, faceProblem: null };
  }
  async close(): Promise<void> {}
}
