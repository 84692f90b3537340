/**
 * Models on a store (src/models): a run planned with its teacher on the loopback S3 server and worked
 * by two worker processes from another folder, with an empty model cache and no local copy of the
 * model, gives the same run_id and the same shard bytes as the run planned with the local folder; each
 * model file crosses the network once per node even when a response is cut short; and what a user can
 * get wrong (a missing URI, credentials in it, a model changed after planning, an unusable cache
 * folder) is one clear message and exit 2.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openStore } from '../../src/store/index.ts';
import { localModels } from '../../src/models/index.ts';
import { modelDigests } from '../../src/dataset/run-file.ts';
import { sha256Hex } from '../../src/util/digest.ts';
import { loadPipelineConfig } from '../../src/config/index.ts';
import { checkPipeline } from '../../src/config/check.ts';
import { UserError } from '../../src/errors.ts';
import { startS3Server, type S3Server } from '../helpers/s3server.ts';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.ts';
import { BIN, FIXTURES, readTree, tempDir, writeConfig } from '../helpers/run-fixture.ts';

let s3: S3Server;
let proxy: FaultProxy;
const MODEL_URI = () => `s3://${s3.bucket}/models/tiny-sd`;

before(async () => {
  s3 = await startS3Server();
  proxy = await startFaultProxy(s3.endpoint);
  await upload(join(FIXTURES, 'tiny-sd'), MODEL_URI());
});
after(async () => {
  await proxy.close();
  await s3.stop();
});

async function upload(folder: string, uri: string): Promise<void> {
  await withS3Env(async () => {
    const store = openStore(uri);
    for (const rel of readTree(folder).keys()) await store.put(rel, readFileSync(join(folder, rel)));
  });
}

function pairgen(args: string[], env: Record<string, string>, cwd?: string) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...s3.env, ...env }, cwd, timeout: 180_000 });
  return { code: r.status, stderr: r.stderr, stdout: r.stdout };
}

function pairgenAsync(args: string[], env: Record<string, string>, cwd: string): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...s3.env, ...env }, cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((res) => child.on('exit', (code) => res({ code, stderr })));
}

function expectUserError(r: { code: number | null; stderr: string }, message: RegExp) {
  assert.equal(r.code, 2, `exit code 2 expected; stderr: ${r.stderr}`);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'a user error prints no stack trace');
}

/** Every object under an S3 run (key → bytes). */
async function readS3Tree(uri: string, prefix: string): Promise<Map<string, Buffer>> {
  const store = openStore(uri);
  const out = new Map<string, Buffer>();
  for await (const e of store.list(prefix)) out.set(e.key, Buffer.from(await store.get(e.key)));
  return out;
}

function withS3Env<T>(fn: () => Promise<T>): Promise<T> {
  const saved = { ...process.env };
  Object.assign(process.env, s3.env);
  return fn().finally(() => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  });
}

const shardFiles = (rel: string) => rel.startsWith('data/') || rel.startsWith('rejects/');

