/**
 * Planted secrets never leave the process: distinctive strings in the standard AWS variables and in an
 * endpoint URL, the real CLI verbs (check, plan, work, status, finalize and error paths, in both log
 * formats) against the loopback S3 server and a local folder, then every output is searched: stdout,
 * stderr, every file of the run on S3 (s3rver's own folder, metadata included) and on disk, run.json.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BIN, inBatches, readTree, runAsync, tempDir, writeConfig } from '../helpers/run-fixture.ts';
import { startS3Server, type S3Server } from '../helpers/s3server.ts';

const SECRET_ACCESS_KEY = 'PlantedSecretAccessKey/q7+Zx0xC0FFEE';
const SESSION_TOKEN = 'PlantedSessionTokenXyZ0xBADF00D';
const URL_USER = 'AKIAPLANTEDURLUSER';
const URL_PASSWORD = 'PlantedUrlPassword/Kq9+0xFEED';
const PLANTED = [SECRET_ACCESS_KEY, SESSION_TOKEN, URL_USER, URL_PASSWORD];
/** Each secret as it could appear: raw, URL-encoded, base64. */
const FORMS = PLANTED.flatMap((s) => [s, encodeURIComponent(s), Buffer.from(s).toString('base64')]);

let s3: S3Server;
let dir: string;
/** The test's own configs (one holds a planted secret): the only folder not searched. */
let inputs: string;
let env: Record<string, string>;
const outputs: { what: string; text: string }[] = [];

before(async () => {
  s3 = await startS3Server();
  dir = tempDir('pairgen-secrets-');
  inputs = join(dir, 'inputs');
  mkdirSync(inputs);
  env = { ...s3.env, AWS_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY, AWS_SESSION_TOKEN: SESSION_TOKEN };
});
after(async () => {
  await s3.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Run the CLI; keep its stdout and stderr for the final search. */
function pairgen(args: string[], extraEnv: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env, ...extraEnv }, timeout: 300_000 });
  outputs.push({ what: `stdout of ${args.join(' ')}`, text: r.stdout }, { what: `stderr of ${args.join(' ')}`, text: r.stderr });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The same, a process that does not block the test (for calls run a few at a time). */
