import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { RunDb, viewsNamed, firstLine, sqlString } from '../dataset/db.ts';
import { putOutput } from '../store/output.ts';
import { QUERY_FORMATS, QUERY_LIMITS, type QueryFormat } from './formats.ts';

export { QUERY_FORMATS, QUERY_LIMITS, type QueryFormat };

export interface QueryOptions {
  format?: QueryFormat;
  /** Write the result here (a path or store URI) instead of returning it; required for parquet. */
  out?: string;
  /** Most rows a result may have (default QUERY_LIMITS.rows); more is a UserError, not a cut. */
  limit?: number;
  /** Most bytes of rendered output or Parquet file (default QUERY_LIMITS.bytes). */
  maxBytes?: number;
}

export interface QueryResult {
  rows: number;
  /** The rendered result (table / json) when no `out` was given. */
  text?: string;
}

/**
 * `pairgen query`: one read-only SQL statement over a run's views (manifest, pairs, rejects, prompts,
 * candidates; see RunDb, which also sandboxes DuckDB to the run's own files). table: aligned text;
 * json: one JSON object per line (binary as base64); parquet: DuckDB's own writer, to `out`. Rows come
 * from DuckDB's streaming result chunk by chunk, so a huge result stops at the limit instead of being
 * materialised; what is kept is bounded by `limit` and `maxBytes`, and is written whole or not at all.
 */
export async function queryRun(runUri: string, sql: string, options: QueryOptions = {}): Promise<QueryResult> {
  const format = options.format ?? 'table';
  if (!QUERY_FORMATS.includes(format)) throw new UserError(`--format ${format}: expected one of ${QUERY_FORMATS.join(', ')}`);
  if (format === 'parquet' && !options.out) throw new UserError('--format parquet needs --out FILE');
  const limit = options.limit ?? QUERY_LIMITS.rows;
  const maxBytes = options.maxBytes ?? QUERY_LIMITS.bytes;
  if (!Number.isSafeInteger(limit) || limit < 1) throw new UserError(`--limit: expected a whole number ≥ 1, got ${limit}`);
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new UserError(`--max-bytes: expected a whole number ≥ 1, got ${maxBytes}`);
  const tooMany = () => new UserError(`query: the result has more than ${limit} rows (--limit ${limit}); narrow the query (WHERE, LIMIT, GROUP BY) or raise the limit with --limit N`);
  const tooBig = () => new UserError(`query: the result is larger than ${maxBytes} bytes (--max-bytes ${maxBytes}); narrow the query or raise the limit with --max-bytes N`);
  const run = await RunDb.open(runUri, { views: viewsNamed(sql) });
  try {
    const stmt = await run.prepareSelect(sql, 'query');
    if (format === 'parquet') {
      stmt.destroySync();
      const file = join(run.outDir, 'result.parquet');
      const body = sql.trim().replace(/;\s*$/, '');
      // The query sits on lines of its own so that a trailing `-- comment` cannot swallow the rest; one
      // row past the limit is enough to know it is exceeded, and keeps the file bounded.
      const copied = await run.db.runAndReadAll(`COPY (SELECT * FROM (\n${body}\n) LIMIT ${limit + 1}) TO ${sqlString(file)} (FORMAT parquet)`).catch((e) => {
        throw new UserError(`query: ${firstLine(e)}${run.hint(e)}`);
      });
      const rows = Number(copied.getRowsJS()[0]?.[0] ?? 0);
      if (rows > limit) throw tooMany();
      if ((await stat(file)).size > maxBytes) throw tooBig();
      await putOutput(options.out!, await readFile(file));
      return { rows };
    }
    const names: string[] = [];
    const kept: string[][] = [];
    const lines: string[] = [];
    let bytes = 0;
    try {
      const result = await stmt.stream();
      names.push(...result.columnNames());
      for await (const chunk of result.yieldRowsJs()) {
        for (const row of chunk) {
          if (kept.length + lines.length >= limit) throw tooMany();
          if (format === 'json') {
            const line = JSON.stringify(Object.fromEntries(names.map((n, i) => [n, jsonValue(row[i])]))) + '\n';
            bytes += Buffer.byteLength(line);
            lines.push(line);
          } else {
            const cells = row.map(cellText);
            bytes += cells.reduce((n, c) => n + Buffer.byteLength(c) + 2, 0);
            kept.push(cells);
          }
          if (bytes > maxBytes) throw tooBig();
        }
      }
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError(`query: ${firstLine(e)}${run.hint(e)}`);
    }
    const text = format === 'json' ? lines.join('') : renderTable(names, kept);
    if (Buffer.byteLength(text) > maxBytes) throw tooBig();
    const rows = format === 'json' ? lines.length : kept.length;
    if (options.out) {
      await putOutput(options.out, text);
      return { rows };
    }
    return { rows, text };
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

function renderTable(names: string[], cells: string[][]): string {
  // A loop, not Math.max(...column): spreading 100,000 arguments overflows the stack.
  const widths = names.map((n) => n.length);
  for (const r of cells) for (const [i, c] of r.entries()) widths[i] = Math.max(widths[i], c.length);
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(names), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line), `(${cells.length} row${cells.length === 1 ? '' : 's'})`, ''].join('\n');
}
