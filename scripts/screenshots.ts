/**
 * `make screenshots`: one PNG per page of `pairgen serve` on a small demo run, into docs/screenshots/
 * (the README links them). The run is planned, served, and worked while the progress page is open, so
 * that page is taken live; then finalized for the others. 1280×800, palette PNGs.
 *
 *   node --import tsx scripts/screenshots.ts [--out docs/screenshots] [--pairs 48]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import type { Page } from 'playwright-core';
import { ensureReferenceTeacher } from '../src/reference/index.ts';
import { DEMO, browserMissing, launchBrowser, pairgen, pairgenChild, serve } from '../test/serve/harness.ts';

const { values } = parseArgs({ options: { out: { type: 'string', default: 'docs/screenshots' }, pairs: { type: 'string', default: '48' } } });
const out = values.out!;
const pairs = Number(values.pairs);
const SHARDS = 4;

const missing = browserMissing();
if (missing) {
  console.error(`screenshots: ${missing}`);
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const tmp = mkdtempSync(join(tmpdir(), 'pairgen-screenshots-'));
const run = join(tmp, 'demo');

await ensureReferenceTeacher();
await pairgen('plan', DEMO, '--out', run, '--pairs', String(pairs), '--shard-size', String(Math.ceil(pairs / SHARDS)));
const served = await serve(run);
const browser = await launchBrowser();
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
page.on('pageerror', (e) => console.error(`page error: ${e.message}`));

async function shot(name: string): Promise<void> {
  await page.evaluate(() => window.scrollTo(0, 0));
  const png = await page.screenshot({ type: 'png' });
  // A palette keeps a UI screenshot a fraction of its size with no visible change.
  const small = await sharp(png).png({ palette: true, colours: 128, compressionLevel: 9, effort: 10 }).toBuffer();
  writeFileSync(join(out, `${name}.png`), small);
  console.log(`${join(out, `${name}.png`)}  ${(small.byteLength / 1024).toFixed(0)} KB`);
}

const committed = async (p: Page) => Number(await p.getByTestId('shards-committed').textContent());

try {
  // Progress, live: the work process commits shards while the page polls.
  await page.goto(`${served.url}#/progress`);
  await page.locator('[data-testid="run-state"][data-state="running"]').waitFor();
  const work = pairgenChild('work', run);
  while ((await committed(page)) < SHARDS / 2) {
    if (work.child.exitCode !== null) throw new Error(`work ended early: ${work.stderr()}`);
    await page.waitForTimeout(500);
  }
  await page.waitForTimeout(2500);
  await shot('progress');
  if ((await work.exited) !== 0) throw new Error(`work failed: ${work.stderr()}`);
  await pairgen('finalize', run);
  await page.locator('[data-testid="run-state"][data-state="finalized"]').waitFor({ timeout: 30_000 });

  await page.goto(`${served.url}#/scores`);
  await page.getByTestId('page-scores').waitFor();
  await shot('scores');

  await page.goto(`${served.url}#/pairs`);
  await page.locator('[data-testid="pairs-results"][data-loaded]').waitFor();
  await page.waitForFunction(() => [...document.querySelectorAll('.thumbs img')].every((i) => (i as HTMLImageElement).complete));
  await shot('pairs');

  const first = await page.locator('.card.accepted').first().getAttribute('data-pair-id');
  await page.goto(`${served.url}#/pair/${first}`);
  await page.getByTestId('page-pair').waitFor();
  await page.waitForFunction(() => [...document.querySelectorAll('.pair-images img')].every((i) => (i as HTMLImageElement).complete));
  await shot('pair');

  await page.goto(`${served.url}#/pairs?verdict=rejected`);
  await page.locator('[data-testid="pairs-results"][data-loaded]').waitFor();
  const reject = await page.locator('.card.rejected').first().getAttribute('data-pair-id');
  await page.goto(`${served.url}#/pair/${reject}`);
  await page.getByTestId('regenerate').click();
  await page.getByTestId('regenerated-mark').waitFor({ timeout: 120_000 });
  await shot('pair-regenerated');

  await page.goto(`${served.url}#/whatif`);
  await page.getByTestId('whatif-table').waitFor();
  await page.getByTestId('identity-style').fill('0.8');
  await page.getByTestId('refilter-command').waitFor();
  await page.waitForFunction(() => !document.querySelector('.whatif-results.stale'));
  await shot('whatif');
} finally {
  await browser.close();
  await served.stop();
  rmSync(tmp, { recursive: true, force: true });
}
