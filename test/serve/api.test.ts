/**
 * `pairgen serve` (issue 16, the server half): the real server, started through the CLI as a child
 * process and in process, over real runs made with the tiny diffusers fixture teacher (64 px, 2 steps),
 * identity off and the edit / quality / duplicates scorers. `base` keeps every pair (rule
 * edit.magnitude >= 0); `run` is base refiltered with a rule that drops about half the non-style pairs,
 * so its rejects have stored twins in base: a regenerated reject must be the bytes base kept. Every
 * endpoint is checked against the run's own files (stats.json, the manifest and data files via DuckDB),
 * the what-if against a real refilter, and bad input gets a clear 4xx while the server keeps serving.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { planRun } from '../../src/run/plan.ts';
import { workRun } from '../../src/run/work.ts';
import { finalizeRun } from '../../src/run/finalize.ts';
import { runStatus } from '../../src/run/status.ts';
import { refilterRun } from '../../src/research/index.ts';
import { planRules, readPlan } from '../../src/dataset/run-file.ts';
import { openStore } from '../../src/store/index.ts';
import { judgeRecorded } from '../../src/candidates/verdict.ts';
import { startServer, type RunningServer } from '../../src/serve/server.ts';
import { BIN, FIXTURES, REPO, runAsync, sqlRows, tempDir, writeConfig } from '../helpers/run-fixture.ts';

const dir = tempDir('pairgen-serve-');
const base = join(dir, 'base');
const run = join(dir, 'run');
let threshold = 0;
let served: { child: ChildProcess; url: string };
let inProcess: RunningServer;

function config(name: string, rule: string): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, [
    'seed: 11', 'pairs: 12', 'shard_size: 4',
    `prompts: { set: ${join(REPO, 'prompts/demo.yaml')} }`,
    `teacher: { model: ${join(FIXTURES, 'tiny-sd')}, steps: 2 }`,
    'identity: { enabled: false }',
    'scorers: { enabled: [edit, quality, duplicates] }',
    'rules:',
    `  default: { not_edited: "${rule}" }`,
    '  categories: { style: { not_edited: null } }',
    'output: { image_format: png }',
  ].join('\n'));
  return file;
}

/** `pairgen serve` in a child process; resolves with its URL once it printed the line tests read the port from. */
function serve(runUri: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [BIN, 'serve', runUri, '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
      const m = /serving .* at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stderr);
      if (m) resolve({ child, url: m[1] });
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
  });
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.on('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

async function getJson(url: string): Promise<{ status: number; body: Record<string, any>; headers: Headers }> {
  const r = await fetch(url);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json; charset=utf-8$/, url);
  return { status: r.status, body: (await r.json()) as Record<string, any>, headers: r.headers };
}

/** A GET with the path sent as written (fetch would resolve "..": a browser does, an attacker need not). */
function rawGet(url: string, path: string): Promise<{ status: number; body: string; type: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode!, body, type: String(res.headers['content-type']) }));
    });
    req.on('error', reject);
    req.end();
  });
}

before(async () => {
  await planRun(config('base', 'edit.magnitude >= 0'), base);
  await workRun(base);
  await finalizeRun(base, { preview: false });
  const m = (await sqlRows(`SELECT edit_magnitude AS m FROM '${base}/manifest.parquet' WHERE category <> 'style' ORDER BY m`)).map((r) => Number(r.m));
  threshold = Number(((m[Math.floor(m.length / 2) - 1] + m[Math.floor(m.length / 2)]) / 2).toFixed(6));
  await refilterRun(base, run, { sets: [`rules.default.not_edited=edit.magnitude >= ${threshold}`] });
  served = await serve(run);
  inProcess = await startServer(base, { port: 0 });
});

