/**
 * Parquet row groups encoded apart (on worker threads) and appended to one file in order. A row group's
 * pages never refer to absolute file positions; only its metadata does (column chunk offsets, page
 * locations), so a group encoded as if it started right after the file's 4-byte "PAR1" header is moved
 * to its real place by adding the offset it lands at. The bytes stay hyparquet-writer's own, whichever
 * thread encoded them. Used by the prompt table (prompts/) and the manifest (shards/).
 */
import type { ByteWriter, ParquetWriter } from 'hyparquet-writer';

/** hyparquet-writer's own footer parts of one row group. */
export type RowGroupMeta = ParquetWriter['row_groups'][number];
export type PageIndexes = ParquetWriter['pendingIndexes'];

export interface EncodedRowGroup {
  rows: number;
  /** The group's pages, as they go into the file. */
  bytes: Uint8Array;
  /** Its metadata, with offsets as if the group started at file offset 4. */
  rowGroup: RowGroupMeta;
  indexes: PageIndexes;
}

/** Append `group` where `out` has got to (out defaults to the writer's own), and register it with `pq` for the footer. */
export function placeRowGroup(pq: ParquetWriter, group: EncodedRowGroup, out: ByteWriter = pq.writer as ByteWriter): void {
  const shift = BigInt(out.offset - 4);
  const { rowGroup, indexes } = group;
  rowGroup.columns.forEach((chunk, c) => {
    chunk.file_offset += shift;
    const meta = chunk.meta_data!;
    meta.data_page_offset += shift;
    if (meta.dictionary_page_offset !== undefined) meta.dictionary_page_offset += shift;
    if (indexes[c]) {
      indexes[c].chunk = chunk; // the footer writes the index offsets onto these very objects
      for (const loc of indexes[c].offsetIndex?.page_locations ?? []) loc.offset += shift;
    }
  });
  out.appendBytes(group.bytes);
  pq.row_groups.push(rowGroup);
  pq.pendingIndexes.push(...indexes);
  pq.num_rows += BigInt(group.rows);
}
