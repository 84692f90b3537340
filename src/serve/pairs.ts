/**
 * GET /api/pairs (filter, sort, page over the manifest) and GET /api/pairs/<pair_id> (one candidate's
 * every column). The filter is the query verb's hardened predicate (predicateSql); category, verdict and
 * split are bound parameters; the sort column must be a manifest column. A page is one ORDER BY … LIMIT
 * OFFSET over the manifest, which DuckDB answers with a top-N scan: no row beyond the page is materialised.
 */
import { predicateSql } from '../dataset/predicate.ts';
import { scoreColumns, type ScorerName } from '../scorers/config.ts';
import { isJsonField, manifestSchema } from '../shards/record.ts';
import { badRequest, notFound } from './http.ts';
import type { RunManifest } from './manifest.ts';

export const PER_PAGE = { default: 48, max: 200 };
const PAIR_PARAMS = ['where', 'category', 'verdict', 'split', 'sort', 'order', 'page', 'per_page'];
/** Pair ids are 16 hex digits; anything else in the URL is refused before it reaches a query. */
const PAIR_ID = /^[0-9a-f]{16}$/;
const JSON_COLUMNS = new Set(manifestSchema.fields.filter(isJsonField).map((f) => f.name));

/** A manifest row's cells as JSON values: JSON text columns parsed, BIGINTs as numbers. */
export function plainRow(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    if (JSON_COLUMNS.has(k) && typeof v === 'string') {
      try {
        out[k] = JSON.parse(v);
      } catch {
        out[k] = v;
      }
    } else out[k] = typeof v === 'bigint' ? Number(v) : v;
  }
  return out;
}

export function checkPairId(id: string): string {
  if (!PAIR_ID.test(id)) throw badRequest(`${JSON.stringify(id.slice(0, 80))} is not a pair id (16 hex digits)`);
  return id;
}

/** The columns of a pair browser row (what the grid shows, plus where the images are). */
function listColumns(columns: readonly string[], scorers: readonly ScorerName[]): string[] {
  const wanted = ['pair_id', 'index', 'category', 'split', 'instruction', 'accepted', 'reject_reason', 'identity_similarity', 'seed'];
  const scores = scoreColumns(scorers).map((c) => c.column);
  return [...wanted, ...scores, 'duplicate_of', 'image_format', 'file', 'file_row'].filter((c) => columns.includes(c));
}

const quote = (column: string) => `"${column.replace(/"/g, '""')}"`;

function wholeParam(params: URLSearchParams, name: string, dflt: number, min: number, max: number): number {
  const text = params.get(name);
  if (text === null || text === '') return dflt;
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) throw badRequest(`${name}=${text.slice(0, 40)}: expected a whole number from ${min} to ${max}`);
  return Number(text);
}

export function refuseUnknownParams(params: URLSearchParams, known: readonly string[]): void {
  for (const name of params.keys()) if (!known.includes(name)) throw badRequest(`unknown parameter ${JSON.stringify(name.slice(0, 40))}; expected ${known.join(', ')}`);
}

export async function listPairs(manifest: RunManifest, scorers: readonly ScorerName[], params: URLSearchParams) {
  refuseUnknownParams(params, PAIR_PARAMS);
  const columns = await manifest.columns();
  const conditions: string[] = [];
  const values: string[] = [];
  const where = params.get('where');
  if (where !== null && where.trim() !== '') conditions.push(predicateSql(where, { option: 'where', view: 'manifest', columns }));
  for (const name of ['category', 'split'] as const) {
    const v = params.get(name);
    if (v !== null && v !== '') {
      conditions.push(`${name} = ?`);
      values.push(v);
    }
  }
  const verdict = params.get('verdict');
  if (verdict !== null && verdict !== '') {
    if (verdict !== 'accepted' && verdict !== 'rejected') throw badRequest(`verdict=${verdict.slice(0, 40)}: expected accepted or rejected`);
    conditions.push(verdict === 'accepted' ? 'accepted' : 'NOT accepted');
  }
  const sort = params.get('sort') || 'index';
  if (!columns.includes(sort)) throw badRequest(`sort=${sort.slice(0, 60)}: not a manifest column (columns: ${columns.join(', ')})`);
  const order = params.get('order') || 'asc';
  if (order !== 'asc' && order !== 'desc') throw badRequest(`order=${order.slice(0, 40)}: expected asc or desc`);
  const perPage = wholeParam(params, 'per_page', PER_PAGE.default, 1, PER_PAGE.max);
  const page = wholeParam(params, 'page', 0, 0, Number.MAX_SAFE_INTEGER);

  const whereSql = conditions.length ? `WHERE ${conditions.join(' AND ')}` : '';
  const described = where ? `where ${JSON.stringify(where)}` : 'the filter';
  const [{ n }] = await manifest.rows(`SELECT count(*)::DOUBLE AS n FROM manifest ${whereSql}`, values, described);
  const total = Number(n);
  const pages = Math.ceil(total / perPage);
  if (page > 0 && page >= pages) throw badRequest(`page ${page} is past the end: ${total} matching pair${total === 1 ? '' : 's'} make ${pages} page${pages === 1 ? '' : 's'} of ${perPage} (pages count from 0)`);
  const tie = sort === 'index' ? '' : `, "index" ASC`;
  const sql = `SELECT ${listColumns(columns, scorers).map(quote).join(', ')} FROM manifest ${whereSql} ORDER BY ${quote(sort)} ${order.toUpperCase()} NULLS LAST${tie} LIMIT ${perPage} OFFSET ${page * perPage}`;
  const rows = (await manifest.rows(sql, values, described)).map(plainRow);
  return { total, page, per_page: perPage, pages, sort, order, rows };
}

/** Every manifest column of one pair (404 when the manifest has no such pair). */
export async function pairRow(manifest: RunManifest, pairId: string): Promise<Record<string, unknown>> {
  checkPairId(pairId);
  const [row] = await manifest.rows('SELECT * FROM manifest WHERE pair_id = ? LIMIT 1', [pairId]);
  if (!row) throw notFound(`no pair ${pairId} in the manifest`);
  return plainRow(row);
}

export async function pairPage(manifest: RunManifest, pairId: string) {
  const row = await pairRow(manifest, pairId);
  const stored = row.accepted === true;
  const url = (which: string) => `/api/pairs/${pairId}/${which}`;
  return {
    row,
    images: { source: stored ? url('source') : null, edited: stored ? url('edited') : null },
    stored,
    /** A reject keeps no images: these draw it again from its seed. */
    regenerate: stored ? null : { source: `${url('source')}?regenerate=1`, edited: `${url('edited')}?regenerate=1` },
    lineage: { parent_pair_id: row.parent_pair_id ?? null, changes: row.changes ?? {} },
  };
}
