/**
 * Object store benchmark: the local backend and the S3 backend against s3rver on loopback.
 *
 *   node --import tsx bench/store.ts [--objects 64] [--kib 256] [--big-mib 48] [--repeat 3]
 *
 * For each backend: put then get of `objects` objects of `kib` KiB (one at a time, then 8 at a time),
 * a listing of them, and put/get of one `big-mib` MiB object (multipart on S3 with the default 16 MiB
 * threshold). Median of `repeat` runs. Writes bench/results/store.json and store.md.
 * s3rver is a Node server writing to local disk with an MD5 per object: it measures the client path
 * and request overhead, not what S3 or MinIO would sustain.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pLimit from 'p-limit';
import { openStore, type Store } from '../src/store/index.ts';
import { startS3Server } from '../test/helpers/s3server.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const OBJECTS = arg('objects', 64);
const KIB = arg('kib', 256);
const BIG_MIB = arg('big-mib', 48);
const REPEAT = arg('repeat', 3);
const here = dirname(fileURLToPath(import.meta.url));

function payload(n: number, seed: number): Uint8Array {
  // Hash-chained bytes: deterministic and incompressible.
  const out = new Uint8Array(n);
  let block = createHash('sha256').update(String(seed)).digest();
  for (let i = 0; i < n; i += 32) {
    out.set(block.subarray(0, Math.min(32, n - i)), i);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function time(fn: () => Promise<void>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

async function measure(open: (run: number) => Store): Promise<Record<string, number>> {
  const small = Array.from({ length: OBJECTS }, (_, i) => payload(KIB * 1024, i));
  const big = payload(BIG_MIB * 1024 * 1024, 999);
  const runs: Record<string, number[]> = {};
  const add = (k: string, ms: number) => (runs[k] ??= []).push(ms);
  for (let r = 0; r < REPEAT; r++) {
    const store = open(r);
    const limit = pLimit(8);
    add('put x1', await time(async () => { for (let i = 0; i < OBJECTS; i++) await store.put(`a/${i}`, small[i]); }));
    add('get x1', await time(async () => { for (let i = 0; i < OBJECTS; i++) await store.get(`a/${i}`); }));
    add('put x8', await time(async () => { await Promise.all(small.map((b, i) => limit(() => store.put(`b/${i}`, b)))); }));
    add('get x8', await time(async () => { await Promise.all(small.map((_, i) => limit(() => store.get(`b/${i}`)))); }));
    add('list', await time(async () => { let n = 0; for await (const _ of store.list('')) n++; if (n !== 2 * OBJECTS) throw new Error(`listed ${n}`); }));
    add('put big', await time(() => store.put('big.bin', big)));
    add('get big', await time(async () => { if ((await store.get('big.bin')).byteLength !== big.byteLength) throw new Error('short read'); }));
  }
  return Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, Math.round(median(v))]));
}

const tmp = await mkdtemp(join(tmpdir(), 'pairgen-bench-store-'));
const s3 = await startS3Server({ buckets: ['bench'] });
Object.assign(process.env, s3.env);
try {
  const local = await measure((r) => openStore(join(tmp, `run-${r}`)));
  const remote = await measure((r) => openStore(`s3://bench/run-${r}`));
  const smallMB = (OBJECTS * KIB) / 1024;
  const rate = (ms: number, mb: number) => (mb / (ms / 1000)).toFixed(1);
  const rows = Object.keys(local).map((k) => {
    const mb = k.includes('big') ? BIG_MIB : k === 'list' ? 0 : smallMB;
    const cell = (ms: number) => (mb ? `${ms} ms (${rate(ms, mb)} MB/s)` : `${ms} ms`);
    return `| ${k} | ${cell(local[k])} | ${cell(remote[k])} |`;
  });
  const when = new Date().toISOString();
  const result = { when, objects: OBJECTS, kib: KIB, bigMiB: BIG_MIB, repeat: REPEAT, ms: { local, s3rver: remote } };
  await writeFile(join(here, 'results/store.json'), JSON.stringify(result, null, 2) + '\n');
  await writeFile(
    join(here, 'results/store.md'),
    [
      '# bench/store.ts',
      '',
      `${OBJECTS} objects of ${KIB} KiB (x1 = one at a time, x8 = 8 concurrent), a listing of ${2 * OBJECTS} keys, one ${BIG_MIB} MiB object`,
      `(multipart in 16 MiB parts on S3); median of ${REPEAT}; ${when}; shared 2-core machine, other jobs running.`,
      's3rver (Node, local disk, MD5 per object) on loopback: client and request overhead, not S3/MinIO throughput.',
      '',
      '| step | local disk | s3rver on loopback |',
      '| --- | --- | --- |',
      ...rows,
      '',
    ].join('\n'),
  );
  console.log(rows.join('\n'));
} finally {
  await s3.stop();
  await rm(tmp, { recursive: true, force: true });
}
