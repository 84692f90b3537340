/**
 * `pairgen serve`'s pages in a real browser (issue 16): Debian's chromium driven by playwright-core, the
 * server started through the CLI over a small demo run (the reference teacher: real scores, and ground
 * truth for precision and recall). Every number the pages show is checked against the run's own
 * stats.json and manifest.parquet; the progress page is watched while a `work` process commits shards.
 * Where chromium is not installed (`make browser` installs it as root), the tests are skipped and say so.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ensureReferenceTeacher } from '../../src/reference/index.ts';
import { sqlRows } from '../helpers/run-fixture.ts';
import { DEMO, browserMissing, launchBrowser, pairgen, pairgenChild, serve, type Served } from './harness.ts';

const missing = browserMissing();
const skip = missing ? `the browser tests were NOT run: ${missing}` : false;
const tmp = mkdtempSync(join(tmpdir(), 'pairgen-browser-'));
const run = join(tmp, 'demo');
let served: Served;
let browser: Browser;
let stats: Stats;

interface Counts {
  candidates: number;
  accepted: number;
  rejected: number;
  acceptance_rate: number;
  reject_reasons: Record<string, number>;
}
interface Stats extends Counts {
  by_category: Record<string, Counts>;
  identity_vs_ground_truth: { precision: number; recall: number };
}

before(async () => {
  if (skip) return;
  await ensureReferenceTeacher();
  await pairgen('run', DEMO, '--out', run, '--pairs', '24', '--shard-size', '12');
  stats = JSON.parse(readFileSync(join(run, 'stats.json'), 'utf8')) as Stats;
  served = await serve(run);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await served?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

/** A page that fails its test on any script error or console error of the app. */
async function open(path: string, base = served.url): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await page.goto(`${base}#${path}`);
  return { page, problems };
}

/** Wait until the pair browser shows the answer to the query in the page's URL now. */
async function pairsShown(page: Page): Promise<void> {
  const hash = new URL(page.url()).hash;
  await page.locator(`[data-testid="page-pairs"][data-hash="${hash.replace(/["\\]/g, '\\$&')}"] [data-testid="pairs-results"][data-loaded]`).waitFor();
}

const text = async (page: Page, testid: string) => ((await page.getByTestId(testid).first().textContent()) ?? '').trim();
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const manifest = (sql: string) => sqlRows(sql.replace('manifest', `read_parquet('${join(run, 'manifest.parquet')}')`));

