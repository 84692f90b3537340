/**
 * What decided a pair's verdict, in words for a contact sheet's caption: the failed rule and the
 * values of the scores its conditions read, or for an accepted pair the scores its category's rules read.
 */
import { holds, type Condition, type Rule } from '../scorers/rules.ts';

/** The recorded facts a caption reads: the verdict and the scores (by name, e.g. `edit.magnitude`) the rules read. */
export interface CaptionRow {
  accepted: boolean;
  reject_reason: string | null;
  scores: Record<string, number | null>;
}

export interface VerdictCaption {
  /** "accepted", or "rejected: <reason>" with, for a rule, its failing conditions and their values. */
  verdict: string;
  /** Further lines: a rejected pair's conditions that held, an accepted pair's rule values. */
  details: string[];
}

/** Longest detail line (the values an accepted pair's rules read, a rejected pair's conditions that held) before it is cut with "…": the caption has a tile's height. */
export const MAX_DETAIL = 180;

const SYMBOLS: Record<Exclude<Condition['op'], 'in'>, string> = { '>=': '≥', '<=': '≤', '>': '>', '<': '<', '==': '=', '!=': '≠' };

/** A condition's bound as a reader writes it: "≥ 0.02", "in [0, 12]". */
export function boundText(c: Pick<Condition, 'op' | 'value' | 'high'>): string {
  return c.op === 'in' ? `in [${c.value}, ${c.high}]` : `${SYMBOLS[c.op]} ${c.value}`;
}

/**
 * The caption of a recorded pair judged by its category's `rules`. A pair rejected by a rule:
 * "rejected: not_edited: edit.magnitude 0.011 (≥ 0.02)" (every failing condition; the ones that held
 * follow as a detail). A pair rejected by the identity stage, or for a reason that is no rule of the
 * category: "rejected: <reason>" (the identity score is on the caption's line above). An accepted pair:
 * "accepted" and the values its category's rules read, cut at MAX_DETAIL characters.
 */
export function verdictCaption(row: CaptionRow, rules: readonly Rule[]): VerdictCaption {
  const value = (c: Condition) => row.scores[c.score] ?? null;
  if (!row.accepted) {
    const reason = row.reject_reason ?? 'no reason recorded';
    const rule = rules.find((r) => r.name === row.reject_reason);
    if (!rule) return { verdict: `rejected: ${reason}`, details: [] };
    const failed = rule.conditions.filter((c) => !holds(c, value(c)));
    const held = rule.conditions.filter((c) => holds(c, value(c)));
    // A rule whose conditions all hold on the recorded values was not what rejected it (the run's rules changed since): say so.
    if (failed.length === 0) return { verdict: `rejected: ${reason}`, details: [cut(`its conditions hold on the recorded scores: ${held.map((c) => reading(c, value(c))).join(', ')}`)] };
    return { verdict: `rejected: ${reason}: ${failed.map((c) => reading(c, value(c))).join(', ')}`, details: held.length ? [cut(`held: ${held.map((c) => reading(c, value(c))).join(', ')}`)] : [] };
  }
  if (rules.length === 0) return { verdict: 'accepted', details: [] };
  const line = rules.map((r) => `${r.name}: ${r.conditions.map((c) => reading(c, value(c))).join(', ')}`).join('; ');
  return { verdict: 'accepted', details: [cut(line)] };
}

function cut(line: string): string {
  return line.length > MAX_DETAIL ? `${line.slice(0, MAX_DETAIL - 1)}…` : line;
}

/** "edit.magnitude 0.011 (≥ 0.02)"; an unmeasured score reads "not measured". */
function reading(c: Condition, v: number | null): string {
  return `${c.score} ${v === null ? 'not measured' : valueText(c, v)} (${boundText(c)})`;
}

/**
 * Three significant digits, more when three would print a value that looks on the other side of the
 * bound (0.019996 against ≥ 0.02 prints 0.019996, not 0.02).
 */
export function valueText(c: Condition, v: number): string {
  for (let digits = 3; digits < 17; digits++) {
    const text = Math.abs(v) >= 10 ** digits ? String(Math.round(v)) : String(Number(v.toPrecision(digits)));
    if (holds(c, Number(text)) === holds(c, v)) return text;
  }
  return String(v);
}
