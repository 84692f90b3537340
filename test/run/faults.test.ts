/**
 * Storage faults during whole runs: a fault-injecting proxy on loopback between the S3 client and a real
 * S3 server (s3rver). Transient faults are retried and leave the same bytes as a clean run; a shard that
 * keeps failing is recorded as failed, reported by status, and does not stop the worker's other shards.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { planRun } from '../../src/run/plan.ts';
import { workRun } from '../../src/run/work.ts';
import { finalizeRun } from '../../src/run/finalize.ts';
import { formatStatus, runStatus } from '../../src/run/status.ts';
import { readFailure } from '../../src/dataset/failures.ts';
import { failureKey, shardMarkerKey } from '../../src/dataset/layout.ts';
import { openStore } from '../../src/store/index.ts';
import { startS3Server, type S3Server } from '../helpers/s3server.ts';
import { INTERNAL, SLOWDOWN, startFaultProxy, type Fault, type FaultProxy, type ProxyRequest } from '../helpers/fault-proxy.ts';
import { TestScorer, TestTeacher } from '../helpers/test-teacher.ts';
import { BIN, readTree, tempDir, writeConfig } from '../helpers/run-fixture.ts';
import { mulberry32 as prng } from '../helpers/prng.ts';

const inject = { teacherFactory: async () => new TestTeacher(), scorerFactory: async () => new TestScorer() };
let s3: S3Server;
let proxy: FaultProxy;

before(async () => {
  s3 = await startS3Server({ processEnv: true });
  proxy = await startFaultProxy(s3.endpoint);
  process.env.AWS_ENDPOINT_URL_S3 = proxy.endpoint;
});
after(async () => {
  await proxy.close();
  await s3.stop();
});

/** Every object under an S3 prefix whose key passes `filter` (read around the proxy). */
async function s3Tree(prefix: string, filter: (k: string) => boolean): Promise<Map<string, Buffer>> {
  const store = openStore(`s3://${s3.bucket}/${prefix}`, { endpoint: s3.endpoint });
  const out = new Map<string, Buffer>();
  for await (const e of store.list('')) if (filter(e.key)) out.set(e.key, Buffer.from(await store.get(e.key)));
  return out;
}

const isShardFile = (k: string) => (k.startsWith('data/') || k.startsWith('rejects/')) && k.endsWith('.parquet');

function assertSameShards(reference: string, remotePrefix: string, remote: Map<string, Buffer>) {
  const want = readTree(reference, isShardFile);
  assert.deepEqual([...remote.keys()].sort(), [...want.keys()].sort(), `shard files under ${remotePrefix}`);
  for (const [k, v] of want) assert.ok(v.equals(remote.get(k)!), `${k} differs from the clean run`);
}

test('a shard that keeps failing is recorded and reported as failed; the other shards are committed; --retry-failed finishes it', async (t) => {
  const dir = tempDir();
  const config = writeConfig(dir, { pairs: 24, shardSize: 8, extra: 'storage:\n  max_attempts: 3\n' });
  const reference = join(dir, 'reference');
  await planRun(config, reference);
  await workRun(reference, inject);

  const uri = `s3://${s3.bucket}/failing`;
  await planRun(config, uri);
  const tuning = { retryBaseDelayMs: 2, retryMaxDelayMs: 20 };
  proxy.reset();
  proxy.setFault((r) => (r.method === 'PUT' && r.url.includes('rejects/shard-00001.parquet') ? SLOWDOWN : null));
  const first = await workRun(uri, { ...inject, storeTuning: tuning });
  assert.deepEqual(first.committed, [0, 2], 'the other shards were done');
  assert.deepEqual(first.failed, [1]);
  assert.equal(proxy.faults.length, 3, 'storage.max_attempts = 3 attempts before the shard failed');

  const store = openStore(uri);
  const record = await readFailure(store, 1);
  assert.equal(record?.attempts, 1);
  assert.match(record!.error, /503 SlowDown.*storage\.max_attempts/);
  assert.equal(await store.head(shardMarkerKey(1)), null, 'a failed shard never has a marker');

  let status = await runStatus(uri);
  assert.equal(status.shards.committed, 2);
  assert.equal(status.shards.pending, 1);
  assert.deepEqual(status.shards.failed.map((f) => [f.shard, f.attempts]), [[1, 1]]);
  assert.match(formatStatus(status), /failed: 1 pending shards whose last attempt failed[^\n]*--retry-failed[^\n]*\n  shard-00001  1 attempt, last [^:]+:\d\d:\d\d[.\dZ]*: Error: .*503 SlowDown/);
  await assert.rejects(finalizeRun(uri), /1 of 3 shards are not committed \(shard-00001\)/);

  // By default a later worker holds failed shards back: it does not touch them at all.
  proxy.reset();
  const second = await workRun(uri, { ...inject, storeTuning: tuning });
  assert.deepEqual([second.committed, second.failed, second.held, second.skipped], [[], [], [1], [0, 2]]);
  assert.ok(!proxy.requests.some((r) => r.startsWith('PUT')), 'nothing was written');

  // --retry-failed while the store still fails: attempts go up, the record stays.
  proxy.setFault((r) => (r.method === 'PUT' && r.url.includes('rejects/shard-00001.parquet') ? INTERNAL : null));
  const third = await workRun(uri, { ...inject, storeTuning: tuning, retryFailed: true });
  assert.deepEqual(third.failed, [1]);
  assert.equal((await readFailure(store, 1))?.attempts, 2);

  proxy.reset();
  const fourth = await workRun(uri, { ...inject, storeTuning: tuning, retryFailed: true });
  assert.deepEqual([fourth.committed, fourth.failed], [[1], []]);
  assert.equal(await store.head(failureKey(1)), null, 'the failure record is deleted once the shard is committed');
  status = await runStatus(uri, { verify: true });
  assert.deepEqual([status.shards.committed, status.shards.failed.length, status.shards.invalid.length], [3, 0, 0]);
  await finalizeRun(uri, { preview: false });
  assert.ok(await store.head('manifest.parquet'));
  for await (const e of store.list('preview/')) assert.fail(`preview skipped, yet ${e.key} was written`);
  assertSameShards(reference, 'failing', await s3Tree('failing', isShardFile));
  t.diagnostic(`faults injected: 3 + 3 (503 SlowDown, 500) on shard-00001; shard recorded failed twice, then committed with --retry-failed`);
});


