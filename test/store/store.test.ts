import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { UserError } from '../../src/errors.ts';
import { describeStoreUri, NotFoundError, openStore, type StorageConfig, type Store } from '../../src/store/index.ts';
import { startFaultProxy, SLOWDOWN, type Fault, type FaultProxy } from '../helpers/fault-proxy.ts';
import { startS3Server, type S3Server } from '../helpers/s3server.ts';

const FAST = { retryBaseDelayMs: 1, retryMaxDelayMs: 20 };
const MiB = 1024 * 1024;

/** Deterministic pseudo-random bytes (xorshift32), so large objects are not trivially compressible. */
function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function keys(store: Store, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for await (const e of store.list(prefix)) out.push(e.key);
  return out;
}

function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const set = (v: Record<string, string | undefined>) => {
    for (const [k, val] of Object.entries(v)) if (val === undefined) delete process.env[k]; else process.env[k] = val;
  };
  set(vars);
  return fn().finally(() => set(saved));
}

let s3: S3Server;
let proxy: FaultProxy;
let tmp: string;

before(async () => {
  s3 = await startS3Server({ buckets: ['test', 'other'], processEnv: true });
  proxy = await startFaultProxy(s3.endpoint);
  tmp = await mkdtemp(join(tmpdir(), 'pairgen-store-test-'));
});

after(async () => {
  await proxy.close();
  await s3.stop();
  await rm(tmp, { recursive: true, force: true });
});

let counter = 0;
const backends: { name: string; open(config?: Partial<StorageConfig>): Store; multipart: boolean }[] = [
  { name: 'local', open: () => openStore(join(tmp, `root-${counter++}`)), multipart: false },
  {
    name: 's3',
    // Through the logging proxy, so tests can see which requests were made; 3 keys per listing page.
    open: (config = {}) =>
      openStore(`s3://test/root-${counter++}`, { endpoint: proxy.endpoint, multipart_threshold_mb: 5, ...config }, { ...FAST, listPageSize: 3 }),
    multipart: true,
  },
];