test('every page loads and shows the numbers of stats.json', { skip }, async () => {
  const { page, problems } = await open('/progress');
  await page.locator('[data-testid="run-state"][data-state="finalized"]').waitFor();
  assert.equal(await text(page, 'shards-committed'), '2');
  assert.equal(await text(page, 'shards-pending'), '0');
  assert.equal(await text(page, 'candidates-done'), String(stats.candidates));
  assert.equal(await text(page, 'candidates-accepted'), String(stats.accepted));
  assert.equal(await text(page, 'candidates-rejected'), String(stats.rejected));
  assert.equal(await page.getByTestId('workers').locator('tbody tr').count(), 2);
  assert.equal(await text(page, 'failed-shards'), 'None.');

  await page.getByTestId('nav-scores').click();
  await page.getByTestId('page-scores').waitFor();
  assert.equal(await text(page, 'stat-candidates'), String(stats.candidates));
  assert.equal(await text(page, 'stat-accepted'), String(stats.accepted));
  assert.equal(await text(page, 'stat-rejected'), String(stats.rejected));
  assert.equal(await text(page, 'stat-acceptance'), pct(stats.acceptance_rate));
  for (const [cat, c] of Object.entries(stats.by_category)) {
    assert.equal(await text(page, `cat-accepted-${cat}`), String(c.accepted), cat);
    assert.equal(await text(page, `cat-rejected-${cat}`), String(c.rejected), cat);
    assert.equal(await text(page, `cat-acceptance-${cat}`), pct(c.acceptance_rate), cat);
  }
  for (const [reason, n] of Object.entries(stats.reject_reasons)) assert.equal(await text(page, `reason-${reason}`), String(n), reason);
  // One identity histogram per category with its threshold, and the rules' scores drawn with their bounds.
  assert.equal(await page.getByTestId('identity-charts').locator('svg').count(), Object.keys(stats.by_category).length);
  assert.match(await page.getByTestId('identity-charts').textContent() ?? '', /threshold 0\.71/);
  assert.match(await page.getByTestId('scores-ruled').textContent() ?? '', /not_edited/);
  assert.ok((await page.locator('[data-testid^="score-"] svg rect').count()) > 100, 'the score histograms have bars');
  assert.equal(await page.getByTestId('ground-truth').locator('tbody tr').first().locator('td').nth(1).textContent(), pct(stats.identity_vs_ground_truth.precision));

  await page.getByTestId('nav-pairs').click();
  await page.waitForURL(/#\/pairs$/);
  await pairsShown(page);
  assert.equal(await text(page, 'pairs-total'), String(stats.candidates));

  await page.getByTestId('nav-whatif').click();
  await page.getByTestId('whatif-table').waitFor();
  assert.equal(await text(page, 'whatif-kept-all'), String(stats.accepted));
  assert.equal(await text(page, 'truth-identity-precision'), pct(stats.identity_vs_ground_truth.precision));

  assert.equal(await page.getByTestId('error').count(), 0, 'no page shows an error');
  assert.deepEqual(problems, []);
  await page.close();
});

test('the pair browser filters, sorts and pages, and a bad filter is a clear message', { skip }, async () => {
  const { page, problems } = await open('/pairs?per_page=10');
  await pairsShown(page);
  assert.equal(await text(page, 'page-info'), 'page 1 of 3');
  const ids = async () => page.getByTestId('pair-card').evaluateAll((cards) => cards.map((c) => (c as HTMLElement).dataset.pairId));
  const first = await ids();
  assert.equal(first.length, 10);
  await page.getByTestId('next-page').click();
  await page.waitForURL(/page=1/);
  await pairsShown(page);
  assert.equal(await text(page, 'page-info'), 'page 2 of 3');
  const second = await ids();
  assert.equal(second.length, 10);
  assert.ok(!second.some((id) => first.includes(id)), 'page 2 shows other pairs than page 1');
  await page.getByTestId('last-page').click();
  await page.waitForURL(/page=2/);
  await pairsShown(page);
  assert.equal(await text(page, 'page-info'), 'page 3 of 3');
  assert.equal((await ids()).length, 4);
  // The pages in manifest order are the manifest's pairs by index.
  const byIndex = (await manifest('SELECT pair_id FROM manifest ORDER BY index')).map((r) => r.pair_id);
  assert.deepEqual([...first, ...second], byIndex.slice(0, 20));

  // Verdict and category selects, then a predicate.
  await page.getByTestId('filter-verdict').selectOption('rejected');
  await page.waitForURL(/verdict=rejected/);
  await pairsShown(page);
  assert.equal(await text(page, 'pairs-total'), String(stats.rejected));
  for (const v of await page.getByTestId('pair-verdict').allTextContents()) assert.match(v, /^rejected: /);
  await page.getByTestId('filter-where').fill("category = 'style'");
  await page.getByTestId('filter-apply').click();
  await page.waitForURL(/where=/);
  await pairsShown(page);
  assert.equal(await text(page, 'pairs-total'), String(stats.by_category.style.rejected));
  for (const m of await page.locator('[data-testid="pair-card"] .meta').allTextContents()) assert.match(m, /^style · /);

  // Sorted by a score, descending: the cards' values do not increase.
  await page.goto(`${served.url}#/pairs?sort=edit_magnitude&order=desc&per_page=48`);
  await pairsShown(page);
  assert.equal(await page.getByTestId('filter-sort-select').inputValue(), 'edit_magnitude');
  const shown = (await page.locator('dd[data-column="edit_magnitude"]').allTextContents()).map(Number);
  assert.equal(shown.length, stats.candidates);
  assert.deepEqual(shown, [...shown].sort((a, b) => b - a));

  // A filter naming no column: the server's one-line message, and the page still works.
  await page.getByTestId('filter-where').fill('no_such_column > 1');
  await page.getByTestId('filter-apply').click();
  await page.waitForURL(/no_such_column/);
  await pairsShown(page);
  assert.match(await text(page, 'error-message'), /no_such_column/);
  await page.goto(`${served.url}#/pairs?page=99`);
  await pairsShown(page);
  assert.match(await text(page, 'error-message'), /past the end/);
  await page.goto(`${served.url}#/pairs`);
  await pairsShown(page);
  assert.equal(await text(page, 'pairs-total'), String(stats.candidates));
  assert.equal(await page.getByTestId('error').count(), 0);
  assert.deepEqual(problems, []);
  await page.close();
});

test('a pair page shows its images, columns, seed and lineage; a reject is drawn again on request', { skip }, async () => {
  const [accepted] = await manifest('SELECT pair_id, seed::VARCHAR AS seed, instruction FROM manifest WHERE accepted ORDER BY index LIMIT 1');
  const { page, problems } = await open(`/pairs?verdict=accepted`);
  await pairsShown(page);
  await page.locator(`[data-testid="pair-card"][data-pair-id="${accepted.pair_id}"]`).click();
  await page.locator(`[data-testid="page-pair"][data-pair-id="${accepted.pair_id}"]`).waitFor();
  assert.equal(await text(page, 'pair-instruction'), accepted.instruction);
  assert.equal(await text(page, 'pair-seed'), accepted.seed);
  assert.match(await text(page, 'lineage-parent'), /none/);
  for (const which of ['source', 'edited']) {
    const img = page.getByTestId(`image-${which}`);
    await page.waitForFunction((el) => (el as HTMLImageElement).complete && (el as HTMLImageElement).naturalWidth > 0, await img.elementHandle());
    assert.equal(await img.evaluate((el) => (el as HTMLImageElement).naturalWidth), 128);
  }
  assert.equal(await page.locator('[data-testid="pair-columns"] tr[data-column="identity_similarity"]').count(), 1);
  assert.ok((await page.getByTestId('pair-columns').locator('tr').count()) > 60, 'every manifest column is listed');
  await page.getByTestId('back-to-pairs').click();
  await page.waitForURL(/#\/pairs\?verdict=accepted/);

  await page.goto(`${served.url}#/pair/0123456789abcdef`);
  await page.getByTestId('error').waitFor();
  assert.match(await text(page, 'error-message'), /no pair 0123456789abcdef/);

  const [reject] = await manifest('SELECT pair_id, seed::VARCHAR AS seed FROM manifest WHERE NOT accepted ORDER BY index LIMIT 1');
  await page.goto(`${served.url}#/pair/${reject.pair_id}`);
  await page.getByTestId('regenerate').waitFor();
  assert.equal(await page.getByTestId('regenerated-mark').count(), 0);
  assert.match(await text(page, 'pair-verdict'), /^Rejected: /);
  await page.getByTestId('regenerate').click();
  await page.getByTestId('regenerated-mark').waitFor({ timeout: 120_000 });
  assert.match(await text(page, 'regenerated-mark'), new RegExp(`REGENERATED.*seed ${reject.seed}`));
  for (const which of ['source', 'edited']) {
    const img = page.getByTestId(`image-${which}`);
    await page.waitForFunction((el) => (el as HTMLImageElement).complete && (el as HTMLImageElement).naturalWidth > 0, await img.elementHandle());
    assert.equal(await img.evaluate((el) => (el as HTMLImageElement).naturalWidth), 128);
  }
  assert.deepEqual(problems, []);
  await page.close();
});

test('moving a threshold on the what-if page changes the counts as the recorded scores say', { skip }, async () => {
  const { page, problems } = await open('/whatif');
  await page.getByTestId('whatif-table').waitFor();
  assert.equal(await page.getByTestId('refilter-command-none').count(), 1);
  const wait = (testid: string, value: string) => page.waitForFunction(([id, v]) => document.querySelector(`[data-testid="${id}"]`)?.textContent === v, [testid, value]);

  // Raising style's identity threshold only drops accepted style pairs below it.
  const style = { n: Number((await manifest(`SELECT count(*)::INT AS n FROM manifest WHERE accepted AND category = 'style' AND identity_similarity >= 0.95`))[0].n) };
  assert.ok(style.n < stats.by_category.style.accepted, 'the threshold moves something');
  await page.getByTestId('identity-style').fill('0.95');
  await wait('whatif-kept-style', String(style.n));
  assert.equal(await text(page, 'whatif-dropped-style'), `−${stats.by_category.style.accepted - style.n}`);
  assert.equal(await text(page, 'whatif-kept-all'), String(stats.accepted - (stats.by_category.style.accepted - style.n)));
  assert.match(await text(page, 'refilter-command'), /^pairgen refilter .* --set identity\.category_thresholds\.style=0\.95 --out /);

  // The slider of a rule every category has: not_edited's bound on edit.magnitude.
  await page.getByTestId('whatif-reset').click();
  await wait('whatif-kept-all', String(stats.accepted));
  const [edit] = await manifest('SELECT count(*)::INT AS n FROM manifest WHERE accepted AND edit_magnitude >= 0.2');
  await page.getByTestId('rule-not_edited-0').fill('0.2');
  await wait('whatif-kept-all', String(edit.n));
  assert.match(await text(page, 'refilter-command'), /--set 'rules\.default\.not_edited=edit\.magnitude >= 0\.2'/);
  // Precision and recall against the demo's ground truth are shown before → after.
  assert.match(await text(page, 'truth-pair-recall'), /%/);

  // Dragging the range input moves the number box and the counts too.
  await page.getByTestId('whatif-reset').click();
  await wait('whatif-kept-all', String(stats.accepted));
  await page.getByTestId('identity-threshold-range').evaluate((el) => {
    const input = el as HTMLInputElement;
    input.value = input.max;
    input.dispatchEvent(new Event('input', { bubbles: true }));
  });
  await page.waitForFunction(() => document.querySelector('[data-testid="refilter-command"]')?.textContent?.includes('identity.threshold='));
  assert.deepEqual(problems, []);
  await page.close();
});

test('the progress page advances by itself while a work process commits shards', { skip }, async () => {
  const live = join(tmp, 'live');
  await pairgen('plan', DEMO, '--out', live, '--pairs', '16', '--shard-size', '4');
  const server = await serve(live);
  const work = pairgenChild('work', live);
  try {
    const { page, problems } = await open('/progress', server.url);
    await page.locator('[data-testid="run-state"][data-state="running"]').waitFor();
    await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
    const seen: number[] = [];
    let rate = false;
    const deadline = Date.now() + 240_000;
    while (Date.now() < deadline) {
      const n = Number(await text(page, 'shards-committed'));
      if (seen.at(-1) !== n) seen.push(n);
      if ((await text(page, 'pairs-per-s')) !== '—') rate = true;
      if ((await page.getByTestId('run-state').getAttribute('data-state')) === 'finished') break;
      if (work.child.exitCode !== null && work.child.exitCode !== 0) assert.fail(`work failed: ${work.stderr()}`);
      await page.waitForTimeout(250);
    }
    assert.equal(seen.at(-1), 4, `the page reached all 4 shards committed (saw ${seen.join(' → ')})`);
    assert.ok(seen.length >= 3, `the committed count went up step by step on the page: ${seen.join(' → ')}`);
    assert.deepEqual(seen, [...seen].sort((a, b) => a - b));
    assert.ok(rate, 'a rate was shown while the run went on');
    assert.equal(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded), true, 'the page was not reloaded');
    assert.match(await text(page, 'last-update'), /^\d+ readings/);
    assert.match(await text(page, 'run-state'), /pairgen finalize/);
    assert.equal(await work.exited, 0);

    // Before finalize there is no stats.json: the scores page says so and shows what it can.
    const scores = await browser.newPage();
    await scores.goto(`${server.url}#/scores`);
    await scores.getByTestId('page-scores').waitFor();
    assert.match(await text(scores, 'error-message'), /not finalized/);
    assert.ok((await scores.getByTestId('rules-table').locator('tbody tr').count()) > 1, 'the rules are shown all the same');
    await scores.close();

    await pairgen('finalize', live);
    await page.locator('[data-testid="run-state"][data-state="finalized"]').waitFor({ timeout: 15_000 });
    assert.deepEqual(problems, []);
    await page.close();
  } finally {
    if (work.child.exitCode === null) work.child.kill('SIGTERM');
    await work.exited;
    await server.stop();
  }
});