/** Which faults make sense for a request: a body to truncate only on object GETs, a server that acted on it only for PUTs. */
function faultsFor(r: ProxyRequest, allowHang: boolean): Exclude<Fault, null>[] {
  const hang: Exclude<Fault, null>[] = allowHang ? ['hang'] : [];
  const list = r.url.includes('list-type=2');
  if (r.method === 'GET' && !list) return [INTERNAL, SLOWDOWN, 'reset', 'truncate', 'truncate', ...hang];
  if (r.method === 'GET') return [INTERNAL, SLOWDOWN, 'reset'];
  if (r.method === 'PUT') return [INTERNAL, SLOWDOWN, 'reset', 'reset-after', 'reset-after', ...hang];
  if (r.method === 'HEAD') return [INTERNAL, SLOWDOWN, 'reset', ...hang];
  return [SLOWDOWN, 'reset'];
}

test('a whole run through random 500 / 503 SlowDown / resets / truncated bodies / timeouts: retried, nothing lost or corrupted', async (t) => {
  const dir = tempDir();
  const config = writeConfig(dir, { pairs: 32, shardSize: 8, extra: 'runtime:\n  batch_size: 4\n' });
  const reference = join(dir, 'reference');
  await planRun(config, reference);
  await workRun(reference, inject);
  await finalizeRun(reference);

  const uri = `s3://${s3.bucket}/faulty`;
  const random = prng(20250101);
  let phase: 'work' | 'finalize' = 'work';
  proxy.reset();
  await planRun(config, uri);
  // Every request after the plan has a 25% chance of a fault. Hangs only during work, where the socket
  // timeout is short (finalize and status use the default 120 s timeout).
  proxy.setFault((r) => {
    if (random() >= 0.25) return null;
    const choices = faultsFor(r, phase === 'work');
    return choices[Math.floor(random() * choices.length)];
  });
  const summary = await workRun(uri, { ...inject, storeTuning: { retryBaseDelayMs: 5, retryMaxDelayMs: 100, socketTimeoutMs: 1500 } });
  assert.deepEqual([summary.committed, summary.failed], [[0, 1, 2, 3], []]);
  phase = 'finalize';
  const status = await runStatus(uri, { verify: true });
  assert.deepEqual([status.shards.committed, status.shards.invalid.length], [4, 0]);
  await finalizeRun(uri);

  const injected = [...proxy.faults];
  const requests = [...proxy.requests];
  proxy.reset();
  // Retries made: every faulted request was sent again later (the SDK's loop, or the store's own for bodies).
  const counts = new Map<string, number>();
  for (const f of injected) counts.set(String(typeof f.fault === 'object' ? f.fault.code : f.fault), (counts.get(String(typeof f.fault === 'object' ? f.fault.code : f.fault)) ?? 0) + 1);
  for (const f of injected) {
    const at = requests.lastIndexOf(f.line);
    assert.ok(at >= 0 && requests.filter((r) => r === f.line).length >= 2, `${f.line} was faulted and never retried`);
  }
  assert.ok(injected.length >= 10, `enough faults to mean something (${injected.length})`);
  for (const kind of ['InternalError', 'SlowDown', 'reset', 'reset-after', 'truncate']) assert.ok(counts.has(kind), `no ${kind} fault was injected`);

  // Nothing lost or corrupted: the shard files are the clean run's bytes, and so is the manifest.
  const remote = await s3Tree('faulty', (k) => isShardFile(k) || k === 'manifest.parquet');
  const manifest = remote.get('manifest.parquet');
  remote.delete('manifest.parquet');
  assertSameShards(reference, 'faulty', remote);
  assert.ok(readTree(reference, (k) => k === 'manifest.parquet').get('manifest.parquet')!.equals(manifest!), 'manifest.parquet differs from the clean run');
  t.diagnostic(`requests: ${requests.length}; faults injected and retried: ${injected.length} (${[...counts].map(([k, n]) => `${k} ${n}`).join(', ')}); shards byte-identical to a clean run; status --verify clean`);
});

