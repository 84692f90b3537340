import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Field, Float32, Int64, List, Schema, Utf8 } from 'apache-arrow';
import { DuckDBInstance } from '@duckdb/node-api';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { parquetHeader } from 'hyparquet/src/column.js';
import { encodeRows, streamRows } from '../../src/shards/parquet.ts';

// A table with two list columns (one with nulls and rows of different lengths) between flat columns.
const schema = new Schema([
  new Field('pair_id', new Utf8(), false),
  new Field('box', new List(new Field('element', new Float32(), true)), true),
  new Field('n', new Int64(), false),
  new Field('points', new List(new Field('element', new Float32(), true)), true),
]);
function rows(count: number) {
  return Array.from({ length: count }, (_, i) => ({
    pair_id: `p${i}`,
    box: i % 7 === 3 ? null : [i, i + 0.5, i + 1, i + 2],
    n: i,
    points: i % 5 === 0 ? [] : Array.from({ length: 40 + (i % 3) }, (_, k) => k * 1000 + (i % 977)),
  }));
}

const dir = await mkdtemp(join(tmpdir(), 'pairgen-v1pages-'));
test.after(() => rm(dir, { recursive: true, force: true }));

/** Every page header of every chunk of a file: [column path, page type][]. */
function pageTypes(bytes: Uint8Array): [string, string][] {
  const meta = parquetMetadata(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
  const out: [string, string][] = [];
  for (const rg of meta.row_groups) {
    for (const c of rg.columns) {
      const m = c.meta_data!;
      let pos = Number(m.dictionary_page_offset ?? m.data_page_offset);
      const end = Number(c.file_offset) + Number(m.total_compressed_size);
      assert.equal(pos, Number(c.file_offset), `${m.path_in_schema.join('.')}: the chunk starts at its first page`);
      while (pos < end) {
        const reader = { view: new DataView(bytes.buffer, bytes.byteOffset + pos), offset: 0 };
        const h = parquetHeader(reader);
        out.push([m.path_in_schema.join('.'), h.type]);
        pos += reader.offset + h.compressed_page_size;
      }
      assert.equal(pos, end, `${m.path_in_schema.join('.')}: pages fill the chunk exactly`);
    }
  }
  return out;
}

async function duckRows(file: string) {
  const inst = await DuckDBInstance.create(':memory:');
  const con = await inst.connect();
  try {
    return (await con.runAndReadAll(`SELECT pair_id, box, n, points FROM read_parquet('${file}') ORDER BY n`)).getRowObjectsJson();
  } finally {
    con.closeSync();
    inst.closeSync();
  }
}

test('list columns are written as v1 data pages, flat columns stay v2, pair_id has a bloom filter, and every reader reads the same values', async () => {
  // 30,000 rows in groups of 12,000: list chunks span several 1 MiB pages, so page locations move too.
  const data = rows(30_000);
  const bytes = encodeRows(data, { schema, kind: 'manifest', rowGroupRows: 12_000 });
  const types = pageTypes(bytes);
  const pointPages = types.filter(([p, t]) => p.startsWith('points') && t === 'DATA_PAGE').length;
  assert.ok(pointPages > 3, `a list chunk spans several pages (${pointPages} pages in 3 row groups)`);
  for (const [path, type] of types) {
    if (path === 'pair_id' || path === 'n') assert.ok(type === 'DATA_PAGE_V2' || type === 'DICTIONARY_PAGE', `${path}: ${type}`);
    else assert.ok(type === 'DATA_PAGE' || type === 'DICTIONARY_PAGE', `${path}: ${type}`);
  }
  const file = join(dir, 'lists.parquet');
  await writeFile(file, bytes);
  const expected = data.map((r) => ({ ...r, n: String(r.n) }));
  assert.deepEqual(await duckRows(file), expected);

  // pair_id lookups: a bloom filter per row group rules out the groups that cannot hold the id.
  const inst = await DuckDBInstance.create(':memory:');
  const con = await inst.connect();
  const probe = (await con.runAndReadAll(`SELECT row_group_id, bloom_filter_excludes FROM parquet_bloom_probe('${file}', 'pair_id', 'p20001') ORDER BY 1`)).getRowObjectsJson();
  con.closeSync();
  inst.closeSync();
  assert.deepEqual(probe.map((r) => r.bloom_filter_excludes), [true, false, true], 'only the row group holding p20001 may hold it');

  // hyparquet with a row range: it seeks pages through the offset index, so moved page locations must be right.
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const some = await parquetReadObjects({ file: ab, rowStart: 17_990, rowEnd: 18_010 });
  assert.deepEqual(some.map((r) => ({ ...r, n: Number(r.n) })), data.slice(17_990, 18_010));
});

test('the streaming writer converts each row group before it leaves, with the same bytes as the in-memory writer', async () => {
  const data = rows(5_000);
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on('data', (c: Buffer) => chunks.push(c));
  await streamRows(sink, (async function* () {
    yield* data;
  })(), { schema, kind: 'manifest', rowGroupRows: 1_000 });
  const streamed = new Uint8Array(Buffer.concat(chunks));
  assert.ok(chunks.length >= 5, `${chunks.length} writes: one per row group and the footer`);
  assert.ok(Buffer.from(streamed).equals(Buffer.from(encodeRows(data, { schema, kind: 'manifest', rowGroupRows: 1_000 }))), 'streamed bytes equal the in-memory bytes');
  const file = join(dir, 'streamed.parquet');
  await writeFile(file, streamed);
  assert.deepEqual(await duckRows(file), data.map((r) => ({ ...r, n: String(r.n) })));
  assert.ok(pageTypes(streamed).every(([p, t]) => (p === 'pair_id' || p === 'n') === (t !== 'DATA_PAGE')));
});
