import type { Writable } from 'node:stream';
import { streamRows } from './parquet.ts';
import { manifestSchema, type ManifestRow } from './record.ts';

/** Rows per manifest row group: no image bytes, so ~50k rows is a few tens of MB in memory. */
export const MANIFEST_ROW_GROUP_ROWS = 50_000;

/**
 * Write manifest.parquet to `sink`: one row per candidate (accepted and rejected) across all shards,
 * every column but the image bytes, plus `file` / `file_row`. Rows are pulled one row group at a time,
 * so memory stays bounded whatever the row count. Ends the sink when done.
 *
 * With a Store: `const pass = new PassThrough(); const up = store.putStream('manifest.parquet', pass);
 * await writeManifest(pass, rows); await up;`
 */
export async function writeManifest(
  sink: Writable,
  rows: AsyncIterable<ManifestRow> | Iterable<ManifestRow>,
  opts: { rowGroupRows?: number } = {},
): Promise<void> {
  try {
    await streamRows(sink, rows, { schema: manifestSchema, kind: 'manifest', rowGroupRows: opts.rowGroupRows ?? MANIFEST_ROW_GROUP_ROWS });
  } catch (e) {
    sink.destroy(e as Error);
    throw e;
  }
  await new Promise<void>((resolve, reject) => {
    sink.once('error', reject);
    sink.end(() => resolve());
  });
}
