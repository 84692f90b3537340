/**
 * `pairgen query` and every `--where` can read only the run (issue 13): DuckDB sandboxed to the run's
 * own files, `--where` parsed instead of pasted, a row and byte limit on a query's result. Through the
 * real CLI on a real finished run (tiny-sd fixture teacher), and on the loopback S3 server.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { planRun } from '../../src/run/plan.ts';
import { workRun } from '../../src/run/work.ts';
import { finalizeRun } from '../../src/run/finalize.ts';
import { predicateSql } from '../../src/dataset/predicate.ts';
import { exportRun } from '../../src/research/index.ts';
import { isUserError } from '../../src/errors.ts';
import { openStore } from '../../src/store/index.ts';
import { startS3Server, type S3Server } from '../helpers/s3server.ts';
import { BIN, FIXTURES, inBatches, runAsync, sqlRows, tempDir, writeFlowConfig } from '../helpers/run-fixture.ts';

const dir = tempDir('pairgen-query-sandbox-');
const run = join(dir, 'run');
// DuckDB installs extensions under $HOME/.duckdb: a fresh HOME shows whether any install was tried.
const home = join(dir, 'home');
let manifestColumns: string[] = [];
let s3: S3Server;

before(async () => {
  mkdirSync(home);
  const config = writeFlowConfig(dir, 'run', { seed: 5, pairs: 8, shardSize: 4, teacher: `model: ${join(FIXTURES, 'tiny-sd')}, steps: 2`, identity: 'enabled: false' });
  await planRun(config, run);
  await workRun(run);
  await finalizeRun(run, { preview: false });
  manifestColumns = (await sqlRows(`SELECT column_name FROM (DESCRIBE SELECT * FROM read_parquet('${run}/manifest.parquet'))`)).map((r) => String(r.column_name));
  s3 = await startS3Server({ processEnv: true });
});

after(async () => {
  await s3?.stop();
});

function pairgen(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: dir, env: { ...process.env, HOME: home, ...env }, timeout: 120_000 });
}

/** pairgen without blocking, for running several calls at once. */
function pairgenAsync(args: string[]) {
  return runAsync(process.execPath, [BIN, ...args], { cwd: dir, env: { ...process.env, HOME: home }, timeout: 120_000 });
}

