import type { RuntimeConfig } from '../onnx/session.ts';
import { OnnxModel } from '../onnx/model.ts';
import type { RgbImage } from '../types.ts';
import { SCORER_MODELS } from './models.ts';
import { gridDeltaE } from './edit.ts';
import { resizeBilinear } from './pixels.ts';
import { ModelScorer, type PairInput, type Scorer, type ScorerResult } from './scorer.ts';

const SIZE = 256;
const spec = SCORER_MODELS.selfie;
const OUTPUT = 'activation_10:0';
/** Below this share of background, its change is not measured (null). */
export const MIN_BACKGROUND = 0.01;

/** Bilinear sample of a SIZE×SIZE mask at the centre of grid pixel (u, v) of a width×height grid. */
function maskAt(mask: Float32Array, u: number, v: number, width: number, height: number): number {
  const x = Math.max(0, Math.min(SIZE - 1, ((u + 0.5) * SIZE) / width - 0.5));
  const y = Math.max(0, Math.min(SIZE - 1, ((v + 0.5) * SIZE) / height - 0.5));
  const x0 = Math.floor(x), y0 = Math.floor(y), x1 = Math.min(SIZE - 1, x0 + 1), y1 = Math.min(SIZE - 1, y0 + 1);
  const fx = x - x0, fy = y - y0;
  return (mask[y0 * SIZE + x0] * (1 - fx) + mask[y0 * SIZE + x1] * fx) * (1 - fy) + (mask[y1 * SIZE + x0] * (1 - fx) + mask[y1 * SIZE + x1] * fx) * fy;
}

/**
 * Background preservation: the selfie model's person probability on each image (whole image resized
 * to 256×256), p = max(p_source, p_edited) per pixel of the edit scorer's 256-px CIELAB grid, and with
 * the background weight w = 1 − p:
 *   background.change   = Σ w·ΔE / Σ w / 100 (0 = background untouched; same scale as edit.magnitude),
 *   background.fraction = Σ w / pixels (how much of the image counted as background).
 * change is null when less than 1% of the image is background.
 */
class BackgroundScorer extends ModelScorer {
  readonly name = 'background';
  async personMask(img: RgbImage): Promise<Float32Array> {
    const input = resizeBilinear(img, SIZE, SIZE, false).data.map((v) => v / 255);
    return (await this.model.run({ [spec.input]: { data: input, dims: [1, SIZE, SIZE, 3] } }, [OUTPUT]))[0].data;
  }

  async score(pair: PairInput): Promise<ScorerResult> {
    const ms = await this.personMask(pair.source);
    const me = await this.personMask(pair.edited);
    const { delta, width, height } = await gridDeltaE(pair);
    let weight = 0, change = 0;
    for (let v = 0; v < height; v++) {
      for (let u = 0; u < width; u++) {
        const w = 1 - Math.max(maskAt(ms, u, v, width, height), maskAt(me, u, v, width, height));
        weight += w;
        change += w * delta[v * width + u];
      }
    }
    const fraction = weight / delta.length;
    return { scores: { 'background.change': fraction >= MIN_BACKGROUND ? change / weight / 100 : null, 'background.fraction': fraction }, texts: {} };
  }
}

export async function openBackgroundScorer(path: string, runtime: RuntimeConfig): Promise<Scorer> {
  return new BackgroundScorer(await OnnxModel.open(path, runtime));
}
