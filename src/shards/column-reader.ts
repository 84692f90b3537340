/**
 * Whole columns of a pairgen Parquet file, read page by page with hyparquet's page decoders, for the
 * manifest's bulk path (manifest-group.ts). The values are those `parquetRead` gives (hyparquet's own
 * conversion, dictionary and decompression); only the rows are put together here.
 *
 * Why by hand: hyparquet assembles every column, flat ones included, with its general Dremel walk
 * (`assembleLists`), which was the largest single cost of finalize's reading at 10M rows. pairgen's
 * columns have three shapes (flat REQUIRED, flat OPTIONAL, OPTIONAL list of OPTIONAL elements), and each
 * is a short loop over its levels. A file with any other shape is read by parquetRead as before.
 */
import { parquetRead, parquetSchema, type AsyncBuffer, type FileMetaData } from 'hyparquet';
import { parquetHeader, readPage } from 'hyparquet/src/column.js';
import { convert, convertWithDictionary, DEFAULT_PARSERS } from 'hyparquet/src/convert.js';
import { decompressPage, readDataPage, readDataPageV2 } from 'hyparquet/src/datapage.js';
import { getTreePath } from 'hyparquet/src/schema.js';

type Shape = 'required' | 'optional' | 'list';
type Decoder = Parameters<typeof readPage>[2];

/** The shape of a column from its schema path (root first), or null for a shape this reader does not handle. */
function shapeOf(path: { element: { repetition_type?: string; converted_type?: string; num_children?: number } }[]): Shape | null {
  const [, top, list, element] = path.map((p) => p.element);
  if (path.length === 2) return top.repetition_type === 'REQUIRED' ? 'required' : top.repetition_type === 'OPTIONAL' ? 'optional' : null;
  const isList = path.length === 4 && top.repetition_type === 'OPTIONAL' && list.repetition_type === 'REPEATED' && element.repetition_type === 'OPTIONAL' && !element.num_children;
  return isList ? 'list' : null;
}

/** Each named column's values in row order (nulls as null, lists as arrays), every row group of the file. */
export async function readColumns(file: AsyncBuffer, metadata: FileMetaData, names: string[]): Promise<unknown[][]> {
  const tree = parquetSchema(metadata);
  const rows = Number(metadata.num_rows);
  const shapes = names.map((name) => {
    // Down to the leaf through single children (a list's `list` and `element`); a struct stays a group.
    const path = getTreePath(tree, [name]);
    while (path[path.length - 1].children.length === 1) path.push(path[path.length - 1].children[0]);
    return { name, path, shape: path[path.length - 1].children.length ? null : shapeOf(path) };
  });
  if (shapes.some((s) => s.shape === null)) return readColumnsGeneric(file, metadata, names, rows);
  const out = names.map(() => new Array<unknown>(rows));
  let groupStart = 0;
  for (const group of metadata.row_groups) {
    await Promise.all(
      shapes.map(async ({ path, shape }, c) => {
        const pathKey = path.slice(1).map((p) => p.element.name).join('.');
        const chunk = group.columns.find((col) => col.meta_data?.path_in_schema.join('.') === pathKey)?.meta_data;
        if (!chunk) throw new Error(`column ${pathKey} has no chunk in a row group`);
        const start = Number(chunk.dictionary_page_offset ?? chunk.data_page_offset);
        const bytes = await file.slice(start, start + Number(chunk.total_compressed_size));
        const decoder = { pathInSchema: chunk.path_in_schema, element: path[path.length - 1].element, schemaPath: path, ...chunk, parsers: DEFAULT_PARSERS } as unknown as Decoder;
        readChunk(new DataView(bytes), decoder, shape!, out[c], groupStart, Number(group.num_rows));
      }),
    );
    groupStart += Number(group.num_rows);
  }
  return out;
}

/** One column chunk's pages into out[groupStart ..]. */
function readChunk(view: DataView, decoder: Decoder, shape: Shape, out: unknown[], groupStart: number, groupRows: number): void {
  const reader = { view, offset: 0 };
  let dictionary: unknown;
  let row = groupStart; // the next row to fill
  let list: unknown[] | null = null; // the list of the row being filled (list columns)
  while (reader.offset < view.byteLength) {
    const header = parquetHeader(reader);
    if (header.type === 'DICTIONARY_PAGE') {
      const { data } = readPage(reader, header, decoder, undefined, undefined, 0);
      dictionary = data && convert(data, decoder);
      continue;
    }
    const compressed = new Uint8Array(view.buffer, view.byteOffset + reader.offset, header.compressed_page_size);
    reader.offset += header.compressed_page_size;
    let page: { definitionLevels?: ArrayLike<number>; repetitionLevels: ArrayLike<number>; dataPage: unknown };
    let encoding: string;
    if (header.type === 'DATA_PAGE') {
      const body = decompressPage(compressed, Number(header.uncompressed_page_size), decoder.codec, decoder.compressors);
      page = readDataPage(body, header.data_page_header!, decoder);
      encoding = header.data_page_header!.encoding;
    } else if (header.type === 'DATA_PAGE_V2') {
      page = readDataPageV2(compressed, header, decoder);
      encoding = header.data_page_header_v2!.encoding;
    } else throw new Error(`unsupported page type ${header.type}`);
    const values = convertWithDictionary(page.dataPage as never, dictionary as never, encoding as never, decoder) as ArrayLike<unknown>;
    const def = page.definitionLevels;
    if (shape === 'required') {
      for (let i = 0; i < values.length; i++) out[row++] = values[i];
    } else if (shape === 'optional') {
      // hyparquet empties the levels of a page without nulls.
      if (!def!.length) for (let i = 0; i < values.length; i++) out[row++] = values[i];
      else for (let i = 0, v = 0; i < def!.length; i++) out[row++] = def![i] === 1 ? values[v++] : null;
    } else {
      // def 0: null list; 1: empty list; 2: null element; 3: a value. rep 0 starts a row.
      const rep = page.repetitionLevels;
      let v = 0;
      for (let i = 0; i < rep.length; i++) {
        const d = def!.length ? def![i] : 3; // no levels: every slot holds a value
        if (rep[i] === 0) {
          list = d === 0 ? null : [];
          out[row++] = list;
        }
        if (d >= 2) list!.push(d === 3 ? values[v++] : null);
      }
    }
  }
  if (row !== groupStart + groupRows) throw new Error(`column chunk holds ${row - groupStart} rows, its row group ${groupRows}`);
}

/** The same columns through parquetRead (any shape). */
async function readColumnsGeneric(file: AsyncBuffer, metadata: FileMetaData, names: string[], rows: number): Promise<unknown[][]> {
  const out = names.map(() => new Array<unknown>(rows));
  const position = new Map(names.map((name, i) => [name, i]));
  await parquetRead({
    file,
    metadata,
    columns: names,
    onChunk: ({ columnName, columnData, rowStart }) => {
      const col = out[position.get(columnName)!];
      for (let i = 0; i < columnData.length; i++) col[rowStart + i] = columnData[i];
    },
  });
  return out;
}
