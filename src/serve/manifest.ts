/**
 * The run's manifest.parquet as a DuckDB view for the server: opened on first use
 * (a running run has no manifest yet), opened again when finalize rewrote the manifest, and one query at
 * a time (one DuckDB connection). The views are ParquetViews, so DuckDB is sandboxed to the run's files
 * as for `pairgen query`; user text reaches SQL only through predicateSql or as a bound parameter.
 */
import type { DuckDBConnection, DuckDBValue } from '@duckdb/node-api';
import { ParquetViews, firstLine } from '../dataset/db.ts';
import { MANIFEST_FILE } from '../dataset/layout.ts';
import type { Store } from '../store/types.ts';
import { badRequest, notFound } from './http.ts';

export class RunManifest {
  private opened: { views: ParquetViews; size: number; columns: string[] } | null = null;
  private opening: Promise<void> | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly runUri: string,
  ) {}

  /** The manifest's columns (404 before finalize). */
  async columns(): Promise<string[]> {
    return (await this.open()).columns;
  }

  /**
   * Rows of one SELECT over the view `manifest`, `values` bound to its `?`s. A DuckDB error
   * is the request's fault when `userText` says the SQL holds the user's condition (a type mismatch, say).
   */
  async rows(sql: string, values: DuckDBValue[] = [], userText?: string): Promise<Record<string, unknown>[]> {
    const { views } = await this.open();
    return this.serial(async () => {
      try {
        return (await views.db.runAndReadAll(sql, values)).getRowObjectsJS() as Record<string, unknown>[];
      } catch (e) {
        if (userText !== undefined) throw badRequest(`${userText}: ${firstLine(e)}`);
        throw e;
      }
    });
  }

  /** Stream a SELECT's rows chunk by chunk to `each` (the what-if pass over every candidate). */
  async forEachChunk(sql: string, each: (rows: Record<string, unknown>[]) => void): Promise<void> {
    const { views } = await this.open();
    await this.serial(async () => {
      const result = await views.db.stream(sql);
      for await (const chunk of result.yieldRowObjectJs()) each(chunk as Record<string, unknown>[]);
    });
  }

  /** Run `fn` on the connection, alone (e.g. scoreDistributions, which takes the connection). */
  async use<T>(fn: (db: DuckDBConnection) => Promise<T>): Promise<T> {
    const { views } = await this.open();
    return this.serial(() => fn(views.db));
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async open(): Promise<{ views: ParquetViews; size: number; columns: string[] }> {
    const head = await this.store.head(MANIFEST_FILE);
    if (!head) throw notFound(`${this.store.uri}: the run is not finalized yet (no ${MANIFEST_FILE}); the pair browser, scores and what-if need it: run \`pairgen finalize ${this.runUri}\``);
    if (this.opened?.size === head.size) return this.opened;
    this.opening ??= (async () => {
      const old = this.opened;
      const views = await ParquetViews.open(this.store, new Map([['manifest', [MANIFEST_FILE]]]), {
        unreadable: (reason) => `${this.store.uri}/${MANIFEST_FILE}: not a readable Parquet file (${reason})`,
      });
      this.opened = { views, size: head.size, columns: await views.columns('manifest') };
      if (old) await this.serial(() => old.views.close());
    })().finally(() => (this.opening = null));
    await this.opening;
    return this.opened!;
  }

  async close(): Promise<void> {
    await this.queue;
    await this.opened?.views.close();
    this.opened = null;
  }
}
