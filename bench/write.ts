/**
 * Shard write benchmark: 1,000 pairs of 512x512 JPEGs (crops of the face-api demo photos, with noise,
 * the edited image tinted), written as 4 shards of 250 accepted pairs (a data file per split, as
 * data/<split>-NNNNN-of-MMMMM.parquet, + a rejects file and a marker each).
 *
 *   node --import tsx bench/write.ts [--pairs 1000] [--repeat 5]
 *
 * Measures, in one run on the same images:
 *   encode   the floor: sharp JPEG encoding of the 2,000 images (encodeImage, q95 4:4:4)
 *   write    encodeShard per split + encodeRejects + buildMarker (sha256) + store.put of the files, marker last,
 *            on a local store and on S3 (s3rver on loopback, test/helpers/s3server.ts)
 *   duckdb   the same records into DuckDB (appender) and COPY ... TO parquet with the same KV metadata
 * and writes bench/results/write.json and write.md.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataType, type Field } from 'apache-arrow';
import { DuckDBInstance, blobValue, listValue, structValue, type DuckDBValue } from '@duckdb/node-api';
import sharp from 'sharp';
import { openStore, type Store } from '../src/store/index.ts';
import { startS3Server } from '../test/helpers/s3server.ts';
import {
  buildMarker, encodeImage, encodeRejects, encodeShard, huggingfaceMetadata, markerJson, pairSchema, toPairRecord,
  type PairRecord,
} from '../src/shards/index.ts';
import type { CandidateSpec, IdentityVerdict, StageInfo } from '../src/types.ts';
import { shardKeys } from '../src/dataset/layout.ts';
import { splitOf, SPLIT_NAMES } from '../src/dataset/splits.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const PAIRS = arg('pairs', 1000);
const REPEAT = arg('repeat', 5);
const PER_SHARD = 250;
const SIZE = 512;
const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const demo = dirname(require.resolve('@vladmandic/face-api/package.json')) + '/demo';

/** Deterministic raw RGB crops: photo i % 6, resized and cropped at an offset from i, plus noise. */
async function rawPair(i: number): Promise<{ source: Uint8Array; edited: Uint8Array }> {
  const photo = `${demo}/sample${(i % 6) + 1}.jpg`;
  const scale = 800 + ((i * 37) % 300);
  const left = (i * 53) % (scale - SIZE);
  const top = (i * 29) % Math.max(1, Math.floor(scale * 0.66) - SIZE);
  const base = sharp(photo).resize({ width: scale }).extract({ left, top, width: SIZE, height: SIZE }).removeAlpha();
  const source = new Uint8Array(await base.clone().raw().toBuffer());
  const edited = new Uint8Array(await base.clone().modulate({ hue: 40 + (i % 90), saturation: 1.2 }).raw().toBuffer());
  let s = (i + 1) * 2654435761 >>> 0;
  for (const img of [source, edited]) {
    for (let k = 0; k < img.length; k++) {
      s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
      img[k] = Math.max(0, Math.min(255, img[k] + (s & 7) - 3));
    }
  }
  return { source, edited };
}

const teacher: StageInfo = { name: 'diffusers:tiny-sd', modelDigest: 'a'.repeat(64), settings: { scheduler: 'euler', steps: 30, guidance: 7.5, width: SIZE, height: SIZE } };
const identity: StageInfo = { name: 'faceres+blazeface', modelDigest: 'b'.repeat(64), settings: { detector: 'blazeface-back' } };

