import type { RuntimeConfig } from '../onnx/session.ts';
import { OnnxModel } from '../onnx/model.ts';
import { NSFW_LABELS, SCORER_MODELS } from './models.ts';
import { resizeBilinear } from './pixels.ts';
import { ModelScorer, type PairInput, type Scorer, type ScorerResult } from './scorer.ts';

const SIZE = 224;
const spec = SCORER_MODELS.nsfw;

/** nsfwjs's class probabilities of each whole image (resized as nsfwjs does: bilinear, corners aligned). */
class SafetyScorer extends ModelScorer {
  readonly name = 'safety';
  async score(pair: PairInput): Promise<ScorerResult> {
    const per = SIZE * SIZE * 3;
    const input = new Float32Array(per * 2);
    [pair.source, pair.edited].forEach((img, i) => {
      const rgb = resizeBilinear(img, SIZE, SIZE, true).data;
      for (let j = 0; j < per; j++) input[i * per + j] = rgb[j] / 255;
    });
    const probs = (await this.model.run({ [spec.input]: { data: input, dims: [2, SIZE, SIZE, 3] } }, ['dense_3']))[0].data;
    const scores: Record<string, number | null> = {};
    ['source', 'edited'].forEach((side, i) => NSFW_LABELS.forEach((label, k) => (scores[`safety.${side}_${label}`] = probs[i * NSFW_LABELS.length + k])));
    return { scores, texts: {} };
  }
}

export async function openSafetyScorer(path: string, runtime: RuntimeConfig): Promise<Scorer> {
  return new SafetyScorer(await OnnxModel.open(path, runtime));
}
