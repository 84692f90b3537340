import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.ts';
import type { CandidateSpec, LabellerHook, PairLabel, PairLabeller, RgbImage } from '../types.ts';
import { loadBank, SOURCE_BANK, toLatent, type Bank } from './bank.ts';
import type { ReferenceInfo } from './folder.ts';

/**
 * Ground truth of the reference teacher: which bank item an image is (the nearest one; the exact
 * denoiser converges to a single item), hence whether a pair kept its person and whether it got the
 * edit it asked for, and the filters' precision and recall against that.
 */

/** What the edited image is, against the edit the pair asked for: that edit, no edit (an unedited face), another edit. */
export type EditMade = 'right' | 'none' | 'wrong';

/** The edit part of a pair's truth; only for pairs whose prompt names its edit (the `edit` attribute). */
export interface EditTruth {
  /** The edit the pair asked for: its prompt's `edit` attribute. */
  edit_asked: string;
  edit_made: EditMade;
  /** edit_made == 'right': the truth the edit-fidelity rules are measured against. */
  edit_kept: boolean;
}

/** What the teacher records for every pair of a reference folder; plus EditTruth when the prompt named its edit. */
export type PairTruth = IdentityTruth | (IdentityTruth & EditTruth);

export interface IdentityTruth extends PairLabel {
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
 * Which truth a verdict is measured against, read from a pair's `extra`: `identity` (the person was
 * kept), `edit` (the asked edit was made), `pair` (both: the pair is what it claims to be).
 */
export type TruthName = 'identity' | 'edit' | 'pair';

/** The truth of one pair, null when its teacher recorded none. */
export function truthOf(name: TruthName, extra: Record<string, unknown>): boolean | null {
  const identity = typeof extra.identity_kept === 'boolean' ? extra.identity_kept : null;
  const edit = typeof extra.edit_kept === 'boolean' ? extra.edit_kept : null;
  if (name === 'identity') return identity;
  if (name === 'edit') return edit;
  return identity === null || edit === null ? null : identity && edit;
}

/**
 * Ground-truth counts by (accepted, truth), added one pair at a time: memory stays flat at 10M rows.
 * Pairs whose teacher recorded no ground truth are not counted.
 */
export class GroundTruthTally {
  private readonly counts = { tp: 0, fp: 0, fn: 0, tn: 0 };

  constructor(readonly truth: TruthName = 'identity') {}

  /** `extra` is the pair's teacher facts (the `extra` column); the truth is read from it when present. */
  add(accepted: boolean, extra: Record<string, unknown>): void {
    const kept = truthOf(this.truth, extra);
    if (kept === null) return;
    if (accepted) kept ? this.counts.tp++ : this.counts.fp++;
    else kept ? this.counts.fn++ : this.counts.tn++;
  }

  /** null when no pair had ground truth. */
  result(): PrecisionRecall | null {
    const { tp, fp, fn, tn } = this.counts;
    return tp + fp + fn + tn === 0 ? null : fromCounts(tp, fp, fn, tn, 0);
  }
}

export interface EditTruthResult {
  /** The edit-fidelity verdict against edit_kept (the asked edit was made). */
  edit: PrecisionRecall;
  /** The pair's verdict against identity_kept && edit_kept. */
  pair: PrecisionRecall;
  /** Pairs and accepted pairs (the pair's verdict) by what the edit was: how many failed edits of each kind got through. */
  made: Record<EditMade, { pairs: number; accepted: number }>;
}

/**
 * The edit-fidelity counterpart of GroundTruthTally, one pair at a time: precision and recall of the
 * edit-fidelity verdict against `edit_kept`, of the pair's verdict against the whole pair's truth, and
 * the failed edits by kind. Pairs without an edit truth are not counted.
 */
export class EditTruthTally {
  private readonly edit = new GroundTruthTally('edit');
  private readonly pair = new GroundTruthTally('pair');
  private readonly made: EditTruthResult['made'] = { right: { pairs: 0, accepted: 0 }, none: { pairs: 0, accepted: 0 }, wrong: { pairs: 0, accepted: 0 } };

  /**
   * `accepted`: the pair's verdict. `editAccepted`: whether no edit-fidelity rule failed (a pair whose
   * person changed is not the edit rules' miss); default `accepted`.
   */
  add(accepted: boolean, extra: Record<string, unknown>, editAccepted = accepted): void {
    const made = extra.edit_made;
    if (made !== 'right' && made !== 'none' && made !== 'wrong') return;
    this.edit.add(editAccepted, extra);
    this.pair.add(accepted, extra);
    this.made[made].pairs++;
    if (accepted) this.made[made].accepted++;
  }

  /** null when no pair had an edit truth. */
  result(): EditTruthResult | null {
    const edit = this.edit.result();
    if (!edit) return null;
    return { edit, pair: this.pair.result() ?? fromCounts(0, 0, 0, 0, 0), made: structuredClone(this.made) };
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

  /**
   * What a generated pair is: the two nearest items, whether they show the same person, and — when the
   * candidate names its edit (the prompt set's `edit` attribute) — whether the edited image got it.
   */
  label(source: RgbImage, edited: RgbImage, spec?: Pick<CandidateSpec, 'attributes'>): PairTruth {
    const s = this.nearest(source);
    const e = this.nearest(edited);
    const item = (n: { bank: string; person: number }) => `${n.bank}/${String(n.person).padStart(2, '0')}`;
    const asked = spec?.attributes.edit;
    return {
      source_item: item(s),
      edited_item: item(e),
      source_person: s.person,
      edited_person: e.person,
      identity_kept: s.person === e.person,
      source_distance: Number(s.distance.toPrecision(4)),
      edited_distance: Number(e.distance.toPrecision(4)),
      ...(asked === undefined ? {} : editTruth(asked, e.bank)),
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

/** The edit asked for against the bank the edited image is in. */
export function editTruth(asked: string, editedBank: string): EditTruth {
  const made: EditMade = editedBank === asked ? 'right' : editedBank === SOURCE_BANK ? 'none' : 'wrong';
  return { edit_asked: asked, edit_made: made, edit_kept: made === 'right' };
}