for (const backend of backends) {
  describe(`store contract: ${backend.name}`, () => {
    it('put / get / getIfExists / head round-trip bytes and strings exactly', async () => {
      const store = backend.open();
      const data = bytes(1000, 7);
      await store.put('a/b/data.bin', data);
      await store.put('note.txt', 'héllo\n', { contentType: 'text/plain' });
      assert.deepEqual(await store.get('a/b/data.bin'), data);
      assert.equal(Buffer.from(await store.get('note.txt')).toString(), 'héllo\n');
      assert.deepEqual(await store.head('a/b/data.bin'), { size: 1000 });
      assert.deepEqual(await store.head('note.txt'), { size: 7 });
      assert.equal(await store.head('a/b'), null, 'a folder is not an object');
      assert.equal(await store.head('missing'), null);
      assert.equal(await store.getIfExists('missing'), null);
      await assert.rejects(store.get('a/missing.bin'), (e) => e instanceof NotFoundError && !(e instanceof UserError) && e.key === 'a/missing.bin' && e.message.includes(store.uri));
      await store.put('note.txt', new Uint8Array(0));
      assert.deepEqual(await store.head('note.txt'), { size: 0 }, 'overwrite, including with an empty object');
    });

    it('list walks every key under a prefix in byte order, relative to the root, with sizes', async () => {
      const store = backend.open();
      for (const k of ['b', 'a/x', 'a0', 'a/y/z', 'ab', 'a/y0']) await store.put(k, k);
      assert.deepEqual(await keys(store), ['a/x', 'a/y/z', 'a/y0', 'a0', 'ab', 'b']);
      assert.deepEqual(await keys(store, 'a/'), ['a/x', 'a/y/z', 'a/y0']);
      assert.deepEqual(await keys(store, 'a/y'), ['a/y/z', 'a/y0']);
      assert.deepEqual(await keys(store, 'a'), ['a/x', 'a/y/z', 'a/y0', 'a0', 'ab']);
      assert.deepEqual(await keys(store, 'zzz'), []);
      const sizes: Record<string, number> = {};
      for await (const e of store.list('')) sizes[e.key] = e.size;
      assert.equal(sizes['a/y/z'], 5);
      assert.deepEqual(await keys(backend.open()), [], 'a fresh root is empty');
    });

    it('list pages through more keys than one page holds', async () => {
      const store = backend.open();
      const want = Array.from({ length: 10 }, (_, i) => `markers/shard-${String(i).padStart(5, '0')}.json`);
      for (const k of [...want].reverse()) await store.put(k, '{}');
      proxy.reset();
      assert.deepEqual(await keys(store, 'markers/'), want);
      if (backend.name === 's3') {
        const lists = proxy.requests.filter((r) => r.includes('list-type=2'));
        assert.equal(lists.length, 4, `10 keys at 3 per page take 4 requests: ${lists.join(', ')}`);
        assert.equal(lists.filter((r) => r.includes('continuation-token=')).length, 3);
      }
    });

    it('delete removes an object and is idempotent', async () => {
      const store = backend.open();
      await store.put('x/y', 'y');
      await store.put('x/z', 'z');
      await store.delete('x/y');
      await store.delete('x/y');
      await store.delete('never-existed');
      assert.equal(await store.head('x/y'), null);
      assert.deepEqual(await keys(store), ['x/z']);
    });

    it('child stores see a sub-prefix with relative keys', async () => {
      const store = backend.open();
      const markers = store.child('markers');
      assert.equal(markers.uri, `${store.uri}/markers`);
      await markers.put('shard-00000.json', '{"n":1}');
      await store.put('run.json', '{}');
      assert.deepEqual(await keys(store), ['markers/shard-00000.json', 'run.json']);
      assert.deepEqual(await keys(markers), ['shard-00000.json']);
      assert.equal(Buffer.from(await store.get('markers/shard-00000.json')).toString(), '{"n":1}');
      assert.deepEqual(await keys(store.child('markers/').child('none')), []);
    });

    it('putStream stores a stream exactly, small and multi-part sized', async () => {
      const store = backend.open();
      await store.putStream('small.txt', Readable.from([Buffer.from('ab'), Buffer.from('cd')]), { contentType: 'text/plain' });
      assert.equal(Buffer.from(await store.get('small.txt')).toString(), 'abcd');
      const big = bytes(12 * MiB, 3);
      proxy.reset();
      // Uneven chunks, as a real producer would emit.
      const chunks = Array.from({ length: 12 }, (_, i) => big.subarray(i * MiB, (i + 1) * MiB));
      await store.putStream('big.bin', Readable.from(chunks));
      assert.equal(sha(await store.get('big.bin')), sha(big));
      if (backend.multipart) assert.equal(proxy.requests.filter((r) => r.startsWith('PUT') && r.includes('partNumber=')).length, 3, '12 MiB in 5 MiB parts');
    });

    it('put of an object above multipart_threshold_mb goes in parts and reads back byte-identical', async () => {
      const store = backend.open({ multipart_threshold_mb: 5 });
      const big = bytes(11 * MiB, 9);
      proxy.reset();
      await store.put('images/big.bin', big);
      const back = await store.get('images/big.bin');
      assert.equal(back.byteLength, big.byteLength);
      assert.equal(sha(back), sha(big));
      assert.deepEqual(await store.head('images/big.bin'), { size: 11 * MiB });
      if (backend.multipart) {
        assert.equal(proxy.requests.filter((r) => r.includes('partNumber=')).length, 3);
        assert.ok(proxy.requests.some((r) => r.startsWith('POST') && r.includes('uploads')), 'a multipart upload was created');
      }
    });

    it('a failed putStream leaves nothing behind; list never shows temp files', async () => {
      const store = backend.open();
      await store.put('keep', 'k');
      async function* failing() {
        yield Buffer.from(bytes(6 * MiB, 5));
        throw new Error('producer failed');
      }
      proxy.reset();
      await assert.rejects(store.putStream('half', Readable.from(failing())), /producer failed/);
      if (backend.multipart) assert.ok(proxy.requests.some((r) => r.startsWith('DELETE') && r.includes('uploadId=')), 'the multipart upload was aborted');
      assert.equal(await store.head('half'), null);
      assert.deepEqual(await keys(store), ['keep']);
    });
  });
}