after(async () => {
  if (served) await stop(served.child);
  await inProcess?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a run that does not exist: exit 2 with one line, before listening', async () => {
  const results = await Promise.all([join(dir, 'nowhere'), dir].map((where) => runAsync(process.execPath, [BIN, 'serve', where, '--port', '0'], { timeout: 30_000 })));
  for (const r of results) {
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /no run here \(no run\.json\)/);
    assert.doesNotMatch(r.stderr, /serving/);
  }
});

test('status, stats, rules and scores are the run\'s own numbers', async () => {
  const stats = JSON.parse(readFileSync(join(run, 'stats.json'), 'utf8'));
  const s = (await getJson(`${served.url}api/status`)).body;
  const expected = await runStatus(run);
  assert.equal(s.state, 'finalized');
  assert.equal(s.run_id, expected.run_id);
  assert.deepEqual(s.shards, { total: 3, committed: 3, failed: 0, pending: 0, invalid: 0 });
  assert.deepEqual(s.candidates, { planned: 12, done: stats.candidates, accepted: stats.accepted, rejected: stats.rejected });
  assert.equal(s.eta_s, 0);
  assert.deepEqual(s.rejected_by_reason, expected.rejected_by_reason);
  assert.equal(s.workers.length, 3);
  for (const w of s.workers) assert.ok(w.seconds === null || w.seconds >= 0);

  const raw = await fetch(`${served.url}api/stats`);
  assert.equal(raw.status, 200);
  assert.deepEqual(await raw.json(), stats);

  const rules = (await getJson(`${served.url}api/rules`)).body;
  const planned = planRules(await readPlan(openStore(run)), run);
  assert.deepEqual(rules.categories.style, []);
  assert.equal(rules.categories.lighting[0].name, 'not_edited');
  assert.deepEqual(rules.categories.lighting[0].conditions, planned.get('lighting')![0].conditions);
  assert.equal(rules.identity.enabled, false);

  const scores = (await getJson(`${served.url}api/scores`)).body;
  assert.equal(scores.identity, null, 'identity is off');
  const edit = scores.scores.find((h: { column: string }) => h.column === 'edit_magnitude');
  assert.ok(edit, 'the edit magnitude histogram');
  const perCategory = await sqlRows(`SELECT category, count(edit_magnitude)::INT AS n FROM '${run}/manifest.parquet' GROUP BY 1`);
  for (const r of perCategory) assert.equal(edit.counts[String(r.category)].reduce((a: number, b: number) => a + b, 0), r.n);
  assert.deepEqual(edit.rules.map((b: { value: number }) => b.value), [threshold]);
});

