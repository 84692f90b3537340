/**
 * URIs a store refuses: paths on special file systems (/proc, /sys, /dev, also through a symlink),
 * file:// URIs with a query or fragment, and credentials inside a URL (never echoed).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { UserError } from '../../src/errors.ts';
import { checkStorageConfig, openStore, redactUrl } from '../../src/store/index.ts';
import { putOutput } from '../../src/store/output.ts';
import { BIN, writeConfig } from '../helpers/run-fixture.ts';

let tmp: string;
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'pairgen-uris-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const userError = (pattern: RegExp) => (e: unknown) => e instanceof UserError && pattern.test(e.message);

describe('special file systems', () => {
  it('a store rooted under /proc, /sys or /dev is refused at once', () => {
    for (const path of ['/proc/x', '/proc', '/sys/kernel/x', '/dev/pairgen-x', `file:///proc/self/x`]) {
      assert.throws(() => openStore(path), userError(/is on a special file system/), path);
    }
  });

  it('the real path counts: a symlink into /proc is refused, naming where it really points', async () => {
    await symlink('/proc/self', join(tmp, 'to-proc'));
    assert.throws(() => openStore(join(tmp, 'to-proc', 'run')), userError(/to-proc\/run \(really \/proc\/\d+\/run\) is on a special file system/));
  });

  it('an ordinary folder, and /dev/shm (a tmpfs), are accepted', async () => {
    const store = openStore(join(tmp, 'fine'));
    await store.put('a', 'x');
    if (existsSync('/dev/shm')) assert.doesNotThrow(() => openStore('/dev/shm/pairgen-not-written'));
  });

  it('putOutput refuses /proc before writing', async () => {
    await assert.rejects(putOutput('/proc/self/out.png', 'x'), userError(/\/proc\/self is on a special file system|\/proc\/\S+ is on a special file system/));
  });

  it('pairgen plan --out /proc/x exits 2 at once instead of spinning', () => {
    const config = writeConfig(tmp, { name: 'proc' });
    const started = Date.now();
    const r = spawnSync(process.execPath, [BIN, 'plan', config, '--out', '/proc/pairgen-x'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /\/proc\/pairgen-x is on a special file system/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    assert.ok(Date.now() - started < 60_000);
  });
});

describe('file:// URIs', () => {
  it('a query or a fragment is refused, naming it; nothing is written', async () => {
    const base = pathToFileURL(join(tmp, 'q')).href;
    assert.throws(() => openStore(`${base}?x=1#frag`), userError(/unexpected query '\?x=1' and fragment '#frag'/));
    assert.throws(() => openStore(`${base}#frag`), userError(/unexpected fragment '#frag'/));
    await assert.rejects(putOutput(`${base}/out.txt?x=1`, 'x'), userError(/unexpected query '\?x=1'/));
    assert.ok(!existsSync(join(tmp, 'q')));
  });

  it('an escaped ? or # is part of the name', async () => {
    const store = openStore(pathToFileURL(join(tmp, 'a?b#c')).href);
    await store.put('k', 'v');
    assert.deepEqual(await readdir(join(tmp, 'a?b#c')), ['k']);
  });
});

describe('credentials in URLs', () => {
  const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYzzSECRET';
  const cases = [`http://AKIAPLANTED:${SECRET}@127.0.0.1:9000`, `https://AKIAPLANTED:${encodeURIComponent(SECRET)}@s3.example.com/?X-Amz-Signature=${SECRET}`];

  it('storage.endpoint with user:password@ is refused without echoing it', () => {
    for (const endpoint of cases) {
      assert.throws(() => checkStorageConfig({ endpoint }, 'p.yaml'), (e: unknown) => {
        assert.ok(e instanceof UserError);
        assert.equal(e.message, 'p.yaml: storage.endpoint: credentials in the URL are not allowed; use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile (AWS_PROFILE)');
        return true;
      });
    }
    assert.doesNotThrow(() => checkStorageConfig({ endpoint: 'http://127.0.0.1:9000' }, 'p.yaml'));
  });

  it('store URIs with credentials are refused, never echoed', () => {
    for (const uri of [`s3://AKIAPLANTED:${SECRET}@bucket/run`, `http://AKIAPLANTED:${SECRET}@host/run`, `file://AKIAPLANTED:${SECRET}@host/run`]) {
      assert.throws(() => openStore(uri), (e: unknown) => e instanceof UserError && !e.message.includes('CYzzSECRET') && !e.message.includes('AKIAPLANTED'), uri);
    }
  });

  it('redactUrl hides user:password (even with / in it) and query strings, and leaves plain paths alone', () => {
    for (const url of cases) {
      const shown = redactUrl(url);
      assert.ok(!shown.includes('CYzzSECRET') && !shown.includes('AKIAPLANTED'), shown);
    }
    assert.equal(redactUrl(`http://AKIAPLANTED:${SECRET}@127.0.0.1:9000`), 'http://***@127.0.0.1:9000');
    assert.equal(redactUrl('https://s3.example.com/b?X-Amz-Signature=abc'), 'https://s3.example.com/b?***');
    assert.equal(redactUrl('http://127.0.0.1:9000'), 'http://127.0.0.1:9000');
    assert.equal(redactUrl('/data/what?.txt'), '/data/what?.txt');
  });
});