describe('local backend specifics', () => {
  it('writes through a temp file that is renamed away; stray temp files are not listed', async () => {
    const root = join(tmp, 'atomic');
    const store = openStore(root);
    await store.put('d/obj', 'data');
    assert.deepEqual(await readdir(join(root, 'd')), ['obj']);
    // What a crash in the middle of a write leaves behind.
    await writeFile(join(root, 'd', 'obj2.pairgen-tmp-123-abc'), 'partial');
    assert.deepEqual(await keys(store), ['d/obj']);
    assert.equal(await store.head('obj2.pairgen-tmp-123-abc'), null);
  });

  it('orders keys by bytes even where a folder name is a prefix of a sibling (a-c < a/x)', async () => {
    // S3 lists in UTF-8 byte order; s3rver does not in this case (it walks folders), so this runs on disk only.
    const store = openStore(join(tmp, 'order'));
    for (const k of ['a/x', 'a-c', 'a.b/y', 'a0']) await store.put(k, k);
    assert.deepEqual(await keys(store), ['a-c', 'a.b/y', 'a/x', 'a0']);
  });

  it('accepts file:// URIs and relative paths, normalising uri to an absolute path', async () => {
    const root = join(tmp, 'uri form');
    await openStore(pathToFileURL(root).href).put('k', 'v');
    assert.equal(Buffer.from(await openStore(root).get('k')).toString(), 'v');
    assert.equal(openStore(pathToFileURL(root).href).uri, root);
    assert.equal(openStore(pathToFileURL(root).href + '/').uri, root);
    assert.equal(openStore(root + '/').child('markers/').uri, join(root, 'markers'));
    assert.equal(openStore('runs/a').uri, join(process.cwd(), 'runs/a'));
  });

  it('same puts give the same bytes on disk as on S3', async () => {
    const data = bytes(4096, 11);
    const local = openStore(join(tmp, 'same'));
    const remote = openStore('s3://test/same');
    await local.put('x', data);
    await remote.put('x', data);
    assert.equal(sha(await local.get('x')), sha(await remote.get('x')));
  });

  it('an output path blocked by a file or without write permission is a user error naming the path', async () => {
    const file = join(tmp, 'a-file');
    await writeFile(file, 'x');
    await assert.rejects(openStore(file).put('k', 'v'), (e: Error) => e instanceof UserError && e.message.startsWith(`${file}: cannot write 'k' (`) && /a file stands where a folder/.test(e.message));
    await assert.rejects(openStore(join(tmp, 'ok')).put('a-file-too', 'x').then(() => openStore(join(tmp, 'ok')).put('a-file-too/k', 'v')), /a file stands where a folder/);
    if (process.getuid?.() !== 0) {
      const ro = join(tmp, 'read-only');
      await mkdir(ro, { mode: 0o555 });
      await assert.rejects(openStore(ro).put('k', 'v'), (e: Error) => e instanceof UserError && /\(EACCES\): check that the folder exists with write permission/.test(e.message));
    }
  });

  it('rejects keys that would escape the root', async () => {
    const store = openStore(join(tmp, 'keys'));
    for (const bad of ['../x', 'a//b', '/abs', 'a/./b', '']) await assert.rejects(store.put(bad, 'x'), /invalid store key/);
  });
});