test('pairs: filter, sort and page match DuckDB over the manifest', async () => {
  const manifest = `'${run}/manifest.parquet'`;
  const all = (await getJson(`${served.url}api/pairs`)).body;
  assert.equal(all.total, 12);
  assert.equal(all.pages, 1);
  assert.deepEqual(all.rows.map((r: { index: number }) => r.index), [...Array(12).keys()]);
  assert.ok('edit_magnitude' in all.rows[0] && 'quality_edited_sharpness' in all.rows[0] && 'file' in all.rows[0]);

  const where = `edit_magnitude >= ${threshold / 2} AND category <> 'style'`;
  const q = new URLSearchParams({ where, verdict: 'rejected', sort: 'edit_magnitude', order: 'desc', per_page: '2' });
  const page0 = (await getJson(`${served.url}api/pairs?${q}`)).body;
  const expected = await sqlRows(`SELECT pair_id FROM ${manifest} WHERE ${where} AND NOT accepted ORDER BY edit_magnitude DESC, "index"`);
  assert.ok(expected.length >= 2, 'the filter should match a few rejects');
  assert.equal(page0.total, expected.length);
  assert.equal(page0.pages, Math.ceil(expected.length / 2));
  const paged: string[] = [];
  for (let p = 0; p < page0.pages; p++) paged.push(...(await getJson(`${served.url}api/pairs?${q}&page=${p}`)).body.rows.map((r: { pair_id: string }) => r.pair_id));
  assert.deepEqual(paged, expected.map((r) => r.pair_id));

  const cat = await sqlRows(`SELECT count(*)::INT AS n FROM ${manifest} WHERE category = 'style' AND split = 'train'`);
  assert.equal((await getJson(`${served.url}api/pairs?category=style&split=train`)).body.total, cat[0].n);

  const bad: [string, RegExp][] = [
    ['where=edit_magnitude >', /where "edit_magnitude >": syntax error/],
    ['where=no_such_column = 1', /unknown column no_such_column/],
    ["where=1=1) UNION SELECT * FROM read_text('/etc/passwd') --", /comments are not allowed|syntax error/],
    ['where=read_text(\'/etc/passwd\') IS NOT NULL', /function read_text\(\) .* is not allowed/],
    ["where=category = 1", /where "category = 1": .*(Conversion|convert|Could not)/i],
    ['sort=no_such_column', /sort=no_such_column: not a manifest column/],
    ['order=sideways', /order=sideways: expected asc or desc/],
    ['per_page=201', /per_page=201: expected a whole number from 1 to 200/],
    ['page=-1', /page=-1: expected a whole number/],
    ['page=1', /page 1 is past the end: 12 matching pairs make 1 page of 48/],
    ['verdict=maybe', /verdict=maybe: expected accepted or rejected/],
    ['colour=red', /unknown parameter "colour"/],
  ];
  for (const [query, message] of bad) {
    const r = await getJson(`${served.url}api/pairs?${new URLSearchParams(Object.fromEntries([query.split(/=(.*)/s).slice(0, 2)]))}`);
    assert.equal(r.status, 400, query);
    assert.match(r.body.error, message, query);
    assert.equal(Object.keys(r.body).join(), 'error');
  }
  assert.equal((await getJson(`${served.url}api/status`)).status, 200, 'the server keeps serving');
});

