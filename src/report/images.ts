import { parquetMetadataAsync, parquetReadObjects, type AsyncBuffer } from 'hyparquet';
import { UserError } from '../errors.ts';
import type { Store } from '../store/types.ts';
import type { SheetRow } from './manifest.ts';

export interface PairImages {
  source: Uint8Array | null;
  edited: Uint8Array | null;
}

/**
 * The encoded images of each row, read from the data file the manifest names (`file`, `file_row`).
 * Each file is fetched once and only the row span needed is decoded. Files without image columns
 * (rejects files) give nulls.
 */
export async function loadImages(store: Store, rows: SheetRow[]): Promise<Map<string, PairImages>> {
  const out = new Map<string, PairImages>();
  const byFile = new Map<string, SheetRow[]>();
  for (const r of rows) {
    if (!byFile.has(r.file)) byFile.set(r.file, []);
    byFile.get(r.file)!.push(r);
  }
  for (const [file, wanted] of [...byFile].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const bytes = await store.getIfExists(file);
    if (!bytes) throw new UserError(`${store.uri}/${file}: listed in the manifest but missing from the run`);
    const buffer: AsyncBuffer = { byteLength: bytes.byteLength, slice: (s, e) => bytes.buffer.slice(bytes.byteOffset + s, bytes.byteOffset + (e ?? bytes.byteLength)) as ArrayBuffer };
    let metadata;
    try {
      metadata = await parquetMetadataAsync(buffer);
    } catch (e) {
      throw new UserError(`${store.uri}/${file}: not a readable Parquet file (${(e as Error).message})`);
    }
    const names = new Set(metadata.schema.map((s) => s.name));
    if (!names.has('source_image') || !names.has('edited_image')) {
      for (const r of wanted) out.set(r.pair_id, { source: null, edited: null });
      continue;
    }
    const first = Math.min(...wanted.map((r) => r.file_row));
    const last = Math.max(...wanted.map((r) => r.file_row));
    const cells = await parquetReadObjects({ file: buffer, metadata, columns: ['pair_id', 'source_image', 'edited_image'], rowStart: first, rowEnd: last + 1, utf8: false });
    for (const r of wanted) {
      const cell = cells[r.file_row - first];
      if (!cell || cell.pair_id !== r.pair_id) throw new UserError(`${store.uri}/${file}: row ${r.file_row} is not pair ${r.pair_id} as the manifest says; the manifest is stale, re-run \`pairgen finalize\``);
      out.set(r.pair_id, { source: imageBytes(cell.source_image), edited: imageBytes(cell.edited_image) });
    }
  }
  return out;
}

function imageBytes(cell: unknown): Uint8Array | null {
  const bytes = (cell as { bytes?: unknown } | null)?.bytes;
  return bytes instanceof Uint8Array ? bytes : null;
}