test('a run planned with its teacher on S3 and worked by two workers elsewhere gives the local run\'s run_id and shard bytes; each file is fetched once', async () => {
  const dir = tempDir();
  // The local-model run, from a copy of the model folder that is deleted before the S3 run is worked.
  const copy = join(dir, 'local-models', 'tiny-sd');
  cpSync(join(FIXTURES, 'tiny-sd'), copy, { recursive: true });
  const localConfig = writeConfig(dir, { name: 'local', pairs: 4, shardSize: 2 });
  writeFileSync(localConfig, readFileSync(localConfig, 'utf8').replace(join(FIXTURES, 'tiny-sd'), copy));
  const localRun = join(dir, 'local-run');
  const cache = (name: string) => ({ PAIRGEN_MODEL_CACHE: join(dir, name) });
  assert.equal(pairgen(['plan', localConfig, '--out', localRun], cache('unused-cache')).code, 0);
  const work = pairgen(['work', localRun], cache('unused-cache'));
  assert.equal(work.code, 0, work.stderr);
  // --upload-models: the same local config planned into S3, its model copied into the run.
  const uploadedRun = `s3://${s3.bucket}/runs/uploaded-models`;
  const uploaded = pairgen(['plan', localConfig, '--out', uploadedRun, '--upload-models'], cache('planner-cache'));
  assert.equal(uploaded.code, 0, uploaded.stderr);
  assert.doesNotMatch(uploaded.stderr, /local path/);
  rmSync(copy, { recursive: true });

  const s3Config = writeConfig(dir, { name: 'local', pairs: 4, shardSize: 2 });
  writeFileSync(s3Config, readFileSync(s3Config, 'utf8').replace(join(FIXTURES, 'tiny-sd'), MODEL_URI()));
  const s3Run = `s3://${s3.bucket}/runs/from-s3-models`;
  const plan = pairgen(['plan', s3Config, '--out', s3Run], cache('planner-cache'));
  assert.equal(plan.code, 0, plan.stderr);
  const runJson = Buffer.from(await withS3Env(() => openStore(s3Run).get('run.json'))).toString('utf8');
  const planned = JSON.parse(runJson);
  assert.equal(planned.run_id, JSON.parse(readFileSync(join(localRun, 'run.json'), 'utf8')).run_id);
  assert.equal(planned.config.teacher.model, MODEL_URI());
  assert.ok(planned.models.teacher.files.length > 5);
  for (const f of planned.models.teacher.files) assert.ok(f.path.startsWith(MODEL_URI() + '/'), f.path);
  assert.ok(!runJson.includes(dir) && !runJson.includes('planner-cache'), 'run.json names no path of the submitter');

  // Two workers of an array job on one node, from another folder, through a proxy that cuts the first
  // answer for the UNet short: both fill the same empty cache at once.
  const elsewhere = tempDir('pairgen-elsewhere-');
  proxy.reset();
  let cut = false;
  proxy.setFault((r) => (r.method === 'GET' && r.url.includes('/models/tiny-sd/unet/model.onnx') && !cut ? ((cut = true), 'truncate') : null));
  const env = { ...cache('node-cache'), AWS_ENDPOINT_URL_S3: proxy.endpoint };
  const results = await Promise.all([0, 1].map((i) => pairgenAsync(['work', s3Run, '--index', String(i), '--count', '2'], env, elsewhere)));
  for (const r of results) assert.equal(r.code, 0, r.stderr);
  assert.equal(proxy.faults.length, 1, 'one response was cut short');
  const modelGets = proxy.requests.filter((l) => l.startsWith('GET ') && l.includes('/models/tiny-sd/'));
  const perKey = new Map<string, number>();
  for (const l of modelGets) {
    const key = l.split(' ')[1].split('?')[0];
    perKey.set(key, (perKey.get(key) ?? 0) + 1);
  }
  assert.equal(perKey.size, planned.models.teacher.files.length, 'every recorded file was fetched');
  for (const [key, n] of perKey) assert.equal(n, key.endsWith('unet/model.onnx') ? 2 : 1, `${key} fetched ${n} times (the cut one once more)`);
  assert.deepEqual(readdirSync(join(dir, 'node-cache', 'tmp')), [], 'no download left behind');

  const uploadedJson = Buffer.from(await withS3Env(() => openStore(uploadedRun).get('run.json'))).toString('utf8');
  assert.equal(JSON.parse(uploadedJson).run_id, planned.run_id);
  assert.equal(JSON.parse(uploadedJson).config.teacher.model, `${uploadedRun}/models/0/tiny-sd`);
  assert.ok(!uploadedJson.includes(copy), 'run.json names no path of the submitter');
  const uploadedWork = pairgen(['work', uploadedRun], cache('other-node-cache'), elsewhere);
  assert.equal(uploadedWork.code, 0, uploadedWork.stderr);

  const local = readTree(localRun, shardFiles);
  assert.ok(local.size >= 2);
  for (const run of [s3Run, uploadedRun]) {
    const remote = await withS3Env(() => readS3Tree(run, ''));
    const remoteShards = new Map([...remote].filter(([k]) => shardFiles(k)));
    assert.deepEqual([...remoteShards.keys()].sort(), [...local.keys()].sort());
    for (const [k, bytes] of local) assert.ok(bytes.equals(remoteShards.get(k)!), `${k} differs between the local-model run and ${run}`);
  }
});

test('localModels: a cached file damaged after download is found, dropped and fetched again; planning again downloads nothing', async () => {
  const dir = tempDir();
  process.env.PAIRGEN_MODEL_CACHE = join(dir, 'cache');
  try {
    await withS3Env(async () => {
      const config = { ...loadPipelineConfig(writeConfig(dir), [`teacher.model=${MODEL_URI()}`]).config };
      const first = await localModels(config);
      const recorded = await modelDigests(config, first);
      const unet = recorded.teacher.files.find((f) => f.path.endsWith('unet/model.onnx'))!;
      const blob = join(dir, 'cache', 'blobs', unet.sha256);
      const bytes = readFileSync(blob);
      bytes[bytes.length >> 1] ^= 0xff;
      rmSync(blob);
      writeFileSync(blob, bytes); // a new file: the planner's tree keeps its hard link to the good bytes
      const again = await localModels(config, [...recorded.teacher.files, ...recorded.identity.files]);
      assert.equal(sha256Hex(readFileSync(blob)), unet.sha256, 'the damaged blob was replaced');
      const after = await modelDigests(config, again);
      assert.equal(after.teacher.digest, recorded.teacher.digest);
      assert.deepEqual(after.teacher.files.map((f) => f.path), recorded.teacher.files.map((f) => f.path));
      // Planning again lists the model but downloads nothing: every object's ETag is the one it had.
      proxy.reset();
      process.env.AWS_ENDPOINT_URL_S3 = proxy.endpoint;
      const replanned = await modelDigests(config, await localModels(config));
      assert.equal(replanned.teacher.digest, recorded.teacher.digest);
      assert.ok(proxy.requests.some((l) => l.startsWith('GET ') && l.includes('list-type=2')), 'the prefix was listed');
      assert.deepEqual(proxy.requests.filter((l) => l.startsWith('GET ') && !l.includes('list-type') && l.includes('/models/tiny-sd/')), [], 'no model object downloaded again');
    });
  } finally {
    delete process.env.PAIRGEN_MODEL_CACHE;
  }
});