describe('store errors the user can fix', () => {
  const userError = (re: RegExp) => (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${String(e)}`);
    assert.match(e.message, re);
    return true;
  };

  it('unknown URI schemes name the URI and the accepted forms', () => {
    assert.throws(() => openStore('gs://bucket/runs'), userError(/storage URI gs:\/\/bucket\/runs: unsupported scheme 'gs:'; expected a local path, file:\/\/\/path or s3:\/\/bucket\/prefix.*storage\.googleapis\.com/));
    assert.throws(() => openStore('http://example.com/x'), userError(/unsupported scheme 'http:'/));
    assert.throws(() => openStore('https://user:secret@example.com/x?sig=abc'), (e: Error) => e instanceof UserError && !/secret|sig=abc/.test(e.message));
    assert.throws(() => openStore('s3://'), userError(/storage URI s3:\/\/: expected s3:\/\/BUCKET\/PREFIX/));
    assert.throws(() => openStore('s3://b'), userError(/bucket name of 3-63/));
    assert.throws(() => openStore('s3://AKIA:secret@bucket/x'), (e: Error) => e instanceof UserError && /credentials in the URL are not allowed/.test(e.message) && !e.message.includes('secret'));
    assert.throws(() => openStore('s3://bucket/a/../b'), userError(/'\.\.'/));
    assert.throws(() => openStore(''), userError(/storage URI is empty/));
    assert.throws(() => openStore('s3://test/x', { endpoint: 'localhost:9000' }), userError(/storage\.endpoint 'localhost:9000' \(for s3:\/\/test\/x\): expected an http:\/\/ or https:\/\/ URL/));
  });

  it('an unknown access key is InvalidAccessKeyId, naming the URI and the variables to check', async () => {
    await withEnv({ AWS_ACCESS_KEY_ID: 'WRONGKEY' }, async () => {
      const store = openStore('s3://test/creds', {}, FAST);
      await assert.rejects(store.put('k', 'v'), userError(/^s3:\/\/test\/creds: .*127\.0\.0\.1.*\(from AWS_ENDPOINT_URL_S3\) does not know the access key \(InvalidAccessKeyId\) on write 'k'\. Check AWS_ACCESS_KEY_ID \/ AWS_SECRET_ACCESS_KEY/));
      await assert.rejects(store.get('k'), userError(/\(InvalidAccessKeyId\) on read 'k'/));
      // HEAD answers carry no error code: the status alone must still give a useful message.
      await assert.rejects(store.head('k'), userError(/^s3:\/\/test\/creds: access denied by .* \(HTTP 403\) on read 'k'\. Check AWS_ACCESS_KEY_ID/));
    });
  });

  it('a wrong secret (SignatureDoesNotMatch) and AccessDenied say what to check; 403s are not retried', async () => {
    // s3rver checks access key ids but not SigV4 signatures, so the proxy answers these two as S3 would.
    for (const code of ['SignatureDoesNotMatch', 'AccessDenied']) {
      proxy.reset();
      proxy.setFault(() => ({ status: 403, code }));
      const store = openStore('s3://test/creds', { endpoint: proxy.endpoint }, FAST);
      const re = code === 'AccessDenied'
        ? /^s3:\/\/test\/creds: access denied by http:\/\/127\.0\.0\.1:\d+ \(from storage\.endpoint\) \(AccessDenied\) on write 'k'\. Check AWS_ACCESS_KEY_ID .*may write in bucket 'test'/
        : /^s3:\/\/test\/creds: .*rejected the request signature \(SignatureDoesNotMatch\) on write 'k': the secret key does not match the access key\. Check AWS_ACCESS_KEY_ID \/ AWS_SECRET_ACCESS_KEY/;
      await assert.rejects(store.put('k', 'v'), (e: Error) => userError(re)(e) && !e.message.includes('S3RVER'));
      assert.equal(proxy.requests.length, 1, 'a 403 is not retried');
    }
  });

  it('no credentials at all says how to provide them', async () => {
    await withEnv({ AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, AWS_PROFILE: undefined }, async () => {
      await assert.rejects(openStore('s3://test/x', {}, FAST).get('k'), userError(/^s3:\/\/test\/x: no AWS credentials found\. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE/));
    });
  });

  it('a missing bucket is named, for writes, reads, heads and listings', async () => {
    const store = openStore('s3://no-such-bucket/runs/a', {}, FAST);
    const re = /^s3:\/\/no-such-bucket\/runs\/a: bucket 'no-such-bucket' does not exist at http:\/\/127\.0\.0\.1:\d+ \(from AWS_ENDPOINT_URL_S3\)\. Create it, or fix the bucket name/;
    await assert.rejects(store.put('k', 'v'), userError(re));
    await assert.rejects(store.get('k'), userError(re));
    await assert.rejects(store.head('k'), userError(re), 'HEAD gets a bare 404: the store checks the bucket');
    await assert.rejects(keys(store), userError(re));
    assert.equal(await openStore('s3://other/x').head('k'), null, 'an existing bucket still answers null for a missing key');
  });

  it('an unreachable endpoint is named with the variable it came from, after the configured attempts', async () => {
    const closed = await new Promise<number>((r) => {
      const s = http.createServer().listen(0, '127.0.0.1', () => {
        const port = (s.address() as AddressInfo).port;
        s.close(() => r(port));
      });
    });
    await withEnv({ AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${closed}` }, async () => {
      const store = openStore('s3://test/x', { max_attempts: 3 }, FAST);
      await assert.rejects(store.put('k', 'v'), userError(new RegExp(`^s3://test/x: cannot reach the S3 endpoint http://127\\.0\\.0\\.1:${closed} \\(from AWS_ENDPOINT_URL_S3\\): ECONNREFUSED after 3 attempt\\(s\\) on write 'k'`)));
    });
    const fromConfig = openStore('s3://test/x', { endpoint: `http://127.0.0.1:${closed}`, max_attempts: 2 }, FAST);
    await assert.rejects(fromConfig.head('k'), userError(/\(from storage\.endpoint\): ECONNREFUSED after 2 attempt/));
  });

  it('the region comes from storage.region, else AWS_REGION, AWS_DEFAULT_REGION, the AWS config file, us-east-1', async () => {
    const config = join(tmp, 'aws-config');
    await writeFile(config, '[default]\nregion = eu-west-3\n');
    const regionOf = async (env: Record<string, string | undefined>, storage: Partial<StorageConfig> = {}) =>
      withEnv({ AWS_REGION: undefined, AWS_DEFAULT_REGION: undefined, ...env }, async () => {
        proxy.reset();
        await openStore('s3://test/region', { endpoint: proxy.endpoint, ...storage }, FAST).head('k');
        return proxy.regions[0];
      });
    assert.equal(await regionOf({ AWS_REGION: 'eu-north-1' }, { region: 'ap-south-1' }), 'ap-south-1');
    assert.equal(await regionOf({ AWS_REGION: 'eu-north-1', AWS_DEFAULT_REGION: 'us-west-2' }), 'eu-north-1');
    assert.equal(await regionOf({ AWS_DEFAULT_REGION: 'us-west-2' }), 'us-west-2');
    assert.equal(await regionOf({ AWS_CONFIG_FILE: config }), 'eu-west-3');
    assert.equal(await regionOf({}), 'us-east-1');
  });

  it('describeStoreUri names the endpoint and its source, never credentials', () => {
    const d = describeStoreUri('s3://test/runs/a');
    assert.match(d, /^s3:\/\/test\/runs\/a via http:\/\/127\.0\.0\.1:\d+ \(from AWS_ENDPOINT_URL_S3\), region us-east-1, path-style addressing$/);
    assert.ok(!d.includes('S3RVER'));
    assert.equal(describeStoreUri('/data/x'), 'local folder /data/x');
  });
});