function record(i: number, images: { source: Uint8Array; edited: Uint8Array } | null): PairRecord {
  const accepted = images !== null;
  const spec: CandidateSpec = {
    pairId: `pair-${i.toString(16).padStart(8, '0')}`, index: i, seed: 1e12 + i * 7919, promptId: `p-${i % 97}`, sampleIndex: i % 3,
    category: ['hair', 'expression', 'style', 'age'][i % 4], sourcePrompt: `a studio portrait photo of person ${i % 97}, soft light`,
    instruction: 'make the hair bright red', targetPrompt: `a studio portrait photo of person ${i % 97} with bright red hair`,
    identityThreshold: 0.6, attributes: { edit: 'hair_color' },
  };
  const face = { box: [148.5, 112.25, 361, 398.75] as [number, number, number, number], score: 0.99, keypoints: [[201, 231], [305, 229], [254, 286], [212, 336], [296, 335]] as [number, number][] };
  const verdict: IdentityVerdict = {
    similarity: accepted ? 0.85 : 0.3, sourceFaces: 1, editedFaces: 1, sourceFace: face, editedFace: face, threshold: 0.6,
    accepted, rejectReason: accepted ? null : 'identity_below_threshold',
  };
  return toPairRecord({ spec, runId: 'bench', shard: Math.floor(i / PER_SHARD), split: splitOf(spec.pairId), teacher, identity, codeVersion: 'bench', verdict, width: SIZE, height: SIZE, imageFormat: 'jpeg', images });
}

/**
 * The product write path for one shard (src/dataset/commit.ts writeShard, which needs a whole run plan):
 * a data file per split that has pairs and the rejects file, in parallel, then the marker last.
 */
async function writeShard(store: Store, shard: number, shards: number, accepted: PairRecord[], rejected: PairRecord[]): Promise<number> {
  const names = shardKeys(shard, shards);
  const files: { name: string; bytes: Uint8Array; rows: number }[] = [];
  for (const split of SPLIT_NAMES) {
    const rows = accepted.filter((r) => r.split === split);
    if (rows.length) files.push({ name: names.data[split], bytes: encodeShard(rows), rows: rows.length });
  }
  files.push({ name: names.rejects, bytes: encodeRejects(rejected), rows: rejected.length });
  await Promise.all(files.map((f) => store.put(f.name, f.bytes)));
  const marker = buildMarker({
    shard, runId: 'bench', codeVersion: 'bench', files,
    counts: { candidates: accepted.length + rejected.length, accepted: accepted.length, rejected: rejected.length },
  });
  await store.put(names.marker, markerJson(marker));
  return files.reduce((n, f) => n + f.bytes.length, 0);
}

/** Median wall and CPU ms of writing every shard to `store`, after one untimed round. */
async function timeWrites(store: Store, shards: PairRecord[][], rejects: PairRecord[]): Promise<{ wall: number[]; cpu: number[]; bytes: number }> {
  const wall: number[] = [];
  const cpu: number[] = [];
  let bytes = 0;
  for (let r = -1; r < REPEAT; r++) {
    const t0 = performance.now();
    const c0 = cpuMs();
    bytes = 0;
    for (const [s, recs] of shards.entries()) bytes += await writeShard(store, s, shards.length, recs, rejects.filter((_, k) => k % shards.length === s));
    if (r >= 0) {
      wall.push(performance.now() - t0);
      cpu.push(cpuMs() - c0);
    }
  }
  return { wall, cpu, bytes };
}

function duckType(f: Field<DataType>): string {
  const t = f.type;
  if (DataType.isUtf8(t)) return 'VARCHAR';
  if (DataType.isBinary(t)) return 'BLOB';
  if (DataType.isBool(t)) return 'BOOLEAN';
  if (DataType.isInt(t)) return t.bitWidth === 64 ? 'BIGINT' : 'INTEGER';
  if (DataType.isFloat(t)) return t.precision === 2 ? 'DOUBLE' : 'FLOAT';
  if (DataType.isStruct(t)) return `STRUCT(${t.children.map((c) => `"${c.name}" ${duckType(c)}`).join(', ')})`;
  if (DataType.isList(t)) return `${duckType(t.children[0])}[]`;
  throw new Error(String(t));
}

