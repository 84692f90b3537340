import { ShardFile } from '../dataset/rows.ts';
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
    const images = await (await ShardFile.fetch(store, file)).images(wanted);
    for (const r of wanted) {
      const stored = images?.get(r.pair_id);
      out.set(r.pair_id, { source: stored?.source_image?.bytes ?? null, edited: stored?.edited_image?.bytes ?? null });
    }
  }
  return out;
}