async function pairgenAsync(args: string[], extraEnv: Record<string, string> = {}) {
  const r = await runAsync(process.execPath, [BIN, ...args], { env: { ...process.env, ...env, ...extraEnv }, timeout: 300_000 });
  outputs.push({ what: `stdout of ${args.join(' ')}`, text: r.stdout }, { what: `stderr of ${args.join(' ')}`, text: r.stderr });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(args: string[]) {
  const r = pairgen(args);
  assert.equal(r.code, 0, `pairgen ${args.join(' ')}: ${r.stderr}`);
}

function refused(r: { code: number | null; stderr: string }, message: RegExp) {
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

const endpointWithSecret = () => s3.endpoint.replace('http://', `http://${URL_USER}:${URL_PASSWORD}@`);

test('the verbs work against S3 and a local folder with the planted AWS variables, in both log formats', () => {
  const config = writeConfig(inputs, { pairs: 4, shardSize: 2, steps: 2 });
  const run = `s3://${s3.bucket}/secrets-run`;
  for (const format of ['human', 'json']) ok(['--log-format', format, 'check', config]);
  ok(['--log-format', 'json', 'plan', config, '--out', run]);
  ok(['work', run]);
  ok(['--log-format', 'json', 'work', run]); // everything committed: the skip path
  for (const format of ['human', 'json']) ok(['--log-format', format, 'status', run, '--verify']);
  ok(['finalize', run, '--no-preview']);

  const local = join(dir, 'local-run');
  ok(['plan', config, '--out', local]);
  ok(['--log-format', 'json', 'work', local]);
  ok(['status', local]);
  assert.ok(existsSync(join(local, 'run.json')));
});

test('credentials in an endpoint URL are refused at once, from the config, --set or the AWS variables, naming where', async () => {
  const withEndpoint = writeConfig(inputs, { name: 'endpoint', pairs: 4, shardSize: 2, extra: `storage:\n  endpoint: ${endpointWithSecret()}` });
  const config = writeConfig(inputs, { pairs: 4, shardSize: 2, steps: 2 });
  const localOut = join(dir, 'never-written');
  const cases: { args: string[]; env?: Record<string, string>; message: RegExp }[] = [];
  for (const format of ['human', 'json']) {
    const f = ['--log-format', format];
    cases.push(
      { args: [...f, 'check', withEndpoint], message: /endpoint\.yaml: storage\.endpoint: credentials in the URL are not allowed/ },
      { args: [...f, 'plan', withEndpoint, '--out', `s3://${s3.bucket}/never`], message: /storage\.endpoint: credentials in the URL are not allowed/ },
      { args: [...f, 'plan', withEndpoint, '--out', localOut], message: /storage\.endpoint: credentials in the URL are not allowed/ },
      { args: [...f, 'plan', config, '--out', localOut, '--set', `storage.endpoint=${endpointWithSecret()}`], message: /storage\.endpoint: credentials in the URL/ },
      { args: [...f, 'status', `s3://${URL_USER}:${URL_PASSWORD}@${s3.bucket}/secrets-run`], message: /credentials in the URL are not allowed/ },
    );
    for (const variable of ['AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL']) {
      const fromEnv = { AWS_ENDPOINT_URL_S3: '', [variable]: endpointWithSecret() };
      cases.push(
        { args: [...f, 'status', `s3://${s3.bucket}/secrets-run`], env: fromEnv, message: new RegExp(`${variable}: credentials in the URL are not allowed`) },
        { args: [...f, 'work', `s3://${s3.bucket}/secrets-run`], env: fromEnv, message: new RegExp(`${variable}: credentials in the URL`) },
      );
    }
  }
  const results = await inBatches(cases, 3, (c) => pairgenAsync(c.args, c.env));
  results.forEach((r, i) => refused(r, cases[i].message));
  assert.ok(!existsSync(localOut), 'nothing written');
  assert.ok(!existsSync(join(s3.directory, s3.bucket, 'never')), 'nothing written');
});

test('error paths that print the endpoint (a missing bucket, an unknown access key) in both log formats', () => {
  for (const format of ['human', 'json']) {
    refused(pairgen(['--log-format', format, 'status', 's3://no-such-bucket/run']), /bucket 'no-such-bucket' does not exist at http:\/\/127\.0\.0\.1/);
    refused(pairgen(['--log-format', format, 'status', `s3://${s3.bucket}/secrets-run`], { AWS_ACCESS_KEY_ID: 'WRONGKEY' }), /InvalidAccessKeyId/);
  }
});

test('no planted secret appears in any output, any file of the runs, or run.json', () => {
  const searched = [...outputs];
  const files = (root: string) => [...readTree(root)].map(([rel, bytes]) => ({ what: `${root}/${rel}`, text: bytes.toString('latin1') }));
  searched.push(...files(s3.directory));
  for (const folder of readdirSync(dir)) if (folder !== 'inputs') searched.push(...files(join(dir, folder)));
  const names = searched.map((s) => s.what);
  assert.ok(names.some((n) => n.endsWith('local-run/run.json')) && names.some((n) => /secrets-run\/run\.json/.test(n)), 'both run.json files are searched');
  assert.ok(names.some((n) => /secrets-run\/.*shard-00000\.json/.test(n)), 'the S3 run\'s commit markers are searched');
  assert.ok(outputs.length >= 60, `${outputs.length} outputs`);
  for (const { what, text } of searched) {
    for (const secret of FORMS) assert.ok(!text.includes(secret), `${what} contains a planted secret`);
  }
  // The search is not vacuous: the endpoint shows up in outputs, and the config that held a secret has it.
  assert.ok(readFileSync(join(inputs, 'endpoint.yaml'), 'utf8').includes(URL_PASSWORD));
  assert.ok(outputs.some((o) => o.text.includes(s3.endpoint)));
  assert.ok(readdirSync(dir).includes('local-run'));
  assert.ok(readFileSync(join(dir, 'local-run', 'run.json'), 'utf8').length > 0);
});
