import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DuckDBInstance, StatementType, type DuckDBConnection } from '@duckdb/node-api';
import { UserError } from '../errors.ts';
import { CANDIDATES_FILE, isDataKey, MANIFEST_FILE, PROMPTS_FILE } from './layout.ts';
import { openRun, type RunPlan } from './run-file.ts';
import { scanShards } from './scan.ts';
import type { Store } from '../store/types.ts';

/** The tables a run offers to SQL, each a DuckDB view over the run's Parquet files. */
export const VIEWS = ['manifest', 'pairs', 'rejects', 'prompts', 'candidates'] as const;
export type ViewName = (typeof VIEWS)[number];

export interface OpenOptions {
  /** Views to set up (default: all). On s3:// runs only their files are downloaded. */
  views?: readonly ViewName[];
  /** DuckDB worker threads (default: DuckDB's own choice). */
  threads?: number;
}

/**
 * DuckDB with one view per list of Parquet files of a store (`read_parquet` over them). Local stores
 * are read in place; an s3:// store's files are first copied to a temp folder through src/store,
 * because DuckDB reads s3:// only through its httpfs extension, which it would download at run time
 * (no network here, and a second credential path to keep in step). Views with no files are skipped.
 *
 * The connection is sandboxed before any SQL runs, because users' SQL runs on it (`pairgen query`):
 * external access off with only the views' own files readable (`allowed_paths`) and only `outDir`
 * writable, no extension installed or loaded on demand (no http), and the configuration locked so a
 * query cannot `SET` any of it back.
 */
export class ParquetViews {
  private constructor(
    readonly db: DuckDBConnection,
    /** The views made. */
    readonly views: Set<string>,
    private readonly instance: DuckDBInstance,
    private readonly tmp: string,
  ) {}

