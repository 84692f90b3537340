/**
 * util/parquet-row-group.ts and util/parquet-column.ts write the same bytes as hyparquet-writer's own
 * ParquetWriter.write: hundreds of seeded random files of every type, shape and setting pairgen uses
 * (and some it does not, which must fall back), each written both ways into a whole file and compared
 * byte for byte.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ByteWriter, ParquetWriter, type ColumnSource, type SchemaElement } from 'hyparquet-writer';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { writeRowGroup } from '../../src/util/parquet-row-group.ts';
import { mulberry32 } from '../helpers/prng.ts';

type Kind = 'utf8' | 'int32' | 'int64' | 'float' | 'double' | 'boolean' | 'bytes';
const KINDS: Kind[] = ['utf8', 'int32', 'int64', 'float', 'double', 'boolean', 'bytes'];

function element(name: string, kind: Kind, repetition: 'OPTIONAL' | 'REQUIRED'): SchemaElement {
  const type = { utf8: 'BYTE_ARRAY', bytes: 'BYTE_ARRAY', int32: 'INT32', int64: 'INT64', float: 'FLOAT', double: 'DOUBLE', boolean: 'BOOLEAN' }[kind];
  return { name, type, repetition_type: repetition, ...(kind === 'utf8' ? { converted_type: 'UTF8' } : {}) } as SchemaElement;
}

/** Strings that exercise UTF-8 order: ASCII, accents, CJK, U+E000.., and surrogate pairs (emoji). */
const ALPHABET = ['a', 'b', 'z', '0', ' ', 'é', 'ß', '中', '\uE000', '\uFFFD', '😀', '𝄞', ''];

function valueMaker(kind: Kind, rand: () => number, distinct: number, long: boolean): () => unknown {
  const pool = Array.from({ length: distinct }, () => {
    switch (kind) {
      case 'utf8': {
        const n = long ? 150 + Math.floor(rand() * 100) : Math.floor(rand() * 12);
        let s = '';
        for (let i = 0; i < n; i++) s += rand() < 0.8 ? String.fromCharCode(97 + Math.floor(rand() * 26)) : ALPHABET[Math.floor(rand() * ALPHABET.length)];
        return s;
      }
      case 'bytes':
        return Uint8Array.from({ length: Math.floor(rand() * 8) }, () => Math.floor(rand() * 256));
      case 'int32':
        return rand() < 0.05 ? [0, -0, 2147483647, -2147483648][Math.floor(rand() * 4)] : Math.floor((rand() - 0.5) * 2e6);
      case 'int64':
        return BigInt(Math.floor((rand() - 0.5) * 2 ** 53));
      case 'float':
        return rand() < 0.05 ? [NaN, -0, 0, Infinity, -Infinity][Math.floor(rand() * 5)] : Math.fround((rand() - 0.5) * 100);
      case 'double':
        return rand() < 0.05 ? [NaN, -0, 0, Infinity, -Infinity][Math.floor(rand() * 5)] : (rand() - 0.5) * 1e6;
      case 'boolean':
        return rand() < 0.7;
    }
  });
  return () => pool[Math.floor(rand() * pool.length)];
}

interface Case {
  schema: SchemaElement[];
  columns: ColumnSource[];
  groups: number[];
  label: string;
}

function makeCase(seed: number): Case {
  const rand = mulberry32(seed);
  const pick = <T,>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
  const rows = pick([0, 1, 7, 17, 100, 1000, 3000]);
  const schema: SchemaElement[] = [{ name: 'root', num_children: 0 }];
  const columns: ColumnSource[] = [];
  const ncols = 1 + Math.floor(rand() * 4);
  for (let c = 0; c < ncols; c++) {
    const kind = pick(KINDS);
    const name = `c${c}`;
    const list = rand() < 0.3;
    const required = !list && rand() < 0.25;
    const nullRate = required ? 0 : pick([0, 0.01, 0.3, 0.9, 1]);
    const distinct = pick([1, 2, 5, 50, 1000, 100000]);
    const long = kind === 'utf8' && rand() < 0.15; // pages past 1 MiB
    const next = valueMaker(kind, rand, Math.min(distinct, Math.max(1, rows * 3)), long);
    let data: unknown[];
    if (list) {
      schema.push(
        { name, repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 } as SchemaElement,
        { name: 'list', repetition_type: 'REPEATED', num_children: 1 } as SchemaElement,
        element('element', kind, 'OPTIONAL'),
      );
      data = Array.from({ length: rows }, () => {
        if (rand() < nullRate) return null;
        const n = pick([0, 1, 4, 10]);
        return Array.from({ length: n }, () => (rand() < 0.05 ? null : next()));
      });
    } else {
      schema.push(element(name, kind, required ? 'REQUIRED' : 'OPTIONAL'));
      data = Array.from({ length: rows }, () => (rand() < nullRate ? null : next()));
    }
    columns.push({
      name,
      data,
      columnIndex: rand() < 0.7,
      ...(rand() < 0.2 ? { bloomFilter: true } : {}),
      ...(rand() < 0.3 ? { codec: 'UNCOMPRESSED' as const } : {}),
      ...(rand() < 0.1 ? { statistics: false } : {}),
    });
  }
  schema[0].num_children = ncols;
  const groups = rows > 100 && rand() < 0.3 ? [Math.floor(rows / 3), rows - Math.floor(rows / 3)] : [rows];
  return { schema, columns, groups, label: `seed ${seed}: ${rows} rows, ${columns.map((c, i) => `${c.name}=${JSON.stringify(schema.slice(1).filter((e) => !e.num_children)[i]?.type)}`).join(' ')}` };
}

