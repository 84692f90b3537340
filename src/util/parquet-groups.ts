/**
 * Parquet row groups encoded apart (on worker threads) and appended to one file in order. A row group's
 * pages never refer to absolute file positions; only its metadata does (column chunk offsets, page
 * locations), so a group encoded as if it started right after the file's 4-byte "PAR1" header is moved
 * to its real place by adding the offset it lands at. The bytes stay hyparquet-writer's own, whichever
 * thread encoded them. Used by the prompt table (prompts/) and the manifest (shards/).
 */
import { ByteWriter as ByteWriterImpl, type ByteWriter, type ParquetWriter } from 'hyparquet-writer';
import { serializeTCompactProtocol } from 'hyparquet-writer/src/thrift.js';
import { BoundaryOrders } from 'hyparquet/src/constants.js';

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

/**
 * The page indexes of placed row groups, serialized as soon as each group is placed. ParquetWriter keeps
 * them as objects (an array entry and a Uint8Array per page and bound) until finish(); with a page per
 * shard in a 10M-row manifest that was hundreds of MB, growing with the row count. The bytes are
 * written where finish() writes them (all column indexes, then all offset indexes, before the bloom
 * filters and the footer), so the file is the same.
 */
export class SerializedPageIndexes {
  private readonly columnIndexes: { chunk: RowGroupMeta['columns'][number]; bytes: Uint8Array }[] = [];
  private readonly offsetIndexes: { chunk: RowGroupMeta['columns'][number]; bytes: Uint8Array }[] = [];
  private taken = 0;

  /** Serialize the indexes `pq` holds for groups placed since the last call, and drop the objects. */
  take(pq: ParquetWriter): void {
    for (const pending of pq.pendingIndexes.slice(this.taken)) {
      const { chunk, columnIndex, offsetIndex } = pending;
      // As hyparquet-writer's writeIndexes: an index of one page is not written.
      if (columnIndex && columnIndex.min_values.length > 1) {
        this.columnIndexes.push({
          chunk,
          bytes: serialize({
            field_1: columnIndex.null_pages,
            field_2: columnIndex.min_values,
            field_3: columnIndex.max_values,
            field_4: BoundaryOrders.indexOf(columnIndex.boundary_order),
            field_5: columnIndex.null_counts,
            field_8: columnIndex.nan_counts,
          }),
        });
      }
      if (offsetIndex && offsetIndex.page_locations.length > 1) {
        this.offsetIndexes.push({
          chunk,
          bytes: serialize({ field_1: offsetIndex.page_locations.map((p) => ({ field_1: p.offset, field_2: p.compressed_page_size, field_3: p.first_row_index })) }),
        });
      }
      pending.columnIndex = undefined;
      pending.offsetIndex = undefined;
    }
    this.taken = pq.pendingIndexes.length;
  }

  /** Write the indexes, then finish the file (bloom filters, footer). */
  finish(pq: ParquetWriter): void | Promise<void> {
    this.take(pq);
    const writer = pq.writer as ByteWriter;
    for (const { chunk, bytes } of this.columnIndexes) {
      chunk.column_index_offset = BigInt(writer.offset);
      chunk.column_index_length = bytes.length;
      writer.appendBytes(bytes);
    }
    for (const { chunk, bytes } of this.offsetIndexes) {
      chunk.offset_index_offset = BigInt(writer.offset);
      chunk.offset_index_length = bytes.length;
      writer.appendBytes(bytes);
    }
    return pq.finish();
  }
}

function serialize(value: Record<string, unknown>): Uint8Array {
  const out = new ByteWriterImpl(256);
  serializeTCompactProtocol(out, value as never);
  return out.getBytes();
}
