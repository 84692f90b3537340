/**
 * One row group of the prompt table, encoded on its own (in a worker thread or inline) and appended
 * to the file afterwards by util/parquet-groups.ts's placeRowGroup, which moves its offsets.
 */
import { ByteWriter, ParquetWriter, type SchemaElement } from 'hyparquet-writer';
import type { EncodedRowGroup } from '../util/parquet-groups.ts';
import { writeRowGroup } from '../util/parquet-row-group.ts';
import { promptId, type RowBatch } from './expand.ts';
import { snappyCompress } from './snappy.ts';

export const STRING_COLUMNS = ['prompt_id', 'prompt_split', 'category', 'source_prompt', 'instruction', 'target_prompt'] as const;

export const SCHEMA: SchemaElement[] = [
  { name: 'root', num_children: STRING_COLUMNS.length + 2 },
  ...STRING_COLUMNS.map((name) => ({ name, type: 'BYTE_ARRAY' as const, converted_type: 'UTF8' as const, repetition_type: 'REQUIRED' as const })),
  { name: 'identity_threshold', type: 'DOUBLE' as const, repetition_type: 'OPTIONAL' as const },
  // JSON text as plain UTF8, as in the shards: readers that know no JSON logical type see a string.
  { name: 'attributes', type: 'BYTE_ARRAY' as const, converted_type: 'UTF8' as const, repetition_type: 'REQUIRED' as const },
];
export const CREATED_BY = 'pairgen';
/** hyparquet-writer's SNAPPY compressor, same bytes, faster (snappy.ts). */
export const COMPRESSORS = { SNAPPY: snappyCompress };
const HEADER_BYTES = 4; // "PAR1"
const BATCH_STRING_COLUMNS = ['prompt_split', 'category', 'source_prompt', 'instruction', 'target_prompt'] as const;

/** Encode a batch of rows (prompt_id computed here) as one row group. */
export function encodeRowGroup(batch: RowBatch): EncodedRowGroup {
  const prompt_id = new Array<string>(batch.rows);
  for (let i = 0; i < batch.rows; i++) prompt_id[i] = promptId(batch.category[i], batch.source_prompt[i], batch.instruction[i], batch.target_prompt[i]);
  const writer = new ByteWriter(1 << 20);
  const pq = new ParquetWriter({ writer, schema: SCHEMA, createdBy: CREATED_BY, compressors: COMPRESSORS });
  void writeRowGroup(pq, [
    { name: 'prompt_id', data: prompt_id },
    ...BATCH_STRING_COLUMNS.map((name) => ({ name, data: batch[name] })),
    { name: 'identity_threshold', data: batch.identity_threshold },
    { name: 'attributes', data: batch.attributes },
  ]);
  // A copy sized to the group, so the worker can transfer it without its 2x-grown buffer.
  const bytes = writer.getBytes().slice(HEADER_BYTES);
  return { rows: batch.rows, bytes, rowGroup: pq.row_groups[0], indexes: pq.pendingIndexes };
}
