import type { DuckDBConnection } from '@duckdb/node-api';
import { UserError } from '../errors.ts';
import { ParquetViews, firstLine } from '../dataset/db.ts';
import { MANIFEST_FILE } from '../dataset/layout.ts';
import { predicateSql } from '../dataset/predicate.ts';
import type { Store } from '../store/types.ts';
import type { CategoryRules } from '../scorers/rules.ts';
import { scoreColumn, type ScorerName } from '../scorers/config.ts';
import { scoreDistributions, type ScoreDistributions } from './scores.ts';

/** What a contact sheet shows of one candidate (manifest columns; images are fetched separately). */
export interface SheetRow {
  pair_id: string;
  index: number;
  shard: number;
  seed: number;
  category: string;
  instruction: string;
  identity_similarity: number | null;
  identity_threshold: number;
  accepted: boolean;
  reject_reason: string | null;
  file: string;
  file_row: number;
  /** What a teacher needs to draw the pair again (rejected pairs keep no images). */
  prompt_id: string;
  sample_index: number;
  source_prompt: string;
  target_prompt: string;
  attributes: Record<string, string>;
  /** The pair scores asked for (by name, `edit.magnitude`): what the sheet's caption shows; empty without scorers. */
  scores: Record<string, number | null>;
}

const COLUMNS = `pair_id, "index"::DOUBLE AS "index", shard::DOUBLE AS shard, seed::DOUBLE AS seed, category, instruction,
  identity_similarity::DOUBLE AS identity_similarity, identity_threshold::DOUBLE AS identity_threshold,
  accepted, reject_reason, file, file_row::DOUBLE AS file_row,
  prompt_id, sample_index::DOUBLE AS sample_index, source_prompt, target_prompt, attributes`;

/** SQL over a run's manifest.parquet with DuckDB (one thread), read as the view `manifest`. */
export class ManifestQuery {
  private constructor(private readonly parquet: ParquetViews) {}

  static async open(store: Store, runUri: string): Promise<ManifestQuery> {
    if (!(await store.head(MANIFEST_FILE))) throw new UserError(`${store.uri}: the run has no ${MANIFEST_FILE} yet; finish it with \`pairgen finalize ${runUri}\``);
    const parquet = await ParquetViews.open(store, new Map([['manifest', [MANIFEST_FILE]]]), {
      threads: 1,
      unreadable: (reason) => `${store.uri}/${MANIFEST_FILE}: not a readable Parquet file (${reason})`,
    });
    return new ManifestQuery(parquet);
  }

  private get db(): DuckDBConnection {
    return this.parquet.db;
  }

  /** The manifest's column names, in file order. */
  columns(): Promise<string[]> {
    return this.parquet.columns('manifest');
  }

  /**
   * Candidates matching `predicate` (a `--where` condition over the manifest columns, parsed by
   * predicateSql: never pasted into SQL), in candidate order, at most `limit`. A condition DuckDB
   * cannot bind or run (e.g. a type mismatch) is the user's mistake.
   */
  async select(predicate: string | undefined, limit: number, scores: readonly string[] = []): Promise<SheetRow[]> {
    const columns = await this.columns();
    const where = predicate === undefined ? '' : `WHERE ${predicateSql(predicate, { option: '--where', view: 'manifest', columns })}`;
    const sql = `SELECT ${COLUMNS}${scoreSelect(scores)} FROM manifest ${where} ORDER BY "index" LIMIT ${Math.floor(limit)}`;
    try {
      const stmt = await this.db.prepare(sql);
      return toRows((await stmt.runAndReadAll()).getRowObjectsJS(), scores);
    } catch (e) {
      if (predicate === undefined) throw e;
      throw new UserError(`--where ${JSON.stringify(predicate)}: ${firstLine(e)} (manifest columns: ${columns.join(', ')})`);
    }
  }