function duckValue(f: Field<DataType>, v: unknown): DuckDBValue {
  if (v === null || v === undefined) return null;
  const t = f.type;
  if (DataType.isStruct(t)) {
    const o = v as Record<string, unknown>;
    return structValue(Object.fromEntries(t.children.map((c) => [c.name, duckValue(c, o[c.name])])));
  }
  if (DataType.isBinary(t)) return blobValue(v as Uint8Array);
  if (DataType.isList(t)) return listValue((v as number[]).map((x) => x));
  if (DataType.isInt(t) && t.bitWidth === 64) return BigInt(v as number);
  if (typeof v === 'object') return JSON.stringify(v);
  return v as DuckDBValue;
}

async function duckWrite(root: string, shards: PairRecord[][]): Promise<number> {
  const inst = await DuckDBInstance.create(':memory:', { threads: '2' });
  const con = await inst.connect();
  const kv = huggingfaceMetadata(pairSchema).replace(/'/g, "''");
  let bytes = 0;
  try {
    for (const [shard, recs] of shards.entries()) {
      await con.run('DROP TABLE IF EXISTS t');
      await con.run(`CREATE TABLE t (${pairSchema.fields.map((f) => `"${f.name}" ${duckType(f)}`).join(', ')})`);
      const app = await con.createAppender('t');
      for (const r of recs) {
        for (const f of pairSchema.fields) app.appendValue(duckValue(f, (r as unknown as Record<string, unknown>)[f.name]));
        app.endRow();
      }
      app.closeSync();
      const file = join(root, `duck-${shard}.parquet`);
      await con.run(`COPY t TO '${file}' (FORMAT parquet, ROW_GROUP_SIZE 300, KV_METADATA {huggingface: '${kv}'})`);
      bytes += (await import('node:fs')).statSync(file).size;
    }
  } finally {
    con.closeSync();
    inst.closeSync();
  }
  return bytes;
}

/** CPU time of this process, all threads (sharp's and DuckDB's included): steadier than wall time on a shared machine. */
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'pairgen-bench-write-'));
  try {
    let encodeMs = 0;
    let encodeCpu = 0;
    const records: PairRecord[] = [];
    let imageBytes = 0;
    for (let i = 0; i < PAIRS; i++) {
      const raw = await rawPair(i);
      const t0 = performance.now();
      const c0 = cpuMs();
      const source = await encodeImage({ width: SIZE, height: SIZE, data: raw.source }, { format: 'jpeg' });
      const edited = await encodeImage({ width: SIZE, height: SIZE, data: raw.edited }, { format: 'jpeg' });
      encodeMs += performance.now() - t0;
      encodeCpu += cpuMs() - c0;
      imageBytes += source.length + edited.length;
      records.push(record(i, { source, edited }));
    }
    // One reject per 10 candidates, as metadata only (no images kept).
    const rejects = Array.from({ length: Math.floor(PAIRS / 10) }, (_, k) => record(PAIRS + k, null));
    const shards: PairRecord[][] = [];
    for (let s = 0; s * PER_SHARD < PAIRS; s++) shards.push(records.slice(s * PER_SHARD, (s + 1) * PER_SHARD));

    // One untimed round of each writer first: JIT warm-up, DuckDB start-up, page cache.
    const local = await timeWrites(openStore(join(root, 'local')), shards, rejects);
    const s3server = await startS3Server();
    Object.assign(process.env, s3server.env);
    let s3: Awaited<ReturnType<typeof timeWrites>>;
    try {
      s3 = await timeWrites(openStore(`s3://${s3server.bucket}/bench`), shards, rejects);
    } finally {
      await s3server.stop();
    }
    const writeRuns = local.wall;
    const writeCpu = local.cpu;
    const written = local.bytes;
    const duckRuns: number[] = [];
    const duckCpu: number[] = [];
    let duckBytes = 0;
    for (let r = -1; r < REPEAT; r++) {
      const t0 = performance.now();
      const c0 = cpuMs();
      duckBytes = await duckWrite(root, shards);
      if (r >= 0) duckRuns.push(performance.now() - t0);
      if (r >= 0) duckCpu.push(cpuMs() - c0);
    }
    const writeMs = median(writeRuns);
    const duckMs = median(duckRuns);
    const result = {
      date: new Date().toISOString(),
      machine: { cpus: (await import('node:os')).cpus().length, node: process.version, note: 'shared 2-core machine; other jobs were running' },
      pairs: PAIRS, shards: shards.length, image: `${SIZE}x${SIZE} jpeg q95 4:4:4`, image_mb: +(imageBytes / 1e6).toFixed(1),
      encode_floor_ms: Math.round(encodeMs),
      encode_floor_cpu_ms: Math.round(encodeCpu),
      hyparquet_write_ms: { median: Math.round(writeMs), runs: writeRuns.map(Math.round) },
      hyparquet_overhead_vs_encode: +(writeMs / encodeMs).toFixed(3),
      hyparquet_write_cpu_ms: Math.round(median(writeCpu)),
      hyparquet_cpu_overhead_vs_encode: +(median(writeCpu) / encodeCpu).toFixed(3),
      hyparquet_file_mb: +(written / 1e6).toFixed(1),
      s3_write_ms: { median: Math.round(median(s3.wall)), runs: s3.wall.map(Math.round) },
      s3_overhead_vs_encode: +(median(s3.wall) / encodeMs).toFixed(3),
      s3_write_cpu_ms: Math.round(median(s3.cpu)),
      duckdb_write_ms: { median: Math.round(duckMs), runs: duckRuns.map(Math.round) },
      duckdb_overhead_vs_encode: +(duckMs / encodeMs).toFixed(3),
      duckdb_write_cpu_ms: Math.round(median(duckCpu)),
      duckdb_cpu_overhead_vs_encode: +(median(duckCpu) / encodeCpu).toFixed(3),
      duckdb_file_mb: +(duckBytes / 1e6).toFixed(1),
      command: 'node --import tsx bench/write.ts',
    };
    await mkdir(join(here, 'results'), { recursive: true });
    await writeFile(join(here, 'results', 'write.json'), JSON.stringify(result, null, 2) + '\n');
    const md = [
      '# bench/write.ts',
      '',
      `${PAIRS} pairs of ${result.image} (${result.image_mb} MB of images), ${shards.length} shards; ${result.date}; ${result.machine.note}.`,
      '',
      `| step | wall ms (median of ${REPEAT}) | vs encode | CPU ms (all threads) | vs encode |`,
      '| --- | --- | --- | --- | --- |',
      `| sharp encode of ${2 * PAIRS} images (floor) | ${result.encode_floor_ms} | 100% | ${result.encode_floor_cpu_ms} | 100% |`,
      `| pairgen write path (hyparquet-writer shards + rejects + markers) to a local store | ${result.hyparquet_write_ms.median} | ${(100 * result.hyparquet_overhead_vs_encode).toFixed(1)}% | ${result.hyparquet_write_cpu_ms} | ${(100 * result.hyparquet_cpu_overhead_vs_encode).toFixed(1)}% |`,
      `| the same write path to S3 (s3rver on loopback, its disk writes included) | ${result.s3_write_ms.median} | ${(100 * result.s3_overhead_vs_encode).toFixed(1)}% | ${result.s3_write_cpu_ms} | — |`,
      `| DuckDB appender + COPY TO parquet (same rows, same metadata) | ${result.duckdb_write_ms.median} | ${(100 * result.duckdb_overhead_vs_encode).toFixed(1)}% | ${result.duckdb_write_cpu_ms} | ${(100 * result.duckdb_cpu_overhead_vs_encode).toFixed(1)}% |`,
      '',
    ].join('\n');
    await writeFile(join(here, 'results', 'write.md'), md);
    console.log(md);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

await main();
