/**
 * putIfAbsent, the write-if-absent the commit markers use: a local folder (link()), the loopback S3
 * server s3rver (which ignores If-None-Match, so `auto` must find that out and fall back to HEAD then
 * PUT), and s3rver behind a proxy that honours If-None-Match the way S3 does (the atomic S3 path).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openStore, type StorageConfig, type Store } from '../../src/store/index.ts';
import { startS3Server, type S3Server } from '../helpers/s3server.ts';
import { startConditionalProxy, type ConditionalProxy } from './conditional-proxy.ts';

const FAST = { retryBaseDelayMs: 1, retryMaxDelayMs: 20 };
const text = (b: Uint8Array) => Buffer.from(b).toString();

let s3: S3Server;
let proxy: ConditionalProxy;
let tmp: string;

before(async () => {
  s3 = await startS3Server({ processEnv: true });
  proxy = await startConditionalProxy(s3.endpoint);
  tmp = await mkdtemp(join(tmpdir(), 'pairgen-conditional-'));
});
after(async () => {
  await proxy.close();
  await s3.stop();
  await rm(tmp, { recursive: true, force: true });
});

/** Files s3rver holds under a prefix, read from its own folder (list() hides probe objects). */
async function storedFiles(prefix: string): Promise<string[]> {
  const folder = join(s3.directory, s3.bucket, prefix);
  return existsSync(folder) ? (await readdir(folder, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name) : [];
}

/** Every racer writes its own body, so the object shows who won. */
async function race(store: Store, key: string, n: number) {
  const results = await Promise.all(Array.from({ length: n }, (_, i) => store.putIfAbsent(key, `body of racer ${i}`)));
  return { results, written: results.flatMap((r, i) => (r === 'written' ? [i] : [])) };
}

async function sequential(store: Store) {
  assert.equal(await store.putIfAbsent('m/shard-00000.json', '{"first":true}'), 'written');
  assert.equal(await store.putIfAbsent('m/shard-00000.json', '{"second":true}'), 'exists');
  assert.equal(text(await store.get('m/shard-00000.json')), '{"first":true}', 'an existing object is left as it was');
}

describe('local folder', () => {
  it('is atomic: written once, then exists; no temp file left', async () => {
    const store = openStore(join(tmp, 'local-seq'));
    assert.equal(await store.conditionalWrites(), 'atomic');
    await sequential(store);
    assert.deepEqual(await readdir(join(tmp, 'local-seq', 'm')), ['shard-00000.json']);
  });

  it('of 16 concurrent calls on one key exactly one writes, and the object is its body', async () => {
    const store = openStore(join(tmp, 'local-race'));
    for (let round = 0; round < 5; round++) {
      const key = `shards/shard-${round}.json`;
      const { results, written } = await race(store, key, 16);
      assert.equal(written.length, 1, `exactly one 'written' (round ${round}): ${results.join(', ')}`);
      assert.equal(text(await store.get(key)), `body of racer ${written[0]}`);
    }
    assert.deepEqual((await readdir(join(tmp, 'local-race', 'shards'))).sort(), [0, 1, 2, 3, 4].map((r) => `shard-${r}.json`));
  });
});

describe('S3 without If-None-Match (s3rver)', () => {
  it('s3rver really ignores If-None-Match: forced "on", a second conditional PUT overwrites (why auto probes)', async () => {
    const store = openStore(`s3://${s3.bucket}/forced-on`, { conditional_writes: 'on' }, FAST);
    assert.equal(await store.putIfAbsent('k', 'one'), 'written');
    assert.equal(await store.putIfAbsent('k', 'two'), 'written');
    assert.equal(text(await store.get('k')), 'two');
  });

  it('auto probes once, finds the header ignored, falls back to HEAD then PUT, and leaves no probe object', async () => {
    const store = openStore(`s3://${s3.bucket}/auto`, {}, FAST);
    assert.equal(await store.conditionalWrites(), 'check-then-put');
    assert.deepEqual(await storedFiles('auto'), [], 'the probe object is deleted');
    await sequential(store);
    assert.ok((await storedFiles('auto')).length > 0, 'storedFiles sees what s3rver holds');
  });

  it('off: racing calls with identical bytes all succeed and the object is whole', async () => {
    const store = openStore(`s3://${s3.bucket}/off`, { conditional_writes: 'off' }, FAST);
    assert.equal(await store.conditionalWrites(), 'check-then-put');
    await sequential(store);
    const marker = JSON.stringify({ shard: 3, rows: 8, sha256: 'ab'.repeat(32) });
    const results = await Promise.all(Array.from({ length: 8 }, () => store.putIfAbsent('shards/shard-3.json', marker)));
    assert.ok(results.includes('written') && results.every((r) => r === 'written' || r === 'exists'), results.join(', '));
    assert.equal(text(await store.get('shards/shard-3.json')), marker);
  });
});

describe('S3 with If-None-Match (s3rver behind a proxy that honours it)', () => {
  const open = (prefix: string, config: Partial<StorageConfig> = {}) =>
    openStore(`s3://${s3.bucket}/${prefix}`, { endpoint: proxy.endpoint, ...config }, FAST);

  it('auto finds the header honoured; written once, then exists (412)', async () => {
    const store = open('atomic-seq');
    assert.equal(await store.conditionalWrites(), 'atomic');
    assert.deepEqual(await storedFiles('atomic-seq'), [], 'the probe object is deleted');
    const sent = proxy.conditionalPuts;
    await sequential(store);
    assert.equal(proxy.conditionalPuts - sent, 2, 'both calls sent If-None-Match');
  });

  it('of 16 concurrent calls on one key exactly one writes, and the object is its body', async () => {
    const store = open('atomic-race', { conditional_writes: 'on' });
    for (let round = 0; round < 3; round++) {
      const key = `shards/shard-${round}.json`;
      const { results, written } = await race(store, key, 16);
      assert.equal(written.length, 1, `exactly one 'written' (round ${round}): ${results.join(', ')}`);
      assert.equal(text(await store.get(key)), `body of racer ${written[0]}`);
    }
  });

  it('409 ConditionalRequestConflict is retried', async () => {
    const store = open('conflict', { conditional_writes: 'on' });
    proxy.conflicts = 2;
    assert.equal(await store.putIfAbsent('k', 'v'), 'written');
    assert.equal(proxy.conflicts, 0);
    assert.equal(text(await store.get('k')), 'v');
  });

  it('off sends no If-None-Match', async () => {
    const store = open('atomic-off', { conditional_writes: 'off' });
    const sent = proxy.conditionalPuts;
    await sequential(store);
    assert.equal(proxy.conditionalPuts, sent);
  });
});