describe('S3 retries (fault-injecting proxy in front of s3rver)', () => {
  const open = (config: Partial<StorageConfig> = {}, tuning = {}) => openStore('s3://test/retry', { endpoint: proxy.endpoint, ...config }, { ...FAST, ...tuning });

  it('503 SlowDown is retried until the write succeeds', async () => {
    proxy.reset();
    proxy.setFault(({ line, index: i }) => (line.startsWith('PUT') && i < 2 ? SLOWDOWN : null));
    await open().put('slow', 'payload');
    assert.deepEqual(proxy.requests.filter((r) => r.startsWith('PUT')).length, 3);
    proxy.reset();
    assert.equal(Buffer.from(await open().get('slow')).toString(), 'payload');
  });

  it('429, 500 and a reset connection on a write are retried too', async () => {
    proxy.reset();
    const faults: Fault[] = [{ status: 429, code: 'TooManyRequests' }, { status: 500, code: 'InternalError' }, 'reset'];
    proxy.setFault(({ index: i }) => faults[i] ?? null);
    await open().put('mixed', 'm');
    assert.equal(proxy.requests.length, 4);
    assert.equal(Buffer.from(await open().get('mixed')).toString(), 'm');
  });

  it('connection resets are retried (reads and listings)', async () => {
    await open().put('reset', 'r');
    proxy.reset();
    proxy.setFault(({ index: i }) => (i < 2 ? 'reset' : null));
    assert.equal(Buffer.from(await open().get('reset')).toString(), 'r');
    assert.equal(proxy.requests.length, 3);
    proxy.reset();
    proxy.setFault(({ index: i }) => (i === 0 ? 'reset' : null));
    assert.ok((await keys(open(), 'reset')).includes('reset'));
    assert.equal(proxy.requests.length, 2);
  });

  it('a body cut short of Content-Length is read again', async () => {
    const data = bytes(256 * 1024, 4);
    await open().put('trunc', data);
    proxy.reset();
    proxy.setFault(({ line, index: i }) => (line.startsWith('GET') && i === 0 ? 'truncate' : null));
    assert.equal(sha(await open().get('trunc')), sha(data));
    assert.equal(proxy.requests.length, 2);
  });

  it('a request that gets no answer times out and is retried', async () => {
    await open().put('hang', 'h');
    proxy.reset();
    proxy.setFault(({ index: i }) => (i === 0 ? 'hang' : null));
    assert.equal(Buffer.from(await open({}, { socketTimeoutMs: 300 }).get('hang')).toString(), 'h');
    assert.equal(proxy.requests.length, 2);
  });

  it('a multipart upload retries a throttled part without restarting', async () => {
    const big = bytes(11 * MiB, 8);
    proxy.reset();
    let throttled = 0;
    proxy.setFault(({ line }) => (line.includes('partNumber=2') && throttled++ < 2 ? SLOWDOWN : null));
    await open({ multipart_threshold_mb: 5 }).put('parts', big);
    const parts = proxy.requests.filter((r) => r.includes('partNumber='));
    assert.equal(parts.length, 5, '3 parts + 2 retries of part 2');
    assert.equal(proxy.requests.filter((r) => r.startsWith('POST') && r.includes('uploads')).length, 1);
    proxy.reset();
    assert.equal(sha(await open().get('parts')), sha(big));
  });

  it('gives up after max_attempts with a message naming the status and the setting', async () => {
    proxy.reset();
    proxy.setFault(() => SLOWDOWN);
    await assert.rejects(open({ max_attempts: 3 }).put('never', 'x'), (e: Error) => {
      assert.ok(!(e instanceof UserError));
      assert.match(e.message, /^s3:\/\/test\/retry: write 'never' failed after 3 attempts: HTTP 503 SlowDown from http:\/\/127\.0\.0\.1:\d+ \(from storage\.endpoint\)\..*storage\.max_attempts/);
      return true;
    });
    assert.equal(proxy.requests.length, 3);
    proxy.reset();
    assert.equal(await open().head('never'), null, 'nothing was written');
  });
});

it('local store: a write over the file-size limit (EFBIG) is a user error naming the key, and leaves no temp file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pairgen-efbig-'));
  try {
    const script = `import { openStore } from ${JSON.stringify(new URL('../../src/store/index.ts', import.meta.url).pathname)};
      try { await openStore(process.argv[1]).put('big.bin', new Uint8Array(64 * 1024)); console.log('written'); }
      catch (e) { console.log(e.constructor.name + ': ' + e.message); }`;
    const r = spawnSync('bash', ['-c', 'ulimit -f 8 && exec "$0" "$@"', process.execPath, '--import', 'tsx', '--input-type=module', '-e', script, dir], { encoding: 'utf8' });
    assert.match(r.stdout, /^UserError: .*cannot write 'big\.bin' \(EFBIG\): .*ulimit -f/m, r.stderr);
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
