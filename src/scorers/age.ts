import { both, type PairInput, type Scorer, type ScorerResult } from './scorer.ts';

/**
 * Ages from faceres's age head, which the identity stage already ran on the same faces (Σ age·p(age)
 * over its 100 one-year bins): nothing runs here. Null when the identity stage has no age head
 * (an ArcFace embedder) or found no face on that side.
 */
class AgeScorer implements Scorer {
  readonly name = 'age';
  readonly models: string[] = [];

  async score(pair: PairInput): Promise<ScorerResult> {
    const s = pair.faces.sourceFace ? pair.faces.sourceAge ?? null : null;
    const e = pair.faces.editedFace ? pair.faces.editedAge ?? null : null;
    return { scores: { 'age.source': s, 'age.edited': e, 'age.delta': both(s, e, (a, b) => b - a) }, texts: {} };
  }

  async close(): Promise<void> {}
}

export function openAgeScorer(): Scorer {
  return new AgeScorer();
}
