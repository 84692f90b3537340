import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { RunDb, viewsNamed, firstLine } from '../dataset/db.ts';
import { putOutput } from '../store/output.ts';

export const QUERY_FORMATS = ['table', 'json', 'parquet'] as const;
export type QueryFormat = (typeof QUERY_FORMATS)[number];

export interface QueryOptions {
  format?: QueryFormat;
  /** Write the result here (a path or store URI) instead of returning it; required for parquet. */
  out?: string;
}

export interface QueryResult {
  rows: number;
  /** The rendered result (table / json) when no `out` was given. */
  text?: string;
}

/**
 * `pairgen query`: one read-only SQL statement over a run's views (manifest, pairs, rejects, prompts,
 * candidates; see RunDb). table: aligned text; json: one JSON object per line (binary as base64);
 * parquet: DuckDB's own writer, to `out`.
 */
export async function queryRun(runUri: string, sql: string, options: QueryOptions = {}): Promise<QueryResult> {
  const format = options.format ?? 'table';
  if (!QUERY_FORMATS.includes(format)) throw new UserError(`--format ${format}: expected one of ${QUERY_FORMATS.join(', ')}`);
  if (format === 'parquet' && !options.out) throw new UserError('--format parquet needs --out FILE');
  const run = await RunDb.open(runUri, { views: viewsNamed(sql) });
  try {
    const stmt = await run.prepareSelect(sql, 'query');
    if (format === 'parquet') {
      stmt.destroySync();
      const dir = await mkdtemp(join(tmpdir(), 'pairgen-query-out-'));
      try {
        const file = join(dir, 'result.parquet');
        const body = sql.trim().replace(/;\s*$/, '');
        // The query sits on lines of its own so that a trailing `-- comment` cannot swallow the rest.
        const copied = await run.db.runAndReadAll(`COPY (\n${body}\n) TO '${file.replace(/'/g, "''")}' (FORMAT parquet)`).catch((e) => {
          throw new UserError(`query: ${firstLine(e)}${run.hint(e)}`);
        });
        const rows = Number(copied.getRowsJS()[0]?.[0] ?? 0);
        await putOutput(options.out!, await readFile(file));
        return { rows };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
    let reader;
    try {
      reader = await stmt.runAndReadAll();
    } catch (e) {
      throw new UserError(`query: ${firstLine(e)}${run.hint(e)}`);
    }
    const names = reader.columnNames();
    const rows = reader.getRowsJS();
    const text = format === 'json' ? rows.map((r) => JSON.stringify(Object.fromEntries(names.map((n, i) => [n, jsonValue(r[i])])))).join('\n') + (rows.length ? '\n' : '') : renderTable(names, rows);
    if (options.out) {
      await putOutput(options.out, text);
      return { rows: rows.length };
    }
    return { rows: rows.length, text };
  } finally {
    await run.close();
  }
}

function jsonValue(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(jsonValue);
  if (typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonValue(x)]));
  return v;
}

const MAX_CELL = 60;

function cellText(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (v instanceof Uint8Array) return `<${v.byteLength} bytes>`;
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6)));
  if (typeof v === 'object') return JSON.stringify(v, (_k, x) => (x instanceof Uint8Array ? `<${x.byteLength} bytes>` : typeof x === 'bigint' ? x.toString() : x));
  const s = String(v).replace(/\s+/g, ' ');
  return s.length > MAX_CELL ? s.slice(0, MAX_CELL - 1) + '…' : s;
}

function renderTable(names: string[], rows: unknown[][]): string {
  const cells = rows.map((r) => r.map(cellText));
  const widths = names.map((n, i) => Math.max(n.length, ...cells.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(names), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line), `(${rows.length} row${rows.length === 1 ? '' : 's'})`, ''].join('\n');
}
