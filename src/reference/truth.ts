import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.ts';
import type { LabellerHook, PairLabel, PairLabeller, RgbImage } from '../types.ts';
import { loadBank, toLatent, type Bank } from './bank.ts';
import type { ReferenceInfo } from './folder.ts';

/**
 * Ground truth of the reference teacher: which bank item an image is (the nearest one; the exact
 * denoiser converges to a single item), hence whether a pair kept its person, and the identity
 * filter's precision and recall against that.
 */
export interface PairTruth extends PairLabel {
  /** "<bank>/<person>", e.g. "source/07", "grayscale/07". */
  source_item: string;
  edited_item: string;
  source_person: number;
  edited_person: number;
  identity_kept: boolean;
  /** Mean squared distance to that item in [-1, 1] units (≈ 0: the item itself; larger: a blend). */
  source_distance: number;
  edited_distance: number;
}

export interface PrecisionRecall {
  /** Accepted pairs whose person was kept / accepted pairs (null when nothing was accepted). */
  precision: number | null;
  /** Accepted pairs whose person was kept / pairs whose person was kept (null when none was). */
  recall: number | null;
  truePositives: number;
  falsePositives: number;
  falseNegatives: number;
  trueNegatives: number;
  /** Rows without ground truth (not from the reference teacher), left out. */
  unlabelled: number;
}

/**
 * Ground-truth counts by (accepted, identity kept), added one pair at a time: memory stays flat at 10M rows.
 * Pairs whose teacher recorded no ground truth are not counted.
 */
export class GroundTruthTally {
  private readonly counts = { tp: 0, fp: 0, fn: 0, tn: 0 };

  /** `extra` is the pair's teacher facts (the `extra` column); its `identity_kept` is the truth when present. */
  add(accepted: boolean, extra: Record<string, unknown>): void {
    const kept = extra.identity_kept;
    if (typeof kept !== 'boolean') return;
    if (accepted) kept ? this.counts.tp++ : this.counts.fp++;
    else kept ? this.counts.fn++ : this.counts.tn++;
  }

  /** null when no pair had ground truth. */
  result(): PrecisionRecall | null {
    const { tp, fp, fn, tn } = this.counts;
    return tp + fp + fn + tn === 0 ? null : fromCounts(tp, fp, fn, tn, 0);
  }
}

/** Precision and recall of the identity filter (accepted = predicted same person) against the ground truth. */
export function precisionRecall(rows: Iterable<{ accepted: boolean; identity_kept: boolean | null | undefined }>): PrecisionRecall {
  let tp = 0, fp = 0, fn = 0, tn = 0, unlabelled = 0;
  for (const r of rows) {
    if (typeof r.identity_kept !== 'boolean') unlabelled++;
    else if (r.accepted) r.identity_kept ? tp++ : fp++;
    else r.identity_kept ? fn++ : tn++;
  }
  return fromCounts(tp, fp, fn, tn, unlabelled);
}

function fromCounts(tp: number, fp: number, fn: number, tn: number, unlabelled: number): PrecisionRecall {
  return {
    precision: tp + fp ? tp / (tp + fp) : null,
    recall: tp + fn ? tp / (tp + fn) : null,
    truePositives: tp,
    falsePositives: fp,
    falseNegatives: fn,
    trueNegatives: tn,
    unlabelled,
  };
}

export class GroundTruth implements PairLabeller {
  private constructor(private readonly bank: Bank) {}

  /** Open the bank of a reference model folder (its reference.json says where the bank is). */
  static async open(modelDir: string): Promise<GroundTruth> {
    let info: ReferenceInfo;
    try {
      info = JSON.parse(await readFile(join(modelDir, 'reference.json'), 'utf8')) as ReferenceInfo;
    } catch (e) {
      throw new UserError(`${modelDir} is not a reference teacher folder: cannot read reference.json (${(e as Error).message})`);
    }
    return new GroundTruth(await loadBank(resolve(modelDir, info.bank)));
  }

  get size(): number {
    return this.bank.size;
  }

  /** The nearest bank item of an image of the bank's size. */
  nearest(img: RgbImage): { bank: string; person: number; distance: number } {
    if (img.width !== this.bank.size || img.height !== this.bank.size) {
      throw new UserError(`ground truth: image is ${img.width}x${img.height}, the reference bank's images are ${this.bank.size}x${this.bank.size}`);
    }
    const x = toLatent(img);
    let best = { bank: '', person: -1, distance: Infinity };
    this.bank.images.forEach((row, k) =>
      row.forEach((item, p) => {
        let d = 0;
        for (let j = 0; j < x.length && d < best.distance * x.length; j++) d += (x[j] - item[j]) ** 2;
        d /= x.length;
        if (d < best.distance) best = { bank: this.bank.banks[k], person: p, distance: d };
      }),
    );
    return best;
  }

  /** What a generated pair is: the two nearest items and whether they show the same person. */
  label(source: RgbImage, edited: RgbImage): PairTruth {
    const s = this.nearest(source);
    const e = this.nearest(edited);
    const item = (n: { bank: string; person: number }) => `${n.bank}/${String(n.person).padStart(2, '0')}`;
    return {
      source_item: item(s),
      edited_item: item(e),
      source_person: s.person,
      edited_person: e.person,
      identity_kept: s.person === e.person,
      source_distance: Number(s.distance.toPrecision(4)),
      edited_distance: Number(e.distance.toPrecision(4)),
    };
  }
}

/** The teacher hook's entry (LabellerHook.module): the ground truth of a reference model folder. */
export const createLabeller = (modelDir: string): Promise<PairLabeller> => GroundTruth.open(modelDir);

/**
 * The labeller hook for a teacher config whose edit model is a reference teacher folder (it has a
 * reference.json), else null: only the reference teacher knows which face each image is.
 */
export function referenceLabeller(teacher: { model: string; edit_model?: string | null }): LabellerHook | null {
  const editDir = teacher.edit_model ?? teacher.model;
  return existsSync(join(editDir, 'reference.json')) ? { module: import.meta.url, arg: editDir } : null;
}