test('bad model URIs, a model changed after planning and an unusable cache are user errors (exit 2)', async () => {
  const dir = tempDir();
  const config = writeConfig(dir, { pairs: 2, shardSize: 2 });
  const cache = { PAIRGEN_MODEL_CACHE: join(dir, 'cache') };
  const out = join(dir, 'run');
  expectUserError(pairgen(['plan', config, '--out', out, '--set', `teacher.model=s3://${s3.bucket}/models/no-such-model`], cache), /teacher\.model: s3:\/\/test\/models\/no-such-model: no objects under this prefix/);
  assert.ok(!existsSync(out), 'nothing written');
  // The same refusals in-process (each is a UserError, so the CLI exits 2 with its message alone).
  const refuses = (sets: string[], message: RegExp, env: Record<string, string> = cache) =>
    withS3Env(async () => {
      const saved = process.env.PAIRGEN_MODEL_CACHE;
      process.env.PAIRGEN_MODEL_CACHE = env.PAIRGEN_MODEL_CACHE;
      try {
        await assert.rejects(checkPipeline(config, sets), (e: Error) => e instanceof UserError && message.test(e.message) && !/hunter2/.test(e.message));
      } finally {
        if (saved === undefined) delete process.env.PAIRGEN_MODEL_CACHE;
        else process.env.PAIRGEN_MODEL_CACHE = saved;
      }
    });
  await refuses([`teacher.model=s3://AKIAEXAMPLE:hunter2@${s3.bucket}/models/tiny-sd`], /^teacher\.model: .*credentials in the URL are not allowed/);
  await refuses(['teacher.model=gs://bucket/models/tiny-sd'], /^teacher\.model: storage URI gs:\/\/bucket\/models\/tiny-sd: unsupported scheme/);
  await refuses(['identity.enabled=true', 'identity.embedder.kind=arcface', `identity.embedder.model=s3://${s3.bucket}/models/arcface.onnx`], /^identity\.embedder\.model: s3:\/\/test\/models\/arcface\.onnx: no such object/);
  writeFileSync(join(dir, 'a-file'), 'not a folder');
  await refuses([`teacher.model=${MODEL_URI()}`], /^model cache .*a-file: cannot create blobs\/ there .*PAIRGEN_MODEL_CACHE/, { PAIRGEN_MODEL_CACHE: join(dir, 'a-file') });

  // Plan over a model of its own on S3, then change it: same size with other bytes, then cut short.
  const uri = `s3://${s3.bucket}/models/changing/tiny-sd`;
  await upload(join(FIXTURES, 'tiny-sd'), uri);
  assert.equal(pairgen(['plan', config, '--out', out, '--set', `teacher.model=${uri}`], cache).code, 0);
  const unet = readFileSync(join(FIXTURES, 'tiny-sd', 'unet', 'model.onnx'));
  const put = (bytes: Uint8Array) => withS3Env(() => openStore(uri).put('unet/model.onnx', bytes));
  const flipped = Buffer.from(unet);
  flipped[flipped.length - 1] ^= 0xff;
  const nodeCache = { PAIRGEN_MODEL_CACHE: join(dir, 'node-cache') };
  await put(flipped);
  expectUserError(pairgen(['work', out], nodeCache), /teacher\.model: s3:\/\/test\/models\/changing\/tiny-sd\/unet\/model\.onnx: its sha256 is [0-9a-f]{64}, run\.json recorded [0-9a-f]{64}/);
  await put(unet.subarray(0, unet.length >> 1));
  expectUserError(pairgen(['work', out], nodeCache), /unet\/model\.onnx: is \d+ bytes, run\.json recorded \d+/);
  const blobs = readdirSync(join(dir, 'node-cache', 'blobs'));
  const recordedUnet = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')).models.teacher.files.find((f: { path: string }) => f.path.endsWith('unet/model.onnx'));
  assert.ok(!blobs.includes(recordedUnet.sha256), 'no blob for the damaged file');
  assert.deepEqual(readdirSync(join(dir, 'node-cache', 'tmp')), [], 'nothing half-downloaded left');
  assert.ok(!existsSync(join(out, 'markers')) || readdirSync(join(out, 'markers')).length === 0, 'no shard tried');
  // Put the planned bytes back: the same run works.
  await put(unet);
  const ok = pairgen(['work', out], nodeCache);
  assert.equal(ok.code, 0, ok.stderr);
});
