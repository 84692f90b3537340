import type { RuntimeConfig } from '../onnx/session.ts';
import { OnnxModel } from '../onnx/model.ts';
import { SCORE_NAMES } from './config.ts';
import { EMOTION_LABELS, GRAY_WEIGHTS, SCORER_MODELS } from './models.ts';
import { faceCrop } from './pixels.ts';
import { ModelScorer, both, type PairInput, type Scorer, type ScorerResult } from './scorer.ts';

const SIZE = 64;
const spec = SCORER_MODELS.emotion;

/**
 * Emotion probabilities of each side's face (the detector's box, turned upright by the eye angle,
 * 64×64 grey in [-1, 1]) and their gains, edited − source: `expression.happy_gain` near +1 when a
 * neutral face was made to smile.
 */
class ExpressionScorer extends ModelScorer {
  readonly name = 'expression';
  async score(pair: PairInput): Promise<ScorerResult> {
    const wanted = [[pair.source, pair.faces.sourceFace], [pair.edited, pair.faces.editedFace]] as const;
    const items = wanted.filter(([, face]) => face);
    const per = SIZE * SIZE;
    const input = new Float32Array(per * items.length);
    items.forEach(([img, face], i) => {
      const crop = faceCrop(img, face!, 1, SIZE).data;
      for (let j = 0; j < per; j++) {
        const grey = (GRAY_WEIGHTS[0] * crop[3 * j] + GRAY_WEIGHTS[1] * crop[3 * j + 1] + GRAY_WEIGHTS[2] * crop[3 * j + 2]) / 255;
        input[i * per + j] = (grey - 0.5) * 2;
      }
    });
    const probs = items.length ? (await this.model.run({ [spec.input]: { data: input, dims: [items.length, SIZE, SIZE, 1] } }, ['Identity']))[0].data : new Float32Array(0);
    const n = EMOTION_LABELS.length;
    const s = pair.faces.sourceFace ? probs.subarray(0, n) : null;
    const e = pair.faces.editedFace ? probs.subarray(s ? n : 0, s ? 2 * n : n) : null;
    const scores: Record<string, number | null> = Object.fromEntries(SCORE_NAMES.expression.map((n) => [n, null]));
    EMOTION_LABELS.forEach((label, k) => {
      scores[`expression.source_${label}`] = s ? s[k] : null;
      scores[`expression.edited_${label}`] = e ? e[k] : null;
      scores[`expression.${label}_gain`] = both(s ? s[k] : null, e ? e[k] : null, (a, b) => b - a);
    });
    return { scores, texts: {} };
  }
}

export async function openExpressionScorer(path: string, runtime: RuntimeConfig): Promise<Scorer> {
  return new ExpressionScorer(await OnnxModel.open(path, runtime));
}