  /**
   * `files`: view name → store keys. `threads`: DuckDB worker threads (default: DuckDB's own choice).
   * `unreadable` words the user error for a file DuckDB cannot read, given DuckDB's reason.
   */
  static async open(store: Store, files: Map<string, readonly string[]>, options: { threads?: number; unreadable: (reason: string) => string }): Promise<ParquetViews> {
    const local = !/^s3:\/\//i.test(store.uri);
    const tmp = await mkdtemp(join(tmpdir(), 'pairgen-duckdb-'));
    try {
      const paths = new Map<string, string[]>();
      for (const [view, keys] of files) {
        const list: string[] = [];
        for (const key of keys) {
          if (local) list.push(resolve(store.uri, key));
          else {
            const path = join(tmp, key.replace(/\//g, '__'));
            await writeFile(path, await store.get(key));
            list.push(path);
          }
        }
        paths.set(view, list);
      }
      await mkdir(join(tmp, OUT_DIR));
      const instance = await DuckDBInstance.create(':memory:', options.threads ? { threads: String(options.threads) } : {});
      const db = await instance.connect();
      const made = new Set<string>();
      const closeAll = () => {
        db.closeSync();
        instance.closeSync();
      };
      try {
        await sandbox(db, [...new Set([...paths.values()].flat())], tmp);
      } catch (e) {
        closeAll();
        throw e;
      }
      try {
        for (const [view, list] of paths) {
          if (list.length === 0) continue;
          await db.run(`CREATE VIEW ${view} AS SELECT * FROM read_parquet(${sqlList(list)})`);
          made.add(view);
        }
        await db.run('SET lock_configuration = true');
      } catch (e) {
        closeAll();
        throw new UserError(options.unreadable(firstLine(e)));
      }
      return new ParquetViews(db, made, instance, tmp);
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
  }

  /** The one folder DuckDB may write to (e.g. a query's Parquet result); removed on close. */
  get outDir(): string {
    return join(this.tmp, OUT_DIR);
  }

  /** A view's column names, in file order; none when the view was not made. */
  async columns(view: string): Promise<string[]> {
    if (!this.views.has(view)) return [];
    const rows = (await this.db.runAndReadAll(`SELECT column_name FROM (DESCRIBE ${view})`)).getRowObjectsJS();
    return rows.map((r) => String(r.column_name));
  }

  async close(): Promise<void> {
    this.db.closeSync();
    this.instance.closeSync();
    await rm(this.tmp, { recursive: true, force: true });
  }
}

const OUT_DIR = 'out';

/**
 * Lock DuckDB down to the `readable` files plus `tmp`'s out/ (results) and spill/ (DuckDB's own temp
 * files, which it may need for a large sort). lock_configuration follows once the views are made.
 */
async function sandbox(db: DuckDBConnection, readable: string[], tmp: string): Promise<void> {
  await db.run(`SET temp_directory = ${sqlString(join(tmp, 'spill'))}`);
  await db.run(`SET allowed_paths = ${sqlList(readable)}`);
  await db.run(`SET allowed_directories = ${sqlList([join(tmp, OUT_DIR) + '/', join(tmp, 'spill') + '/'])}`);
  await db.run('SET autoinstall_known_extensions = false');
  await db.run('SET autoload_known_extensions = false');
  await db.run('SET enable_external_access = false');
}

/** An SQL string literal. */
export function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

function sqlList(list: readonly string[]): string {
  return `[${list.map(sqlString).join(', ')}]`;
}

/**
 * A run opened for SQL (ParquetViews over its files). Views: manifest (manifest.parquet), pairs
 * (committed shard files, images included), rejects (committed rejects files), prompts
 * (prompts.parquet), candidates (a derived run's candidate table).
 */
export class RunDb {
  private constructor(
    readonly plan: RunPlan,
    readonly store: Store,
    readonly views: Set<ViewName>,
    private readonly parquet: ParquetViews,
  ) {}

  static async open(runUri: string, options: OpenOptions = {}): Promise<RunDb> {
    const { plan, store } = await openRun(runUri);
    const files = await viewFiles(store, plan, new Set(options.views ?? VIEWS));
    const parquet = await ParquetViews.open(store, files, { threads: options.threads, unreadable: (reason) => `${store.uri}: a data file is not readable Parquet (${reason})` });
    return new RunDb(plan, store, parquet.views as Set<ViewName>, parquet);
  }

  get db(): DuckDBConnection {
    return this.parquet.db;
  }

  /** Prepare one read-only statement; anything DuckDB cannot parse or bind is the user's mistake, named in `what`. */
  async prepareSelect(sql: string, what: string) {
    if (sql.trim() === '') throw new UserError(`${what} is empty: expected an SQL query`);
    let stmt;
    try {
      const extracted = await this.db.extractStatements(sql);
      if (extracted.count !== 1) throw new UserError(`${what}: expected one SQL statement, got ${extracted.count}`);
      stmt = await extracted.prepare(0);
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError(`${what}: ${firstLine(e).replace(/^Failed to extract statements: /, '')}${this.hint(e)}`);
    }
    if (stmt.statementType !== StatementType.SELECT) {
      stmt.destroySync();
      throw new UserError(`${what}: only SELECT queries are allowed (a query never changes the run)`);
    }
    return stmt;
  }

  /** A short hint after a DuckDB error: which views exist, and the columns of a view when a column is unknown. */
  hint(e: unknown): string {
    const msg = firstLine(e);
    if (/disabled by configuration|configuration has been locked|disabled through configuration/i.test(msg)) return `; a query reads only the run's views (${VIEWS.join(', ')}): other files, extensions, http and settings are off`;
    const missing = /Table with name (\w+) does not exist/i.exec(msg)?.[1]?.toLowerCase();
    if (missing === 'manifest' && !this.views.has('manifest')) return `; the run has no ${MANIFEST_FILE} yet: run \`pairgen finalize\` first (views here: ${[...this.views].join(', ') || 'none'})`;
    if (missing) return ` (views of a run: ${[...this.views].join(', ') || 'none'})`;
    return '';
  }

  columns(view: ViewName): Promise<string[]> {
    return this.parquet.columns(view);
  }

  /** The one folder DuckDB may write to (a query's Parquet result); removed on close. */
  get outDir(): string {
    return this.parquet.outDir;
  }

  close(): Promise<void> {
    return this.parquet.close();
  }
}

/** Which store keys back each wanted view: shard files only from committed shards. */
async function viewFiles(store: Store, plan: RunPlan, wanted: Set<ViewName>): Promise<Map<ViewName, string[]>> {
  const out = new Map<ViewName, string[]>();
  if (wanted.has('manifest') && (await store.head(MANIFEST_FILE))) out.set('manifest', [MANIFEST_FILE]);
  if (wanted.has('prompts')) out.set('prompts', [PROMPTS_FILE]);
  if (wanted.has('candidates') && plan.candidates) out.set('candidates', [CANDIDATES_FILE]);
  if (wanted.has('pairs') || wanted.has('rejects')) {
    const { markers } = await scanShards(store, plan);
    const files = [...markers.keys()].sort((a, b) => a - b).flatMap((s) => markers.get(s)!.files.map((f) => f.name));
    if (wanted.has('pairs')) out.set('pairs', files.filter(isDataKey));
    if (wanted.has('rejects')) out.set('rejects', files.filter((f) => !isDataKey(f)));
  }
  return out;
}

/** The views an SQL text names (a word match; used to fetch only those files of an s3:// run). */
export function viewsNamed(sql: string): ViewName[] {
  return VIEWS.filter((v) => new RegExp(`\\b${v}\\b`, 'i').test(sql));
}

export function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0];
}
