import { parquetHeader } from 'hyparquet/src/column.js';
import { ByteWriter, type ParquetWriter } from 'hyparquet-writer';
import { writePageHeader } from 'hyparquet-writer/src/datapage.js';

/**
 * Data pages of list columns as version 1 pages (DATA_PAGE), the rest as hyparquet-writer writes them
 * (DATA_PAGE_V2).
 *
 * Why: fastparquet (and other readers that follow older parquet-mr behaviour) cannot read a repeated
 * column from v2 pages; its v2 page reader ignores repetition levels. hyparquet-writer writes only v2
 * pages, and no maintained JavaScript writer writes v1 pages with what pairgen also needs (identical
 * bytes for identical rows, small row groups, streaming), so this rewrite is hand-written.
 *
 * How: right after a row group is written (the writer's flush hook), the pages of its list column
 * chunks are rewritten in the writer's buffer, and the row group's metadata that hyparquet-writer
 * serialises at finish() (chunk offsets and sizes, page locations, encoding stats) is moved with them.
 * List columns are written UNCOMPRESSED (they hold a few floats per row), so a page converts without
 * decompressing: v2 body = repetition levels | definition levels | values; v1 body = the same sections
 * with each level section prefixed by its byte length (uint32, little-endian).
 */

/** What a row group of hyparquet-writer's ParquetWriter holds (its `row_groups` and `pendingIndexes`). */
interface ChunkMeta {
  meta_data?: {
    path_in_schema: string[];
    codec: string;
    total_compressed_size: bigint;
    total_uncompressed_size: bigint;
    data_page_offset: bigint;
    dictionary_page_offset?: bigint;
    encoding_stats?: { page_type: string; encoding: string; count: number }[];
  };
  file_offset: bigint;
}
interface PendingIndex {
  chunk: ChunkMeta;
  offsetIndex?: { page_locations: { offset: bigint; compressed_page_size: number; first_row_index: bigint }[] };
}
interface WriterState {
  row_groups: { columns: ChunkMeta[]; total_compressed_size?: bigint; file_offset?: bigint }[];
  pendingIndexes: PendingIndex[];
}

/** A ByteWriter whose flush (called by ParquetWriter after each row group) converts the list columns' pages. */
export class V1ListPagesWriter extends ByteWriter {
  private pq: ParquetWriter | null = null;
  private converted = 0;

  /** `listColumns`: the top-level names of list columns (their leaf paths are <name>.list.element). */
  constructor(private readonly listColumns: ReadonlySet<string>, initialSize?: number) {
    super(initialSize);
  }

  /** The writer that writes into this buffer; set once, right after it is constructed. */
  attach(pq: ParquetWriter): void {
    this.pq = pq;
  }

  /** Convert the row group just written (once); subclasses that send bytes on call super.flush() first. */
  flush(): void | Promise<void> {
    if (!this.pq) throw new Error('V1ListPagesWriter: attach() the ParquetWriter before writing');
    const state = this.pq as unknown as WriterState;
    if (state.row_groups.length > this.converted) convertLastRowGroup(state, this, this.listColumns);
    this.converted = state.row_groups.length;
  }
}

