import { join } from 'node:path';
import { DEFAULT_IDENTITY } from '../identity/config.ts';
import { embedLargest } from '../identity/calibrate.ts';
import { cosine } from '../identity/embedder.ts';
import { decodeImage } from '../image/index.ts';
import { openDetector, openEmbedder } from '../identity/models.ts';
import type { RuntimeConfig } from '../onnx/session.ts';
import type { BankManifest } from './bank.ts';

/**
 * Identity thresholds calibrated on the bank: the packaged face models score every (source crop,
 * edited crop) pair of an edit, same person and different people; a category's threshold is the one
 * that maximises accuracy at the expected share of kept identities. Images without a detected face
 * count as rejected at every threshold, as the filter does.
 */
export interface EditCalibration {
  edit: string;
  /** Similarities of same-person and different-person pairs (null: a face was not found). */
  same: (number | null)[];
  different: (number | null)[];
}

export interface CategoryThreshold {
  category: string;
  edits: string[];
  threshold: number;
  /** At `keptShare` identities kept (the demo's measured share). */
  precision: number;
  recall: number;
}

export async function scoreBank(bankDir: string, manifest: BankManifest, runtime: RuntimeConfig): Promise<EditCalibration[]> {
  const detector = await openDetector(DEFAULT_IDENTITY, runtime);
  const embedder = await openEmbedder(DEFAULT_IDENTITY, runtime);
  try {
    const embed = async (bank: string) => {
      const out: (Float32Array | null)[] = [];
      for (let p = 0; p < manifest.people.length; p++) {
        const img = await decodeImage(join(bankDir, bank, `${String(p).padStart(2, '0')}.png`));
        out.push(await embedLargest(img, detector, embedder, DEFAULT_IDENTITY.min_face_size));
      }
      return out;
    };
    const sources = await embed(manifest.banks[0]);
    const result: EditCalibration[] = [];
    for (const edit of manifest.banks.slice(1)) {
      const edited = await embed(edit);
      const same: (number | null)[] = [];
      const different: (number | null)[] = [];
      sources.forEach((s, i) =>
        edited.forEach((e, j) => {
          const sim = s && e ? cosine(s, e) : null;
          (i === j ? same : different).push(sim);
        }),
      );
      result.push({ edit, same, different });
    }
    return result;
  } finally {
    await detector.close();
    await embedder.close();
  }
}

/**
 * The threshold (on a 0.01 grid) with the highest expected accuracy, given the share of pairs that keep
 * their person; of a plateau of equally good thresholds, its middle (the widest margin both ways).
 */
export function categoryThreshold(category: string, cals: EditCalibration[], keptShare: number): CategoryThreshold {
  const same = cals.flatMap((c) => c.same);
  const different = cals.flatMap((c) => c.different);
  const rate = (xs: (number | null)[], t: number) => xs.filter((x) => x !== null && x >= t).length / xs.length;
  const grid = Array.from({ length: 121 }, (_, i) => (i - 20) / 100);
  const accuracy = grid.map((t) => keptShare * rate(same, t) + (1 - keptShare) * (1 - rate(different, t)));
  const best = Math.max(...accuracy);
  const first = accuracy.findIndex((a) => a >= best - 1e-12);
  let last = first;
  while (last + 1 < grid.length && accuracy[last + 1] >= best - 1e-12) last++;
  const threshold = grid[Math.floor((first + last) / 2)];
  const tpr = rate(same, threshold);
  const tp = keptShare * tpr;
  const fp = (1 - keptShare) * rate(different, threshold);
  return { category, edits: cals.map((c) => c.edit), threshold, precision: tp + fp ? tp / (tp + fp) : 1, recall: tpr };
}