test('a pair\'s page has its every column and lineage; its images are the data file\'s bytes with caching headers', async () => {
  const [accepted] = await sqlRows(`SELECT * FROM '${run}/manifest.parquet' WHERE accepted ORDER BY "index" LIMIT 1`);
  const id = String(accepted.pair_id);
  const page = (await getJson(`${served.url}api/pairs/${id}`)).body;
  assert.equal(page.stored, true);
  assert.deepEqual(page.images, { source: `/api/pairs/${id}/source`, edited: `/api/pairs/${id}/edited` });
  assert.equal(page.row.pair_id, id);
  assert.equal(page.row.seed, Number(accepted.seed));
  assert.equal(page.row.edit_magnitude, accepted.edit_magnitude);
  assert.deepEqual(page.row.attributes, JSON.parse(String(accepted.attributes)), 'JSON columns parsed');
  assert.deepEqual(page.lineage, { parent_pair_id: accepted.parent_pair_id ?? null, changes: JSON.parse(String(accepted.changes)) });

  const [stored] = await sqlRows(`SELECT source_image.bytes AS s, edited_image.bytes AS e FROM read_parquet('${run}/data/*.parquet') WHERE pair_id = '${id}'`);
  for (const [which, bytes] of [['source', stored.s], ['edited', stored.e]] as const) {
    const r = await fetch(`${served.url}api/pairs/${id}/${which}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'image/png');
    assert.equal(r.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    const etag = r.headers.get('etag');
    assert.match(etag ?? '', /^"[0-9a-f]{32}"$/);
    assert.ok(Buffer.from(await r.arrayBuffer()).equals(Buffer.from(bytes as Uint8Array)), which);
    const again = await fetch(`${served.url}api/pairs/${id}/${which}`, { headers: { 'If-None-Match': etag! } });
    assert.equal(again.status, 304);
  }
  const missing = await getJson(`${served.url}api/pairs/0123456789abcdef`);
  assert.equal(missing.status, 404);
  assert.match(missing.body.error, /no pair 0123456789abcdef/);
});

test('a reject\'s image: 404, then ?regenerate=1 draws it again from its seed (the bytes the run made)', async () => {
  const [reject] = await sqlRows(`SELECT pair_id FROM '${run}/manifest.parquet' WHERE NOT accepted ORDER BY "index" LIMIT 1`);
  const id = String(reject.pair_id);
  const page = (await getJson(`${served.url}api/pairs/${id}`)).body;
  assert.equal(page.stored, false);
  assert.deepEqual(page.images, { source: null, edited: null });
  const r404 = await getJson(`${served.url}api/pairs/${id}/edited`);
  assert.equal(r404.status, 404);
  assert.match(r404.body.error, /rejected \(not_edited\).*\?regenerate=1/);
  // base accepted this pair (its rule kept everything), so it holds the very images the teacher drew.
  const [kept] = await sqlRows(`SELECT source_image.bytes AS s, edited_image.bytes AS e FROM read_parquet('${base}/data/*.parquet') WHERE pair_id = '${id}'`);
  for (const [which, bytes] of [['edited', kept.e], ['source', kept.s]] as const) {
    const r = await fetch(`${served.url}api/pairs/${id}/${which}?regenerate=1`);
    assert.equal(r.status, 200, which);
    assert.equal(r.headers.get('x-pairgen-regenerated'), '1');
    assert.equal(r.headers.get('cache-control'), 'no-store');
    assert.equal(r.headers.get('content-type'), 'image/png');
    assert.ok(Buffer.from(await r.arrayBuffer()).equals(Buffer.from(bytes as Uint8Array)), `${which}: the regenerated bytes are the ones base stored`);
  }
});

test('what-if: the counts a real refilter gives, from the recorded columns; bad sets are 400', async () => {
  // On base (in process), the rule that made `run`: what-if must keep exactly what that refilter kept.
  const set = `rules.default.not_edited=edit.magnitude >= ${threshold}`;
  const w = (await getJson(`${inProcess.url}api/whatif?${new URLSearchParams({ set })}`)).body;
  const refiltered = await sqlRows(`SELECT category, count(*)::INT AS n, count(*) FILTER (WHERE accepted)::INT AS kept FROM '${run}/manifest.parquet' GROUP BY 1`);
  for (const r of refiltered) {
    const c = w.categories[String(r.category)];
    assert.equal(c.candidates, r.n);
    assert.equal(c.kept_now, r.n, 'base kept every pair');
    assert.equal(c.kept, r.kept, String(r.category));
    assert.equal(c.dropped, Number(r.n) - Number(r.kept));
    assert.equal(c.added, 0);
  }
  assert.equal(w.all.kept, refiltered.reduce((n, r) => n + Number(r.kept), 0));
  assert.equal(w.ground_truth, null, 'the fixture teacher records no ground truth');
  assert.equal(w.command, `pairgen refilter ${base} --set 'rules.default.not_edited=edit.magnitude >= ${threshold}' --out ${base}-refiltered`);

  // On run, a laxer rule: judgeRecorded over the manifest decides.
  const laxer = Number((threshold / 2).toFixed(6));
  const w2 = (await getJson(`${served.url}api/whatif?set=${encodeURIComponent(`rules.default.not_edited=edit.magnitude >= ${laxer}`)}`)).body;
  const plan = await readPlan(openStore(run));
  const { runRules } = await import('../../src/scorers/rules.ts');
  const rules = runRules({ config: { ...plan.config, rules: { ...plan.config.rules, default: { not_edited: `edit.magnitude >= ${laxer}` } } } as typeof plan.config, promptRules: {}, categories: Object.keys(plan.prompts.per_category) }, []);
  let added = 0;
  for (const row of await sqlRows(`SELECT * FROM '${run}/manifest.parquet'`)) {
    const v = judgeRecorded({ ...row, category: String(row.category), identity_similarity: null, reject_reason: row.reject_reason as string | null }, plan.config.identity, rules.get(String(row.category)) ?? [], null);
    if (v.accepted && !row.accepted) added++;
  }
  assert.ok(added > 0);
  assert.equal(w2.all.added, added);
  assert.equal(w2.all.dropped, 0);
  const none = (await getJson(`${served.url}api/whatif`)).body;
  assert.equal(none.all.kept, none.all.kept_now);

  for (const [set, message] of [
    ['teacher.steps=3', /set=teacher\.steps=3: expected key=value with a key refilter changes/],
    ['identity.threshold=0.5', /identity\.enabled false/],
    ['rules.default.not_edited=edit.magnitud >= 1', /unknown score edit\.magnitud/],
    ['rules.default.not_edited', /expected key=value/],
  ] as const) {
    const r = await getJson(`${served.url}api/whatif?${new URLSearchParams({ set })}`);
    assert.equal(r.status, 400, set);
    assert.match(r.body.error, message, set);
  }
});

test('path traversal and other bad URLs: a clean 4xx in JSON, and the server keeps serving', async () => {
  const [accepted] = await sqlRows(`SELECT pair_id FROM '${run}/manifest.parquet' WHERE accepted LIMIT 1`);
  const id = String(accepted.pair_id);
  const paths = [
    '/app/../../../../etc/passwd', '/app/..%2f..%2fpackage.json', '/app/%2e%2e/run.json', '/app/.hidden', '/app/sub/x.js',
    `/api/pairs/${id}/..%2f..%2f..%2frun.json`, `/api/pairs/..%2f..%2frun.json/source`, `/api/pairs/${id}/../../run.json`,
    '/api/pairs/%E0%A4%A/source', '/run.json', '/api/nothing', `/api/pairs/${id}/thumbnail`, `/api/pairs/${id}/source?regenerate=yes`,
  ];
  for (const path of paths) {
    const r = await rawGet(served.url, path);
    assert.ok(r.status === 400 || r.status === 404, `${path}: ${r.status}`);
    assert.match(r.type, /^application\/json/, path);
    assert.ok(typeof JSON.parse(r.body).error === 'string', path);
    assert.doesNotMatch(r.body, /root:|"run_id"|plan_digest/, path);
  }
  const post = await fetch(`${served.url}api/status`, { method: 'POST' });
  assert.equal(post.status, 405);
  const rebound = await new Promise<number>((resolve, reject) => {
    const { port } = new URL(served.url);
    request({ host: '127.0.0.1', port, path: '/api/status', headers: { Host: 'evil.example:80' } }, (res) => resolve(res.statusCode!)).on('error', reject).end();
  });
  assert.equal(rebound, 403, 'a request addressed to another host name is refused (DNS rebinding)');
  assert.equal((await getJson(`${served.url}api/status`)).status, 200, 'the server keeps serving');
});

test('the app: index.html at /, files at /app/<name> with their types and caching', async () => {
  const app = join(dir, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'index.html'), '<!doctype html><title>t</title>');
  writeFileSync(join(app, 'app.js'), 'export {};');
  writeFileSync(join(app, 'app.css'), 'body {}');
  const s = await startServer(run, { port: 0, appDir: app });
  try {
    const index = await fetch(s.url);
    assert.equal(index.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(index.headers.get('cache-control'), 'no-cache');
    assert.equal(await index.text(), '<!doctype html><title>t</title>');
    const js = await fetch(`${s.url}app/app.js`);
    assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.match(js.headers.get('cache-control')!, /max-age/);
    assert.equal((await fetch(`${s.url}app/app.css`)).headers.get('content-type'), 'text/css; charset=utf-8');
    assert.equal((await fetch(`${s.url}app/missing.js`)).status, 404);
  } finally {
    await s.close();
  }
});

test('status while a run is in progress: the committed count goes up as a worker commits shards', async () => {
  const live = join(dir, 'live');
  const sub = join(dir, 'live-config');
  mkdirSync(sub);
  await planRun(writeConfig(sub, { pairs: 12, shardSize: 2, steps: 2 }), live);
  const server = await serve(live);
  try {
    const first = (await getJson(`${server.url}api/status`)).body;
    assert.equal(first.state, 'running');
    assert.deepEqual(first.shards, { total: 6, committed: 0, failed: 0, pending: 6, invalid: 0 });
    assert.equal((await getJson(`${server.url}api/pairs`)).status, 404, 'no manifest before finalize');
    const worker = runAsync(process.execPath, [BIN, 'work', live]);
    const seen: number[] = [];
    let done = false;
    void worker.then(() => (done = true));
    while (!done) {
      seen.push((await getJson(`${server.url}api/status`)).body.shards.committed);
      await new Promise((r) => setTimeout(r, 150));
    }
    assert.equal((await worker).status, 0);
    await new Promise((r) => setTimeout(r, 1100)); // past the status cache
    const last = (await getJson(`${server.url}api/status`)).body;
    assert.equal(last.shards.committed, 6);
    assert.equal(last.state, 'finished');
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i] >= seen[i - 1], `committed never goes down: ${seen}`);
    assert.ok(new Set(seen.filter((n) => n > 0 && n < 6)).size >= 1, `saw the run part-way: ${seen}`);
    assert.ok(last.workers.length === 6 && last.workers.every((w: { committed_at?: string }) => typeof w.committed_at === 'string'));
  } finally {
    await stop(server.child);
  }
});

test('what-if on a demo run: precision and recall against the ground truth, as a real refilter\'s stats.json reports them', async () => {
  const { ensureReferenceTeacher } = await import('../../src/reference/index.ts');
  await ensureReferenceTeacher();
  const demo = join(dir, 'demo');
  const made = await runAsync(process.execPath, [BIN, '-q', 'run', join(REPO, 'pipelines/demo.yaml'), '--out', demo, '--pairs', '16', '--shard-size', '8']);
  assert.equal(made.status, 0, made.stderr);
  const server = await startServer(demo, { port: 0 });
  try {
    const stats = JSON.parse(readFileSync(join(demo, 'stats.json'), 'utf8'));
    const now = (await getJson(`${server.url}api/whatif`)).body;
    assert.deepEqual(now.ground_truth_now, { identity: stats.identity_vs_ground_truth, edit: stats.edit_vs_ground_truth.edit, pair: stats.edit_vs_ground_truth.pair });
    assert.deepEqual(now.ground_truth, now.ground_truth_now);
    // Every category's threshold raised to the median similarity of the accepted pairs: about half are dropped.
    const kept = (await sqlRows(`SELECT identity_similarity AS s FROM '${demo}/manifest.parquet' WHERE accepted ORDER BY s`)).map((r) => Number(r.s));
    const raised = Number(kept[Math.floor(kept.length / 2)].toFixed(4));
    const sets = Object.keys(stats.by_category).map((c) => `identity.category_thresholds.${c}=${raised}`);
    const w = (await getJson(`${server.url}api/whatif?${new URLSearchParams(sets.map((s) => ['set', s]))}`)).body;
    assert.ok(w.all.dropped > 0, 'the raised thresholds drop some pairs');
    const out = join(dir, 'demo-refiltered');
    await refilterRun(demo, out, { sets });
    const after = JSON.parse(readFileSync(join(out, 'stats.json'), 'utf8'));
    assert.deepEqual(w.ground_truth, { identity: after.identity_vs_ground_truth, edit: after.edit_vs_ground_truth.edit, pair: after.edit_vs_ground_truth.pair });
    for (const [category, c] of Object.entries(after.by_category as Record<string, { accepted: number }>)) assert.equal(w.categories[category].kept, c.accepted, category);
    assert.equal(w.all.kept, after.accepted);
  } finally {
    await server.close();
  }
});