  /** Up to `accepted` accepted and `rejected` rejected candidates of each category (fewer of one kind → more of the other), in candidate order. */
  async samplePerCategory(accepted: number, rejected: number, scores: readonly string[] = []): Promise<Map<string, SheetRow[]>> {
    const total = accepted + rejected;
    // The first `total` candidates of each category and kind, by a top-n aggregate over two narrow columns:
    // memory bounded by the number of groups, one pass however many rows the manifest has (a window
    // ranking every row held gigabytes at 10M rows).
    const firsts = (
      await this.db.runAndReadAll(`SELECT category, accepted, count(*)::DOUBLE AS n, min("index", ${total}) AS idxs FROM manifest GROUP BY ALL`)
    ).getRowObjectsJS();
    const kinds = new Map<string, { acc: number[]; rej: number[] }>();
    for (const r of firsts) {
      const k = kinds.get(String(r.category)) ?? { acc: [], rej: [] };
      // An index appears once in a run; the list is made distinct anyway, so a manifest of copied shards stays bounded.
      k[r.accepted ? 'acc' : 'rej'] = [...new Set((r.idxs as unknown[]).map(Number))];
      kinds.set(String(r.category), k);
    }
    const chosen = new Set<string>();
    const indexes = new Set<number>();
    const choose = (category: string, accepted: boolean, list: number[]) => {
      for (const i of list) {
        chosen.add(`${category}\u0000${accepted}\u0000${i}`);
        indexes.add(i);
      }
    };
    for (const [category, { acc, rej }] of kinds) {
      choose(category, true, acc.slice(0, total - Math.min(rej.length, rejected)));
      choose(category, false, rej.slice(0, total - Math.min(acc.length, accepted)));
    }
    if (chosen.size === 0) return new Map();
    // Integers from the manifest itself, so the list is safe to inline.
    const sql = `SELECT DISTINCT ON (category, accepted, "index") ${COLUMNS}${scoreSelect(scores)} FROM manifest
      WHERE "index" IN (${[...indexes].join(', ')}) ORDER BY category, "index", accepted, shard`;
    const rows = toRows((await this.db.runAndReadAll(sql)).getRowObjectsJS(), scores);
    const out = new Map<string, SheetRow[]>();
    for (const row of rows) {
      if (!chosen.has(`${row.category}\u0000${row.accepted}\u0000${row.index}`)) continue;
      if (!out.has(row.category)) out.set(row.category, []);
      out.get(row.category)!.push(row);
    }
    return out;
  }

  /** The identity thresholds each category was judged against (usually one per category). */
  async thresholds(): Promise<Map<string, number[]>> {
    const rows = (await this.db.runAndReadAll('SELECT DISTINCT category, identity_threshold::DOUBLE AS t FROM manifest ORDER BY 1, 2')).getRowObjectsJS();
    const out = new Map<string, number[]>();
    for (const r of rows) {
      const c = String(r.category);
      if (!out.has(c)) out.set(c, []);
      out.get(c)!.push(Number(r.t));
    }
    return out;
  }

  /** The score histograms by category of the enabled scorers (scores.ts); null when the manifest has no score column. */
  async scoreDistributions(enabled: readonly ScorerName[], rules: CategoryRules): Promise<ScoreDistributions | null> {
    return scoreDistributions(this.db, enabled, await this.columns(), rules);
  }

  close(): Promise<void> {
    return this.parquet.close();
  }
}

/** The extra select list of score columns (names checked against the manifest's columns by the caller). */
function scoreSelect(scores: readonly string[]): string {
  return scores.map((n) => `, "${scoreColumn(n)}"::DOUBLE AS "${scoreColumn(n)}"`).join('');
}

function toRows(rows: Record<string, unknown>[], scores: readonly string[]): SheetRow[] {
  return rows.map((r) => ({
    pair_id: String(r.pair_id),
    index: Number(r.index),
    shard: Number(r.shard),
    seed: Number(r.seed),
    category: String(r.category),
    instruction: String(r.instruction),
    identity_similarity: r.identity_similarity === null ? null : Number(r.identity_similarity),
    identity_threshold: Number(r.identity_threshold),
    accepted: r.accepted === true,
    reject_reason: r.reject_reason === null ? null : String(r.reject_reason),
    file: String(r.file),
    file_row: Number(r.file_row),
    prompt_id: String(r.prompt_id),
    sample_index: Number(r.sample_index),
    source_prompt: String(r.source_prompt),
    target_prompt: String(r.target_prompt),
    attributes: JSON.parse(String(r.attributes)) as Record<string, string>,
    scores: Object.fromEntries(scores.map((n) => {
      const v = r[scoreColumn(n)];
      return [n, v === null || v === undefined ? null : Number(v)];
    })),
  }));
}
