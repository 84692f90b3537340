/**
 * One row group written as hyparquet-writer's `ParquetWriter.write` writes it, faster: the levels of
 * each column are computed here instead of by its general Dremel walk (`encodeNestedValues`, a
 * recursive call per value and a quarter of the manifest's encoding time on list columns), and each
 * column chunk goes to parquet-column.ts's specialised writer, or to hyparquet-writer's own
 * `writeColumn` for a column that one does not handle.
 *
 * pairgen's bulk columns have two shapes: a flat OPTIONAL or REQUIRED primitive, and an OPTIONAL
 * three-level list of OPTIONAL primitives (`<name> LIST → repeated list → element`); others are refused.
 * The file is the same bytes as ParquetWriter.write gives: test/shards/parquet-column.test.ts checks
 * that on hundreds of random files.
 */
import type { ColumnSource, ParquetWriter, SchemaElement } from 'hyparquet-writer';
import { writeColumn } from 'hyparquet-writer/src/column.js';
import { writeColumnFast, type PageData } from './parquet-column.ts';

/** A top-level column's leaf: its schema path from the root, and how its levels are made. */
export interface Leaf {
  path: SchemaElement[];
  shape: 'required' | 'optional' | 'list';
}

/** Each top-level column's leaf, or an error naming a column of another shape. */
function leavesOf(schema: SchemaElement[]): Map<string, Leaf> {
  const leaves = new Map<string, Leaf>();
  let i = 1;
  while (i < schema.length) {
    const top = schema[i];
    if (!top.num_children) {
      leaves.set(top.name, { path: [schema[0], top], shape: top.repetition_type === 'REQUIRED' ? 'required' : 'optional' });
      i += 1;
      continue;
    }
    const list = schema[i + 1];
    const element = schema[i + 2];
    const isList = top.converted_type === 'LIST' && top.repetition_type === 'OPTIONAL' && top.num_children === 1
      && list?.repetition_type === 'REPEATED' && list.num_children === 1 && element && !element.num_children && element.repetition_type === 'OPTIONAL';
    if (!isList) throw new Error(`parquet-row-group: column ${top.name} is neither a flat column nor a list of optional primitives`);
    leaves.set(top.name, { path: [schema[0], top, list, element], shape: 'list' });
    i += 3;
  }
  return leaves;
}

function pageData(leaf: Leaf, rows: unknown[]): PageData {
  if (leaf.shape === 'required') return { values: rows, definitionLevels: [], repetitionLevels: [], maxDefinitionLevel: 0 };
  if (leaf.shape === 'optional') {
    const definitionLevels = new Uint8Array(rows.length);
    for (let i = 0; i < rows.length; i++) definitionLevels[i] = rows[i] === null || rows[i] === undefined ? 0 : 1;
    return { values: rows, definitionLevels, repetitionLevels: [], maxDefinitionLevel: 1 };
  }
  // OPTIONAL list (def 1 when present) → REPEATED list (def 2 per element) → OPTIONAL element (def 3 when set).
  // A null row and an empty list each take one slot with no value, as the Dremel walk writes them.
  // Sized first and filled by index: pushing into growing arrays was ten times slower.
  let slots = 0;
  for (const row of rows) {
    if (row === null || row === undefined) slots++;
    else if (!Array.isArray(row)) throw new Error(`parquet-row-group: a list column holds ${typeof row}, expected an array`);
    else slots += row.length || 1;
  }
  // A slot without a value stays a hole (read as undefined, as the walk's null): assigning undefined would
  // turn an array of unboxed numbers into one of boxed values.
  const values = new Array<unknown>(slots);
  const definitionLevels = new Uint8Array(slots);
  const repetitionLevels = new Uint8Array(slots);
  let j = 0;
  for (const row of rows) {
    if (row === null || row === undefined) {
      j++; // levels 0, 0
    } else if ((row as unknown[]).length === 0) {
      definitionLevels[j++] = 1;
    } else {
      const list = row as unknown[];
      for (let k = 0; k < list.length; k++) {
        const v = list[k];
        if (v === null || v === undefined) definitionLevels[j] = 2;
        else {
          values[j] = v;
          definitionLevels[j] = 3;
        }
        repetitionLevels[j++] = k === 0 ? 0 : 1;
      }
    }
  }
  return { values, definitionLevels, repetitionLevels, maxDefinitionLevel: 3 };
}

const leafCache = new WeakMap<SchemaElement[], Map<string, Leaf>>();

/** Each top-level column's leaf (its schema path from the root, and how its levels are made), by name. */
export function schemaLeaves(schema: SchemaElement[]): Map<string, Leaf> {
  let leaves = leafCache.get(schema);
  if (!leaves) leafCache.set(schema, (leaves = leavesOf(schema)));
  return leaves;
}

/**
 * Write one column chunk of `pq`'s schema at its writer's current offset, as ParquetWriter.write writes
 * each chunk of a row group, and return the chunk's metadata and page indexes (the caller registers them).
 */
export function writeColumnChunk(pq: ParquetWriter, source: ColumnSource): ReturnType<typeof writeColumn> {
  const leaves = schemaLeaves(pq.schema);
  const { name, data, encoding, codec = pq.codec, columnIndex = false, offsetIndex = true, bloomFilter, statistics = pq.statistics } = source;
  if (columnIndex && !offsetIndex) throw new Error('parquet ColumnIndex cannot be present without OffsetIndex');
  const leaf = leaves.get(name);
  if (!leaf) throw new Error(`parquet-row-group: no column ${name} in the schema`);
  const column = {
    columnName: leaf.path.slice(1).map((s) => s.name).join('.'),
    element: leaf.path[leaf.path.length - 1],
    schemaPath: leaf.path,
    codec,
    compressors: pq.compressors,
    stats: statistics,
    statisticsTruncateLength: pq.statisticsTruncateLength,
    pageSize: 1048576,
    dictionarySize: undefined,
    columnIndex,
    offsetIndex,
    encoding,
    bloomFilter,
  };
  const args = { writer: pq.writer, column, pageData: pageData(leaf, data as unknown[]) } as Parameters<typeof writeColumn>[0];
  return writeColumnFast(args as never) ?? writeColumn(args);
}

/**
 * Write `columnData` (all of equal length) as one row group of `pq`, exactly as
  * `pq.write({ columnData, rowGroupSize: rows })` would (nothing for no rows), then call the writer's flush hook and return what
 * it returns. Page size and dictionary size are hyparquet-writer's defaults.
 */
export function writeRowGroup(pq: ParquetWriter, columnData: ColumnSource[]): void | Promise<void> {
  const rows = columnData[0]?.data.length ?? 0;
  if (rows === 0) return; // as ParquetWriter.write: no rows, no row group
  const groupStart = pq.writer.offset;
  const columns: ParquetWriter['row_groups'][number]['columns'] = [];
  for (const source of columnData) {
    if (source.data.length !== rows) throw new Error('parquet columns must have the same length');
    const result = writeColumnChunk(pq, source);
    columns.push(result.chunk);
    pq.pendingIndexes.push(result);
  }
  let totalByteSize = 0n;
  for (const { meta_data } of columns) totalByteSize += meta_data?.total_uncompressed_size ?? 0n;
  pq.num_rows += BigInt(rows);
  pq.row_groups.push({ columns, total_byte_size: totalByteSize, num_rows: BigInt(rows), total_compressed_size: BigInt(pq.writer.offset - groupStart) });
  return pq.writer.flush?.();
}
