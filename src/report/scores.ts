/**
 * The distributions of a run's pair scores (docs/scorers.md), by category, with the bounds the rules
 * put on each score (docs/rules.md): what `pairgen report` writes as scores.json and draws per scorer
 * (score-plot.ts), and the preview/ folder draws too. Counted by DuckDB over the manifest view, so a
 * manifest of millions of rows is aggregated where it lies, never loaded.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { sqlString } from '../dataset/db.ts';
import { scoresRead, type CategoryRules, type Operator } from '../scorers/rules.ts';
import { SCORER_NAMES, scoreColumn, scoreColumns, type ScorerName } from '../scorers/config.ts';

/** Bins of every score histogram, over the score's observed [min, max] in the run. */
export const SCORE_BINS = 20;

/** A rule's condition on one score, with the categories whose rules hold it (sorted). */
export interface RuleBound {
  rule: string;
  op: Operator;
  value: number;
  /** The upper end of `in [value, high]`. */
  high?: number;
  categories: string[];
}

export interface ScoreHistogram {
  /** The score's name (`edit.magnitude`), its scorer and its manifest column (`edit_magnitude`). */
  name: string;
  scorer: ScorerName;
  column: string;
  /** The smallest and largest measured value in the run; null when no pair has one. */
  min: number | null;
  max: number | null;
  /** SCORE_BINS + 1 ascending edges over [min, max] (a single value v: [v − 0.5, v + 0.5]); empty when nothing was measured. */
  edges: number[];
  /** Category → pairs per bin (the last bin includes max); empty arrays when nothing was measured. */
  counts: Record<string, number[]>;
  /** Category → pairs without a value (not measured: null or not a finite number). */
  nulls: Record<string, number>;
  /** The rules' conditions on this score. */
  rules: RuleBound[];
}

/** scores.json. */
export interface ScoreDistributions {
  bins: number;
  /** The manifest's categories, sorted, and their candidates. */
  categories: string[];
  candidates: Record<string, number>;
  /** The enabled scorers with numbers in the manifest, in SCORER_NAMES order (one plot each). */
  scorers: ScorerName[];
  scores: ScoreHistogram[];
  /** Text scores recorded beside the numbers (duplicates.source_dhash): not drawn. */
  texts: string[];
}

/**
 * The histograms of every numeric score column of the enabled scorers that the manifest has (`present`:
 * its column names); null when it has none (a run without scorers), so such a run's pictures are as before.
 * One scan finds each score's range, then one GROUP BY per score counts (category, bin).
 */
export async function scoreDistributions(db: DuckDBConnection, enabled: readonly ScorerName[], present: readonly string[], rules: CategoryRules): Promise<ScoreDistributions | null> {
  const all = scoreColumns(enabled).filter((c) => present.includes(c.column));
  const numbers = all.filter((c) => c.kind === 'number');
  if (numbers.length === 0) return null;
  const totals = (await db.runAndReadAll('SELECT category, count(*)::BIGINT AS n FROM manifest GROUP BY 1 ORDER BY 1')).getRowObjectsJS();
  const categories = totals.map((r) => String(r.category));
  const candidates = Object.fromEntries(totals.map((r) => [String(r.category), Number(r.n)]));
  const finite = (column: string) => `CASE WHEN isfinite("${column}"::DOUBLE) THEN "${column}"::DOUBLE END`;
  const ranges = (await db.runAndReadAll(`SELECT ${numbers.map((c, i) => `min(${finite(c.column)}) AS lo${i}, max(${finite(c.column)}) AS hi${i}`).join(', ')} FROM manifest`)).getRowObjectsJS()[0];
  const scores: ScoreHistogram[] = [];
  for (const [i, c] of numbers.entries()) {
    const min = ranges[`lo${i}`] === null ? null : Number(ranges[`lo${i}`]);
    const max = ranges[`hi${i}`] === null ? null : Number(ranges[`hi${i}`]);
    const edges = min === null || max === null ? [] : binEdges(min, max);
    const counts: Record<string, number[]> = {};
    const nulls: Record<string, number> = {};
    for (const category of categories) {
      counts[category] = new Array(edges.length ? SCORE_BINS : 0).fill(0);
      nulls[category] = 0;
    }
    for (const r of (await db.runAndReadAll(binSql(c.column, edges))).getRowObjectsJS()) {
      const bin = Number(r.bin);
      if (bin < 0) nulls[String(r.category)] += Number(r.n);
      else counts[String(r.category)][bin] += Number(r.n);
    }
    scores.push({ name: c.name, scorer: scorerOfColumn(c.name), column: c.column, min, max, edges, counts, nulls, rules: ruleBounds(rules, c.name, categories) });
  }
  return {
    bins: SCORE_BINS,
    categories,
    candidates,
    scorers: SCORER_NAMES.filter((s) => scores.some((h) => h.scorer === s)),
    scores,
    texts: all.filter((c) => c.kind === 'text').map((c) => c.name),
  };
}

function scorerOfColumn(name: string): ScorerName {
  return name.slice(0, name.indexOf('.')) as ScorerName;
}

/** Equal-width edges over [min, max]; a single value gets a unit-wide range around it. */
function binEdges(min: number, max: number): number[] {
  const [lo, hi] = min === max ? [min - 0.5, max + 0.5] : [min, max];
  return Array.from({ length: SCORE_BINS + 1 }, (_, k) => (k === SCORE_BINS ? hi : lo + ((hi - lo) * k) / SCORE_BINS));
}

/** (category, bin, pairs) of one score; bin −1 holds the pairs without a value. Bounds go in as exact doubles (a string cast, not a DECIMAL literal). */
function binSql(column: string, edges: number[]): string {
  const value = `"${column}"::DOUBLE`;
  if (edges.length === 0) return `SELECT category, -1 AS bin, count(*)::BIGINT AS n FROM manifest GROUP BY ALL`;
  const lo = `${sqlString(String(edges[0]))}::DOUBLE`;
  const hi = `${sqlString(String(edges[edges.length - 1]))}::DOUBLE`;
  return `SELECT category, CASE WHEN ${value} IS NULL OR NOT isfinite(${value}) THEN -1
      ELSE least(greatest(floor((${value} - ${lo}) / (${hi} - ${lo}) * ${SCORE_BINS}), 0), ${SCORE_BINS - 1})::INTEGER END AS bin,
    count(*)::BIGINT AS n FROM manifest GROUP BY ALL`;
}

/** The conditions the categories' rules put on `score`; the same condition of the same rule in several categories is one bound. */
export function ruleBounds(rules: CategoryRules, score: string, categories: readonly string[]): RuleBound[] {
  const out: RuleBound[] = [];
  for (const category of categories) {
    for (const rule of rules.get(category) ?? []) {
      for (const c of rule.conditions) {
        if (c.score !== score) continue;
        const same = out.find((b) => b.rule === rule.name && b.op === c.op && b.value === c.value && b.high === c.high);
        if (same) {
          if (!same.categories.includes(category)) same.categories.push(category);
        } else out.push({ rule: rule.name, op: c.op, value: c.value, ...(c.high === undefined ? {} : { high: c.high }), categories: [category] });
      }
    }
  }
  return out;
}

/** The scores the rules read that are manifest columns (what a sheet caption shows); identity.similarity is a column of its own. */
export function captionScores(rules: CategoryRules, present: readonly string[]): string[] {
  return scoresRead(rules.values()).filter((n) => n !== 'identity.similarity' && present.includes(scoreColumn(n)));
}