function convertLastRowGroup(pq: WriterState, writer: ByteWriter, listColumns: ReadonlySet<string>): void {
  const group = pq.row_groups.at(-1);
  if (!group) return;
  const chunks = group.columns;
  const pending = pq.pendingIndexes.slice(-chunks.length);
  // Buffer index = file offset - bytes already handed on by earlier flushes.
  const flushed = writer.offset - writer.index;
  const groupStart = Number(chunks[0].file_offset);
  const bytes = new Uint8Array(writer.buffer, 0, writer.index);
  const out = new ByteWriter(writer.index - (groupStart - flushed) + 1024);
  for (let c = 0; c < chunks.length; c++) {
    const chunk = chunks[c];
    const meta = chunk.meta_data!;
    const start = Number(chunk.file_offset);
    const end = start + Number(meta.total_compressed_size);
    const newStart = groupStart + out.offset;
    const shift = BigInt(newStart - start);
    const isList = listColumns.has(meta.path_in_schema[0]) && meta.path_in_schema.length > 1;
    if (!isList) {
      out.appendBytes(bytes.subarray(start - flushed, end - flushed));
      moveChunk(chunk, pending[c], shift, null);
      continue;
    }
    if (meta.codec !== 'UNCOMPRESSED') throw new Error(`v1 pages: list column ${meta.path_in_schema.join('.')} must be written UNCOMPRESSED, got ${meta.codec}`);
    const newPageOffsets = new Map<bigint, { offset: bigint; size: number }>();
    let uncompressed = 0;
    let pos = start;
    while (pos < end) {
      const reader = { view: new DataView(bytes.buffer, bytes.byteOffset + pos - flushed, end - pos), offset: 0 };
      const header = parquetHeader(reader);
      const body = bytes.subarray(pos - flushed + reader.offset, pos - flushed + reader.offset + header.compressed_page_size);
      const pageStart = groupStart + out.offset;
      const v2 = header.data_page_header_v2;
      if (header.type === 'DATA_PAGE_V2' && v2) {
        const rep = body.subarray(0, v2.repetition_levels_byte_length);
        const def = body.subarray(v2.repetition_levels_byte_length, v2.repetition_levels_byte_length + v2.definition_levels_byte_length);
        const values = body.subarray(v2.repetition_levels_byte_length + v2.definition_levels_byte_length);
        const page = new ByteWriter(body.length + 16);
        for (const levels of [rep, def]) {
          page.appendUint32(levels.length);
          page.appendBytes(levels);
        }
        page.appendBytes(values);
        const headerStart = out.offset;
        writePageHeader(out, {
          type: 'DATA_PAGE',
          uncompressed_page_size: page.offset,
          compressed_page_size: page.offset,
          data_page_header: { num_values: v2.num_values, encoding: v2.encoding, definition_level_encoding: 'RLE', repetition_level_encoding: 'RLE' },
        } as Parameters<typeof writePageHeader>[1]);
        out.appendBytes(page.getBytes());
        uncompressed += out.offset - headerStart;
      } else {
        // Dictionary pages are the same in both versions.
        out.appendBytes(bytes.subarray(pos - flushed, pos - flushed + reader.offset + header.compressed_page_size));
        uncompressed += reader.offset + header.uncompressed_page_size;
      }
      newPageOffsets.set(BigInt(pos), { offset: BigInt(pageStart), size: groupStart + out.offset - pageStart });
      pos += reader.offset + header.compressed_page_size;
    }
    moveChunk(chunk, pending[c], shift, newPageOffsets);
    meta.total_compressed_size = BigInt(groupStart + out.offset - newStart);
    meta.total_uncompressed_size = BigInt(uncompressed);
    for (const s of meta.encoding_stats ?? []) if (s.page_type === 'DATA_PAGE_V2') s.page_type = 'DATA_PAGE';
  }
  group.total_compressed_size = BigInt(out.offset);
  // Put the converted row group back where it was.
  writer.index = groupStart - flushed;
  writer.offset = groupStart;
  writer.appendBytes(out.getBytes());
}

/** Shift a chunk's offsets (and its page locations) to where it now starts; converted pages take their new places. */
function moveChunk(chunk: ChunkMeta, pending: PendingIndex | undefined, shift: bigint, pages: Map<bigint, { offset: bigint; size: number }> | null): void {
  const meta = chunk.meta_data!;
  const oldDataOffset = meta.data_page_offset;
  chunk.file_offset += shift;
  meta.data_page_offset = pages?.get(oldDataOffset)?.offset ?? oldDataOffset + shift;
  if (meta.dictionary_page_offset !== undefined) meta.dictionary_page_offset += shift;
  for (const loc of pending?.offsetIndex?.page_locations ?? []) {
    const moved = pages?.get(loc.offset);
    if (moved) {
      loc.offset = moved.offset;
      loc.compressed_page_size = moved.size;
    } else loc.offset += shift;
  }
}