/** Exit 2 with one line on stderr matching `message`, no stack. */
function userError(r: { status: number | null; stderr: string }, message: RegExp, what: string): void {
  assert.equal(r.status, 2, `${what}: exit ${r.status}\n${r.stderr}`);
  assert.match(r.stderr, message, what);
  assert.equal(r.stderr.trim().split('\n').length, 1, `${what}: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at /, `${what}: a user error printed a stack`);
}

const files = (d: string) => readdirSync(d, { recursive: true, withFileTypes: false }).map(String).sort();

test('query reads only the run: file functions, other files, http, extensions, settings and EXPORT are refused', async () => {
  const before = files(dir);
  const cases: [string, RegExp][] = [
    ["SELECT * FROM read_text('/etc/passwd')", /Permission Error: Cannot access file "\/etc\/passwd"/],
    ["SELECT * FROM read_csv('/etc/passwd')", /Permission Error/],
    ["SELECT * FROM read_blob('/etc/passwd')", /Permission Error/],
    ["SELECT * FROM read_json('/etc/hostname')", /Permission Error/],
    ["SELECT * FROM glob('/etc/*')", /Permission Error/],
    [`SELECT * FROM read_parquet('${join(FIXTURES, '..', '..', '..', 'package.json')}')`, /Permission Error/],
    // A run file that is not one of a view's files (run.json) is outside the sandbox too.
    [`SELECT content FROM read_text('${run}/run.json')`, /Permission Error/],
    [`SELECT * FROM read_parquet('${run}/*.parquet')`, /Permission Error/],
    ["SELECT * FROM read_parquet('http://127.0.0.1:9/x.parquet')", /Permission Error/],
    ["SELECT * FROM 'https://example.com/a.csv'", /Permission Error/],
    ["SELECT * FROM sqlite_scan('/tmp/x.db', 't')", /sqlite_scan/],
    [`EXPORT DATABASE '${join(dir, 'exported')}'`, /Permission Error: Cannot access directory/],
    ["SELECT * FROM query('SET enable_external_access = true')", /single SELECT/],
    ['SET enable_external_access = true', /only SELECT/],
    ['SELECT 1; SET lock_configuration = false', /expected one SQL statement, got 2/],
    [`COPY (SELECT 1) TO '${join(dir, 'copied.csv')}'`, /Permission Error|only SELECT/],
    [`ATTACH '${join(dir, 'attached.db')}'`, /Permission Error|only SELECT/],
  ];
  const results = await inBatches(cases, 3, ([sql]) => pairgenAsync(['query', run, sql]));
  for (const [i, [sql, message]] of cases.entries()) {
    const r = results[i];
    userError(r, message, sql);
    if (/Permission Error/.test(r.stderr)) assert.match(r.stderr, /a query reads only the run's views \(manifest, pairs, rejects, prompts, candidates\)/);
  }
  assert.deepEqual(files(dir), before, 'a refused query created files');
  assert.equal(existsSync(join(home, '.duckdb')), false, 'DuckDB tried to install an extension');
});

test('legitimate queries still work: views, joins, json, parquet; the run files are still readable as views', async () => {
  const byCategory = pairgen(['query', run, 'SELECT category, count(*) AS n FROM manifest GROUP BY 1 ORDER BY 1', '--format', 'json']);
  assert.equal(byCategory.status, 0, byCategory.stderr);
  const expected = await sqlRows(`SELECT category, count(*)::INT AS n FROM read_parquet('${run}/manifest.parquet') GROUP BY 1 ORDER BY 1`);
  assert.deepEqual(byCategory.stdout.trim().split('\n').map((l) => JSON.parse(l)), expected);
  const pairs = pairgen(['query', run, 'SELECT count(*) AS n, sum(octet_length(edited_image.bytes)) > 0 AS bytes FROM pairs']);
  assert.equal(pairs.status, 0, pairs.stderr);
  assert.match(pairs.stdout, /^8\s+true$/m);
  const out = join(dir, 'joined.parquet');
  const joined = pairgen(['query', run, 'SELECT m.pair_id, p.source_prompt FROM manifest m JOIN prompts p USING (prompt_id) ORDER BY m."index" DESC', '--format', 'parquet', '--out', out]);
  assert.equal(joined.status, 0, joined.stderr);
  const written = await sqlRows(`SELECT pair_id FROM '${out}'`);
  const order = await sqlRows(`SELECT pair_id FROM read_parquet('${run}/manifest.parquet') ORDER BY "index" DESC`);
  assert.deepEqual(written, order, 'the Parquet result keeps the query\'s order');
});

test('a result over the row or byte limit ends quickly with exit 2 and says how to raise the limit', () => {
  // 50 billion rows: a query that did not stop at the limit would never finish, and pairgen()'s timeout
  // fails it (no wall-clock assertion needed).
  for (const format of ['table', 'json']) {
    const r = pairgen(['query', run, 'SELECT * FROM range(50000000000)', '--format', format]);
    userError(r, /more than 100000 rows \(--limit 100000\).*raise the limit with --limit N/, format);
    assert.equal(r.stdout, '', 'nothing printed');
  }
  const out = join(dir, 'big.parquet');
  userError(pairgen(['query', run, 'SELECT * FROM range(50000000000)', '--format', 'parquet', '--out', out]), /more than 100000 rows/, 'parquet');
  assert.equal(existsSync(out), false);

  const exact = pairgen(['query', run, 'SELECT * FROM range(500)', '--limit', '500', '--format', 'json']);
  assert.equal(exact.status, 0, exact.stderr);
  assert.equal(exact.stdout.trim().split('\n').length, 500);
  userError(pairgen(['query', run, 'SELECT * FROM range(500)', '--limit', '499']), /more than 499 rows/, '--limit 499');
  userError(pairgen(['query', run, "SELECT repeat('x', 1000) FROM range(500)", '--max-bytes', '10000']), /larger than 10000 bytes \(--max-bytes 10000\).*--max-bytes N/, 'table bytes');
  userError(pairgen(['query', run, "SELECT repeat('x', 1000) FROM range(50)", '--format', 'json', '--max-bytes', '10000']), /larger than 10000 bytes/, 'json bytes');
  userError(pairgen(['query', run, 'SELECT * FROM range(100000)', '--format', 'parquet', '--out', out, '--max-bytes', '1000']), /larger than 1000 bytes/, 'parquet bytes');
  assert.equal(existsSync(out), false);
  const zero = pairgen(['query', run, 'SELECT 1', '--limit', '0']);
  assert.equal(zero.status, 2, zero.stderr);
  assert.match(zero.stderr, /--limit must be a whole number ≥ 1/);
});

test('--where injections into preview, export and regenerate exit 2 and write nothing', async () => {
  const injections: [string, RegExp][] = [
    ['true) UNION ALL (SELECT * FROM manifest', /syntax error at position 5: expected AND, OR or the end of the condition, got "\)"/],
    ["pair_id IN (SELECT content FROM read_text('/etc/passwd'))", /subqueries are not allowed \(position 13\)/],
    ["length((SELECT content FROM read_text('/etc/passwd'))) > 0", /subqueries are not allowed/],
    ["read_text('/etc/passwd') IS NOT NULL", /function read_text\(\) at position 1 is not allowed/],
    ["category = 'style'; SELECT 1", /";" is not allowed/],
    ['shard = 1 -- a comment', /comments are not allowed/],
    ["category = 'style' /* x */", /comments are not allowed/],
    ['accepted::INT = 1', /unexpected character ":"/],
    ['no_such_column > 1', /unknown column no_such_column at position 1 \(manifest columns: pair_id, /],
    ["category = 'style", /the string is not closed/],
    ['exists (SELECT 1)', /expected a column, a value or "\("/],
  ];
  // Every case through preview; the two injections (and a function call) through all three verbs.
  const verbs: [string, (where: string, out: string) => string[], [string, RegExp][]][] = [
    ['preview', (where, out) => ['preview', run, '--where', where, '--out', `${out}.png`], injections],
    ['export', (where, out) => ['export', run, '--format', 'webdataset', '--where', where, '--out', out], injections.slice(0, 4)],
    ['regenerate', (where, out) => ['regenerate', run, '--where', where, '--out', out], injections.slice(0, 4)],
  ];
  const calls = verbs.flatMap(([verb, args, cases]) => cases.map(([where, message]) => ({ verb, where, message, args: args(where, join(dir, `${verb}-out`)) })));
  const before = files(dir);
  const results = await inBatches(calls, 3, (c) => pairgenAsync(c.args));
  for (const [i, { verb, where, message }] of calls.entries()) {
    userError(results[i], new RegExp(`^error: --where ${JSON.stringify(where).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*${message.source}`), `${verb} --where ${where}`);
  }
  assert.deepEqual(files(dir), before, 'a refused --where wrote something');
});

test('legitimate --where conditions select exactly what DuckDB selects with the same SQL', async () => {
  const conditions = [
    "category = 'style'",
    "category <> 'style' AND accepted",
    'NOT accepted OR identity_similarity IS NULL',
    '"index" % 2 = 1',
    'index < 3 OR shard = 1',
    "category IN ('lighting', 'style')",
    'seed BETWEEN 0 AND 4000000000000000',
    "instruction LIKE '%photo%'",
    "instruction NOT ILIKE '%PHOTO%'",
    "json_extract_string(attributes, '$.edit') = 'popart'",
    "lower(category) = 'style' AND -shard * 2 + 1 < 0",
    "split = 'train' AND identity_similarity IS NULL",
    "category || '!' = 'style!'",
    "source_prompt = 'it''s'",
  ];
  const file = `read_parquet('${run}/manifest.parquet')`;
  let nonEmpty = 0;
  for (const condition of conditions) {
    const sql = predicateSql(condition, { option: '--where', view: 'manifest', columns: manifestColumns });
    const mine = await sqlRows(`SELECT pair_id FROM ${file} WHERE ${sql} ORDER BY "index"`);
    const theirs = await sqlRows(`SELECT pair_id FROM ${file} WHERE (${condition}) ORDER BY "index"`);
    assert.deepEqual(mine, theirs, condition);
    if (mine.length > 0 && mine.length < 8) nonEmpty++;
  }
  assert.ok(nonEmpty >= 8, `only ${nonEmpty} conditions select some but not all pairs`);
  // Precedence is kept and every operation is parenthesised; identifiers quoted, literals escaped.
  assert.equal(predicateSql("a OR b AND NOT c = 'x''y'", { option: '--where', view: 'v', columns: ['a', 'b', 'C'] }), `("a" OR ("b" AND (NOT ("C" = 'x''y'))))`);
  assert.equal(predicateSql('"we""ird" + 1 * 2 >= -3', { option: '--where', view: 'v', columns: ['we"ird'] }), `(("we""ird" + (1 * 2)) >= (-3))`);
  assert.throws(() => predicateSql('  ', { option: '--where', view: 'manifest', columns: manifestColumns }), (e) => isUserError(e) && /--where is empty/.test(e.message));
  const deep = `${'('.repeat(5000)}accepted${')'.repeat(5000)}`;
  assert.throws(() => predicateSql(deep, { option: '--where', view: 'manifest', columns: manifestColumns }), (e) => isUserError(e) && /nested deeper than 100 levels/.test(e.message));

  const exported = await exportRun(run, join(dir, 'wds'), { format: 'webdataset', where: "category IN ('lighting', 'style')" });
  const expected = await sqlRows(`SELECT count(*)::INT AS n FROM ${file} WHERE accepted AND category IN ('lighting', 'style')`);
  assert.equal(exported.pairs, expected[0].n);
});

test('an s3:// run: its files are copied to a temp folder and only they are readable', async () => {
  const store = openStore(`s3://${s3.bucket}/runs/sandboxed`);
  for (const e of readdirSync(run, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) await store.put(relative(run, join(e.parentPath, e.name)), readFileSync(join(e.parentPath, e.name)));
  }
  const uri = store.uri;
  const ok = pairgen(['query', uri, 'SELECT count(*) AS n FROM manifest', '--format', 'json'], s3.env);
  assert.equal(ok.status, 0, ok.stderr);
  assert.deepEqual(JSON.parse(ok.stdout), { n: 8 });
  userError(pairgen(['query', uri, "SELECT * FROM read_text('/etc/passwd')"], s3.env), /Permission Error/, 's3 read_text');
  userError(pairgen(['query', uri, `SELECT * FROM read_parquet('s3://${s3.bucket}/runs/sandboxed/manifest.parquet')`], s3.env), /Permission Error/, 's3 read_parquet');
  userError(pairgen(['preview', uri, '--where', 'true) UNION ALL (SELECT * FROM manifest', '--out', join(dir, 's3.png')], s3.env), /--where/, 's3 preview');
});
