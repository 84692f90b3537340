import type { RgbImage } from '../types.ts';
import { luma } from './pixels.ts';
import type { PairInput, Scorer, ScorerResult } from './scorer.ts';

export interface ImageQuality {
  /** Variance of the 4-neighbour Laplacian of the luma (0..255) over interior pixels. */
  sharpness: number;
  /** Immerkær's noise standard deviation, luma levels. */
  noise: number;
  /** Share of pixels with luma ≤ 2 or ≥ 253 (crushed shadows or blown highlights). */
  clipped: number;
}

/**
 * No-reference quality of one image, closed form, on its Rec. 601 luma Y at full resolution:
 *   sharpness = Var(4·Y(x,y) − Y(x±1,y) − Y(x,y±1)), the variance of the Laplacian (Pech-Pacheco 2000);
 *   noise     = √(π/2) · Σ|Y ∗ N| / (6·(W−2)·(H−2)) with N = [1 −2 1; −2 4 −2; 1 −2 1] (Immerkær 1996),
 *               which cancels image structure up to second order and leaves the noise;
 *   clipped   = share of pixels with Y ≤ 2 or Y ≥ 253.
 * Both sharpness and noise depend on resolution: compare images of one size (a pair's two sides).
 */
export function imageQuality(img: RgbImage): ImageQuality {
  const { width: W, height: H } = img;
  const y = luma(img.data, W * H);
  let clipped = 0;
  for (const v of y) if (v <= 2 || v >= 253) clipped++;
  if (W < 3 || H < 3) return { sharpness: 0, noise: 0, clipped: clipped / (W * H) };
  let sum = 0, sum2 = 0, abs = 0;
  for (let r = 1; r < H - 1; r++) {
    for (let c = 1; c < W - 1; c++) {
      const i = r * W + c;
      const up = y[i - W], down = y[i + W], left = y[i - 1], right = y[i + 1];
      const lap = 4 * y[i] - up - down - left - right;
      sum += lap;
      sum2 += lap * lap;
      abs += Math.abs(4 * y[i] - 2 * (up + down + left + right) + y[i - W - 1] + y[i - W + 1] + y[i + W - 1] + y[i + W + 1]);
    }
  }
  const n = (W - 2) * (H - 2);
  return { sharpness: sum2 / n - (sum / n) ** 2, noise: (Math.sqrt(Math.PI / 2) * abs) / (6 * n), clipped: clipped / (W * H) };
}

class QualityScorer implements Scorer {
  readonly name = 'quality';
  readonly models: string[] = [];

  async score(pair: PairInput): Promise<ScorerResult> {
    const s = imageQuality(pair.source), e = imageQuality(pair.edited);
    const scores: Record<string, number | null> = {};
    for (const [side, q] of [['source', s], ['edited', e]] as const) {
      scores[`quality.${side}_sharpness`] = q.sharpness;
      scores[`quality.${side}_noise`] = q.noise;
      scores[`quality.${side}_clipped`] = q.clipped;
    }
    scores['quality.sharpness_ratio'] = s.sharpness > 0 ? e.sharpness / s.sharpness : null;
    return { scores, texts: {} };
  }

  async close(): Promise<void> {}
}

export function openQualityScorer(): Scorer {
  return new QualityScorer();
}