test('getRange reads [start, end) on both backends; a ranged body cut short is read again', async () => {
  const data = new Uint8Array(4096).map((_, i) => (i * 7919) % 251);
  const local = openStore(join(tempDir(), 'range'));
  const remote = openStore(`s3://${s3.bucket}/range`, {}, { retryBaseDelayMs: 1, retryMaxDelayMs: 5 });
  for (const store of [local, remote]) {
    await store.put('blob', data);
    assert.deepEqual(await store.getRange('blob', 100, 300), data.subarray(100, 300));
    assert.deepEqual(await store.getRange('blob', 4000, 4096), data.subarray(4000));
    await assert.rejects(store.getRange('missing', 0, 10), (e: Error) => e.name === 'NotFoundError');
    await assert.rejects(store.getRange('blob', 4000, 5000));
    await assert.rejects(store.getRange('blob', 10, 10), /invalid byte range/);
  }
  proxy.reset();
  let cut = 0;
  proxy.setFault((r) => (r.method === 'GET' && r.url.includes('/range/blob') && cut++ < 2 ? 'truncate' : null));
  assert.deepEqual(await remote.getRange('blob', 1000, 3000), data.subarray(1000, 3000));
  assert.equal(proxy.faults.length, 2);
  assert.equal(proxy.requests.length, 3, 'two truncated answers, then a whole one');
  proxy.reset();
});

test('CLI: `pairgen work` exits 3 when a shard failed, after doing the others; status names it; --retry-failed finishes (real teacher)', async () => {
  const dir = tempDir();
  const config = writeConfig(dir, { pairs: 2, shardSize: 1, steps: 2, extra: 'storage:\n  max_attempts: 2\n' });
  const uri = `s3://${s3.bucket}/cli-failing`;
  await planRun(config, uri);
  const env = { ...process.env };
  // Asynchronous: the proxy lives in this process and must keep answering while the CLI runs.
  const pairgen = (args: string[]) =>
    new Promise<{ code: number | null; stderr: string; stdout: string }>((res) => {
      const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('exit', (code) => res({ code, stdout, stderr }));
    });
  proxy.reset();
  proxy.setFault((r) => (r.method === 'PUT' && r.url.includes('rejects/shard-00000.parquet') ? INTERNAL : null));
  const first = await pairgen(['work', uri]);
  assert.equal(first.code, 3, first.stderr);
  assert.match(first.stderr, /shard-00000 failed; going on with the other shards/);
  assert.match(first.stderr, /1 shard\(s\) failed and 0 were skipped after an earlier failure \(0\); see `pairgen status .*`, then run `pairgen work .* --retry-failed`/);
  assert.doesNotMatch(first.stderr, /\n\s+at /, 'no stack trace');
  const status = await pairgen(['status', uri]);
  assert.equal(status.code, 0);
  assert.match(status.stdout, /shards: 1\/2 committed, 1 pending/);
  assert.match(status.stdout, /shard-00000  1 attempt/);
  proxy.reset();
  const held = await pairgen(['work', uri]);
  assert.equal(held.code, 3, 'held back by default');
  assert.match(held.stderr, /shard-00000 skipped: an earlier attempt failed/);
  const retried = await pairgen(['work', uri, '--retry-failed']);
  assert.equal(retried.code, 0, retried.stderr);
  assert.equal(JSON.parse((await pairgen(['status', uri, '--json'])).stdout).shards.committed, 2);
});
