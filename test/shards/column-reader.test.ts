import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Field, Float32, Float64, Int32, Int64, List, Schema, Utf8, Bool } from 'apache-arrow';
import { parquetMetadata, parquetRead } from 'hyparquet';
import { encodeRows } from '../../src/shards/parquet.ts';
import { readColumns } from '../../src/shards/column-reader.ts';

// The column reader against hyparquet's own parquetRead, on files of pairgen's writer (v2 pages, v1
// list pages, dictionary and plain pages, several row groups) with every shape and kind of null.
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return s / 4294967296;
  };
}

const schema = new Schema([
  new Field('id', new Int64(), false),
  new Field('n', new Int32(), true),
  new Field('x', new Float64(), true),
  new Field('flag', new Bool(), true),
  new Field('label', new Utf8(), true),
  new Field('name', new Utf8(), false),
  new Field('box', new List(new Field('element', new Float32(), true)), true),
]);

function rows(count: number, rand: () => number): object[] {
  const labels = ['a', 'b', 'é中', ''];
  return Array.from({ length: count }, (_, i) => {
    const maybe = <T>(v: T) => (rand() < 0.2 ? null : v);
    const listKind = rand();
    return {
      id: i * 7,
      n: maybe(Math.floor(rand() * 5)),
      x: maybe(rand() < 0.5 ? 0.25 : rand()),
      flag: maybe(rand() < 0.5),
      label: maybe(labels[Math.floor(rand() * labels.length)]),
      name: `row-${Math.floor(rand() * 1e9)}`,
      box: listKind < 0.15 ? null : listKind < 0.25 ? [] : Array.from({ length: 1 + Math.floor(rand() * 4) }, () => (rand() < 0.1 ? null : Math.fround(rand() < 0.5 ? 1.5 : rand()))),
    };
  });
}

async function generic(buffer: ArrayBuffer, names: string[]): Promise<unknown[][]> {
  const metadata = parquetMetadata(buffer);
  const out = names.map(() => new Array<unknown>(Number(metadata.num_rows)));
  await parquetRead({
    file: buffer,
    metadata,
    columns: names,
    onChunk: ({ columnName, columnData, rowStart }) => {
      for (let i = 0; i < columnData.length; i++) out[names.indexOf(columnName)][rowStart + i] = columnData[i];
    },
  });
  return out;
}

test('readColumns gives parquetRead\'s values for every shape: nulls, empty and null lists, null elements, dictionaries, several row groups, several pages a chunk', async () => {
  const rand = random(3);
  const names = schema.fields.map((f) => f.name);
  for (const [count, rowGroupRows] of [[1, 10], [37, 10], [1000, 1000], [2500, 700], [20000, 20000], [90000, 90000]] as const) {
    const bytes = encodeRows(rows(count, rand), { schema, kind: 'rejects', rowGroupRows });
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    const metadata = parquetMetadata(buffer);
    const expected = await generic(buffer, names);
    const actual = await readColumns(buffer, metadata, names);
    // Null and undefined are the same to the manifest's writer; compare them as null.
    const norm = (cols: unknown[][]) => JSON.parse(JSON.stringify(cols, (_, v) => (typeof v === 'bigint' ? `${v}n` : v === undefined ? null : v)));
    assert.deepEqual(norm(actual), norm(expected), `${count} rows in groups of ${rowGroupRows}`);
  }
});
