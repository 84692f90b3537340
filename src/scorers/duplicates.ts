import type { RgbImage } from '../types.ts';
import { luma } from './pixels.ts';
import type { PairInput, Scorer, ScorerResult } from './scorer.ts';

/**
 * 64-bit difference hash (dHash) of an image, 16 hex digits: the luma averaged over a 9×8 grid of
 * equal cells (cell edges at floor(i·W/9), floor(j·H/8)), then bit 8·row + col (most significant
 * first) is 1 when cell (col, row) is brighter than cell (col + 1, row). Near-duplicates differ in few
 * bits: compare by Hamming distance (hammingDistance), e.g. ≤ 6 of 64 for a re-encoded or slightly
 * resized copy.
 */
export function dHash(img: RgbImage): string {
  const { width: W, height: H } = img;
  const y = luma(img.data, W * H);
  const cells = new Float64Array(72);
  for (let j = 0; j < 8; j++) {
    const r0 = Math.floor((j * H) / 8), r1 = Math.max(r0 + 1, Math.floor(((j + 1) * H) / 8));
    for (let i = 0; i < 9; i++) {
      const c0 = Math.floor((i * W) / 9), c1 = Math.max(c0 + 1, Math.floor(((i + 1) * W) / 9));
      let s = 0;
      for (let r = r0; r < Math.min(r1, H); r++) for (let c = c0; c < Math.min(c1, W); c++) s += y[r * W + c];
      cells[j * 9 + i] = s / ((r1 - r0) * (c1 - c0));
    }
  }
  let hex = '';
  for (let j = 0; j < 8; j++) {
    let byte = 0;
    for (let i = 0; i < 8; i++) byte = (byte << 1) | (cells[j * 9 + i] > cells[j * 9 + i + 1] ? 1 : 0);
    hex += byte.toString(16).padStart(2, '0');
  }
  return hex;
}

/** Number of differing bits between two hex hashes of the same length. */
export function hammingDistance(a: string, b: string): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) {
    let x = parseInt(a[i], 16) ^ parseInt(b[i], 16);
    for (; x; x &= x - 1) d++;
  }
  return d;
}

/** The source's dHash, carried as a text (`duplicates.source_dhash`): finalize compares it across pairs. */
class DuplicatesScorer implements Scorer {
  readonly name = 'duplicates';
  readonly models: string[] = [];

  async score(pair: PairInput): Promise<ScorerResult> {
    return { scores: {}, texts: { 'duplicates.source_dhash': dHash(pair.source) } };
  }

  async close(): Promise<void> {}
}

export function openDuplicatesScorer(): Scorer {
  return new DuplicatesScorer();
}
