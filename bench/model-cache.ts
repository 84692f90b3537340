/**
 * Model cache benchmark (src/models): what a worker pays at start for a model on a store, against
 * s3rver on loopback.
 *
 *   node --import tsx bench/model-cache.ts [--mib 256] [--repeat 3]
 *
 * A model folder of one `mib` MiB weights file plus the tiny-sd fixture's small files is uploaded once.
 * Each step runs in a fresh process (the per-process digest memo would otherwise hide the hashing) and
 * times localModels() only, not the process start:
 *   cold        an empty cache: download every recorded file, verify it, lay out the tree
 *   warm        the same cache again: verify the cached files only (what every later worker start costs)
 *   1 cold, wall        one process on an empty cache, wall time with its start-up
 *   2 at once, wall     two processes filling one empty cache together (the second waits on the locks)
 *   local hash  sha256 of the same files from a local folder (what `work` already paid per start)
 * Median of `repeat`. Writes bench/results/model-cache.json and model-cache.md.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStore } from '../src/store/index.ts';
import { sha256Hex } from '../src/util/digest.ts';
import { startS3Server } from '../test/helpers/s3server.ts';
import { readTree } from '../test/helpers/run-fixture.ts';
import { FIXTURES } from '../test/helpers/fixtures.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const MIB = arg('mib', 256);
const REPEAT = arg('repeat', 3);
const here = dirname(fileURLToPath(import.meta.url));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function payload(n: number): Buffer {
  const out = Buffer.alloc(n);
  let block = createHash('sha256').update('weights').digest();
  for (let i = 0; i < n; i += 32) {
    block.copy(out, i, 0, Math.min(32, n - i));
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/** sha256 of a file as src/util/digest.ts reads it (4 MiB chunks), without its per-process memo. */
async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

// One child: localModels over the recorded files, printing its wall time in ms.
const CHILD = `
import { localModels } from ${JSON.stringify(join(here, '../src/models/index.ts'))};
const { config, recorded } = JSON.parse(process.argv[1]);
const t = performance.now();
await localModels(config, recorded);
process.stdout.write(String(performance.now() - t));
`;

function child(input: unknown, env: Record<string, string>): Promise<number> {
  const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD, JSON.stringify(input)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  return new Promise((res, rej) => p.on('exit', (code) => (code === 0 ? res(Number(out)) : rej(new Error(`child exited ${code}`)))));
}

const s3 = await startS3Server({ processEnv: true });
const work = mkdtempSync(join(tmpdir(), 'pairgen-bench-models-'));
try {
  const folder = join(work, 'model');
  const files = new Map<string, Buffer>([...readTree(join(FIXTURES, 'tiny-sd'))].filter(([rel]) => !rel.endsWith('.onnx')));
  files.set('unet/model.onnx_data', payload(MIB << 20));
  const uri = `s3://${s3.bucket}/models/model`;
  const store = openStore(uri);
  for (const [rel, bytes] of files) {
    await store.put(rel, bytes);
    const path = join(folder, rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, bytes);
  }
  const recorded = [...files].map(([rel, bytes]) => ({ path: `${uri}/${rel}`, size: bytes.length, sha256: sha256Hex(bytes) }));
  const input = { config: { teacher: { model: uri, edit_model: null }, identity: { enabled: false, detector: { kind: 'packaged' }, embedder: { kind: 'packaged' } } }, recorded };
  const totalMb = recorded.reduce((n, f) => n + f.size, 0) / 1e6;

  const runs: Record<string, number[]> = { cold: [], warm: [], '1 cold, wall': [], '2 at once, wall': [], 'local hash': [] };
  for (let r = 0; r < REPEAT; r++) {
    const cache = { ...s3.env, PAIRGEN_MODEL_CACHE: join(work, `cache-${r}`) };
    runs.cold.push(await child(input, cache));
    runs.warm.push(await child(input, cache));
    const alone = { ...s3.env, PAIRGEN_MODEL_CACHE: join(work, `alone-${r}`) };
    const t0 = performance.now();
    await child(input, alone);
    runs['1 cold, wall'].push(performance.now() - t0);
    const shared = { ...s3.env, PAIRGEN_MODEL_CACHE: join(work, `shared-${r}`) };
    const t = performance.now();
    await Promise.all([child(input, shared), child(input, shared)]);
    runs['2 at once, wall'].push(performance.now() - t);
    const t2 = performance.now();
    for (const rel of files.keys()) await hashFile(join(folder, rel));
    runs['local hash'].push(performance.now() - t2);
    rmSync(join(work, `cache-${r}`), { recursive: true, force: true });
    rmSync(join(work, `shared-${r}`), { recursive: true, force: true });
    rmSync(join(work, `alone-${r}`), { recursive: true, force: true });
  }
  const result = {
    bench: 'model-cache',
    date: new Date().toISOString(),
    model_mb: Number(totalMb.toFixed(1)),
    files: recorded.length,
    repeat: REPEAT,
    median_ms: Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, Math.round(median(v))])),
    note: 'shared 2-core machine with other jobs running; s3rver on loopback; each step but local hash in a fresh Node process, timing localModels() only; the two wall steps: until the process(es) exit, start-up included'
  };
  writeFileSync(join(here, 'results/model-cache.json'), JSON.stringify(result, null, 2) + '\n');
  const rows = Object.entries(result.median_ms).map(([k, ms]) => `| ${k} | ${ms} ms | ${(totalMb / (ms / 1000)).toFixed(0)} MB/s |`);
  writeFileSync(
    join(here, 'results/model-cache.md'),
    [
      '# bench/model-cache.ts',
      '',
      `A model of ${recorded.length} files, ${totalMb.toFixed(1)} MB (one ${MIB} MiB weights file), on s3rver on loopback; median of ${REPEAT}; ${result.date}.`,
      'cold / warm run in a fresh Node process and time localModels() only; the two "wall" steps time until the process(es) exit, start-up included; local hash is sha256 of the same files from a local folder. Shared 2-core machine, other jobs running.',
      '',
      '| step | time | model MB per second |',
      '| --- | --- | --- |',
      ...rows,
      '',
    ].join('\n'),
  );
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
} finally {
  rmSync(work, { recursive: true, force: true });
  await s3.stop();
}