function slice(columns: ColumnSource[], start: number, end: number): ColumnSource[] {
  return columns.map((c) => ({ ...c, data: (c.data as unknown[]).slice(start, end) }));
}

function writeBoth(k: Case): { theirs: Uint8Array; ours: Uint8Array } {
  const out = (write: (pq: ParquetWriter, cols: ColumnSource[]) => void) => {
    const writer = new ByteWriter();
    const pq = new ParquetWriter({ writer, schema: k.schema });
    let at = 0;
    for (const rows of k.groups) {
      write(pq, slice(k.columns, at, at + rows));
      at += rows;
    }
    pq.finish();
    return writer.getBytes();
  };
  return {
    theirs: out((pq, cols) => void pq.write({ columnData: cols, rowGroupSize: cols[0].data.length || 1 })),
    ours: out((pq, cols) => void writeRowGroup(pq, cols)),
  };
}

test('writeRowGroup writes the same bytes as ParquetWriter.write on 250 random files of up to four columns', () => {
  let compared = 0;
  let multiPage = 0; // column chunks split into several data pages (past 1 MiB of values)
  const rand = mulberry32(99);
  const big: Case = {
    label: 'pages past 1 MiB: unique long strings, a long list column',
    schema: [
      { name: 'root', num_children: 2 },
      element('s', 'utf8', 'OPTIONAL'),
      { name: 'l', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 } as SchemaElement,
      { name: 'list', repetition_type: 'REPEATED', num_children: 1 } as SchemaElement,
      element('element', 'double', 'OPTIONAL'),
    ],
    columns: [
      { name: 's', data: Array.from({ length: 12000 }, (_, i) => (i % 50 ? `${i}:` + 'é😀xyz'.repeat(20 + (i % 7)) : null)), columnIndex: true, bloomFilter: true },
      { name: 'l', data: Array.from({ length: 12000 }, (_, i) => (i % 40 ? Array.from({ length: 12 }, () => rand()) : null)), columnIndex: true },
    ],
    groups: [12000],
  };
  const cases = [big, ...Array.from({ length: 250 }, (_, i) => makeCase(i + 1))];
  for (const k of cases) {
    const { theirs, ours } = writeBoth(k);
    assert.equal(Buffer.compare(Buffer.from(ours), Buffer.from(theirs)), 0, `${k.label}: ${ours.length} vs ${theirs.length} bytes`);
    compared += theirs.length;
    const meta = parquetMetadata(theirs.buffer.slice(theirs.byteOffset, theirs.byteOffset + theirs.byteLength) as ArrayBuffer);
    for (const g of meta.row_groups) for (const c of g.columns) if ((c.meta_data?.encoding_stats ?? []).some((e) => e.page_type === 'DATA_PAGE_V2' && e.count > 1)) multiPage++;
  }
  assert.ok(compared > 1e6 && multiPage >= 2, `compared ${compared} bytes, ${multiPage} column chunks of several pages`);
});

test('a file written by writeRowGroup reads back to its values', async () => {
  for (const seed of [3, 11, 12]) {
    const k = makeCase(seed);
    const { ours } = writeBoth(k);
    const rows = await parquetReadObjects({ file: ours.buffer.slice(ours.byteOffset, ours.byteOffset + ours.byteLength) as ArrayBuffer });
    assert.equal(rows.length, k.groups.reduce((a, b) => a + b, 0), k.label);
    for (const c of k.columns) {
      const read = rows.map((r) => r[c.name]);
      // hyparquet reads a list's null row as null and numbers back as numbers; compare as JSON (NaN and -0 aside).
      const norm = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x instanceof Uint8Array ? [...x] : x));
      assert.equal(norm(read), norm(c.data), `${k.label}: column ${c.name}`);
    }
  }
});

test('writeRowGroup refuses columns of other shapes and unknown names', () => {
  const schema: SchemaElement[] = [
    { name: 'root', num_children: 1 },
    { name: 's', repetition_type: 'OPTIONAL', num_children: 1 } as SchemaElement,
    { name: 'x', type: 'INT32', repetition_type: 'OPTIONAL' } as SchemaElement,
  ];
  assert.throws(() => writeRowGroup(new ParquetWriter({ writer: new ByteWriter(), schema }), [{ name: 's', data: [{ x: 1 }] }]), /neither a flat column nor a list/);
  const flat: SchemaElement[] = [{ name: 'root', num_children: 1 }, { name: 'x', type: 'INT32', repetition_type: 'OPTIONAL' } as SchemaElement];
  assert.throws(() => writeRowGroup(new ParquetWriter({ writer: new ByteWriter(), schema: flat }), [{ name: 'y', data: [1] }]), /no column y/);
});
