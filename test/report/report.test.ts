/**
 * Pictures of a run: `pairgen preview` contact sheets and the preview/ folder, on real runs made with the
 * tiny diffusers fixture teacher (identity off: accepted pairs with images) and with the packaged face
 * models switched on (the fixture's colour fields have no faces: every pair is rejected, no images kept).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { planRun } from '../../src/run/plan.ts';
import { workRun } from '../../src/run/work.ts';
import { finalizeRun } from '../../src/run/finalize.ts';
import { previewRun, writePreview } from '../../src/report/index.ts';
import { isUserError } from '../../src/errors.ts';
import { openStore } from '../../src/store/index.ts';
import { startS3Server, type S3Server } from '../helpers/s3server.ts';
import { BIN, FIXTURES, sqlRows, tempDir, writeFlowConfig } from '../helpers/run-fixture.ts';

const TILE = 160;
const HEADER = 78;
const ROW = TILE + 20;
const dir = tempDir('pairgen-report-');
const accepted = join(dir, 'accepted');
const rejected = join(dir, 'rejected');
const planned = join(dir, 'planned');
let s3: S3Server;

function config(name: string, identity: boolean, pairs: number): string {
  return writeFlowConfig(dir, name, {
    seed: 11,
    pairs,
    shardSize: 3,
    // instruct mode: the edit comes from another model, so source and edited images differ clearly
    teacher: `model: ${join(FIXTURES, 'tiny-sd')}, edit_model: ${join(FIXTURES, 'tiny-sd-ip2p')}, mode: instruct, steps: 2`,
    identity: `enabled: ${identity}`,
  });
}

async function makeRun(file: string, out: string): Promise<void> {
  await planRun(file, out);
  await workRun(out);
  await finalizeRun(out);
}

before(async () => {
  s3 = await startS3Server({ processEnv: true });
  await makeRun(config('accepted', false, 6), accepted);
  await makeRun(config('rejected', true, 6), rejected);
  await planRun(config('accepted', false, 6), planned);
});
after(async () => {
  await s3.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function rgb(png: Buffer) {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, at: (x: number, y: number) => [...data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3)] };
}

const sql = sqlRows;

function manifestRows(run: string, where = 'true'): Promise<Record<string, unknown>[]> {
  return sql(`SELECT * FROM read_parquet('${run}/manifest.parquet') WHERE ${where} ORDER BY "index"`);
}

async function userError(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e) => isUserError(e) && pattern.test(e.message));
}

test('a contact sheet shows each pair\'s stored source and edited images in run order; same run → same bytes', async () => {
  const { png, rows } = await previewRun(accepted, { limit: 3 });
  assert.equal(rows, 3);
  const again = await previewRun(accepted, { limit: 3 });
  assert.ok(png.equals(again.png), 'two renders of the same selection differ');
  const sheet = await rgb(png);
  assert.equal(sheet.height, HEADER + 3 * ROW);
  const first = (await manifestRows(accepted))[0];
  const cells = await sql(`SELECT source_image.bytes AS s, edited_image.bytes AS e FROM read_parquet('${accepted}/${first.file}') WHERE pair_id = '${first.pair_id}'`);
  for (const [col, blob] of [[0, cells[0].s], [1, cells[0].e]] as const) {
    const expected = await rgb(await sharp(Buffer.from(blob as Uint8Array)).resize(TILE, TILE, { fit: 'contain', background: '#f4f4f4' }).png().toBuffer());
    const left = 10 + col * (TILE + 10);
    let diff = 0;
    for (let y = 0; y < TILE; y++) for (let x = 0; x < TILE; x++) {
      const a = sheet.at(left + x, HEADER + 10 + y);
      const b = expected.at(x, y);
      diff = Math.max(diff, ...a.map((v, c) => Math.abs(v - b[c])));
    }
    assert.ok(diff <= 1, `tile ${col} of the first row is not the pair's ${col ? 'edited' : 'source'} image (max diff ${diff})`);
  }
  // text was drawn in the text column (dark pixels), and accepted rows have no red frame
  let dark = 0;
  for (let y = HEADER + 10; y < HEADER + 40; y++) for (let x = 350; x < 790; x++) if (sheet.at(x, y)[0] < 80) dark++;
  assert.ok(dark > 50, 'no instruction text in the first row');
  assert.deepEqual(sheet.at(4, HEADER + 4), [255, 255, 255]);
});

test('rejected pairs are framed in red and their images are grey "not stored" tiles', async () => {
  const { png, rows } = await previewRun(rejected, { limit: 2 });
  assert.equal(rows, 2);
  const sheet = await rgb(png);
  for (let r = 0; r < 2; r++) {
    const top = HEADER + r * ROW;
    assert.deepEqual(sheet.at(4, top + 60), [0xc0, 0, 0], `row ${r} has no red frame`);
    assert.deepEqual(sheet.at(12, top + 12), [0xd0, 0xd0, 0xd0], `row ${r} source tile is not the grey placeholder`);
    assert.deepEqual(sheet.at(10 + TILE + 12, top + 12), [0xd0, 0xd0, 0xd0], `row ${r} edited tile is not the grey placeholder`);
  }
});

test('--regenerate draws rejected pairs again from their seeds: the same pixels the run made', async () => {
  // Both runs have the same seed, prompts and teacher; only the identity filter differs, so the pairs
  // rejected in one run are stored, with the same pair ids, in the other.
  const stored = new Map((await manifestRows(accepted)).map((r) => [String(r.pair_id), r]));
  const pick = (await manifestRows(rejected)).filter((r) => stored.has(String(r.pair_id))).slice(0, 2);
  assert.equal(pick.length, 2);
  const where = `pair_id IN (${pick.map((r) => `'${r.pair_id}'`).join(', ')})`;
  const sheet = await rgb((await previewRun(rejected, { where, regenerate: true })).png);
  const grey = await rgb((await previewRun(rejected, { where })).png);
  for (const [r, row] of pick.entries()) {
    const s = stored.get(String(row.pair_id))!;
    const cells = await sql(`SELECT source_image.bytes AS s, edited_image.bytes AS e FROM read_parquet('${accepted}/${s.file}') WHERE pair_id = '${row.pair_id}'`);
    const [a, b] = await Promise.all([cells[0].s, cells[0].e].map((x) => sharp(Buffer.from(x as Uint8Array)).raw().toBuffer()));
    assert.ok(a.reduce((sum, v, i) => sum + Math.abs(v - b[i]), 0) / a.length > 5, 'source and edited should differ for this test to tell them apart');
    for (const [col, blob] of [[0, cells[0].s], [1, cells[0].e]] as const) {
      const expected = await rgb(await sharp(Buffer.from(blob as Uint8Array)).resize(TILE, TILE, { fit: 'contain', background: '#f4f4f4' }).png().toBuffer());
      const left = 10 + col * (TILE + 10);
      const top = HEADER + r * ROW + 10;
      let diff = 0;
      for (let y = 0; y < TILE; y++) for (let x = 0; x < TILE; x++) diff = Math.max(diff, ...sheet.at(left + x, top + y).map((v, c) => Math.abs(v - expected.at(x, y)[c])));
      assert.ok(diff <= 2, `regenerated tile ${col} of ${row.pair_id} differs from the stored image by ${diff}`);
      assert.deepEqual(grey.at(left + 2, top + 2), [0xd0, 0xd0, 0xd0]);
    }
    assert.deepEqual(sheet.at(4, HEADER + r * ROW + 60), [0xc0, 0, 0], 'a regenerated reject keeps its red frame');
  }
});

test('--where selects with SQL over the manifest columns; --limit caps the rows', async () => {
  const category = String((await manifestRows(accepted))[0].category);
  const style = await manifestRows(accepted, `category = '${category}'`);
  assert.ok(style.length > 0 && style.length < 6, 'the run should hold more than one category');
  const { png, rows } = await previewRun(accepted, { where: `category = '${category}'`, limit: 200 });
  assert.equal(rows, style.length);
  assert.equal((await sharp(png).metadata()).height, HEADER + style.length * ROW);
  assert.equal((await previewRun(accepted, { where: 'shard = 1', limit: 2 })).rows, 2);
  assert.equal((await previewRun(accepted, { where: 'NOT accepted OR identity_similarity IS NULL', limit: 200 })).rows, 6);
});

test('bad input is a UserError naming what was wrong', async () => {
  await userError(previewRun(accepted, { where: 'no_such_column > 1' }), /--where "no_such_column > 1": .*no_such_column.*manifest columns: pair_id/);
  await userError(previewRun(accepted, { where: 'category = = 1' }), /--where .*syntax error/i);
  await userError(previewRun(accepted, { where: "category = 'x'); SELECT 1; --" }), /--where/);
  await userError(previewRun(accepted, { where: '  ' }), /--where is empty/);
  await userError(previewRun(accepted, { where: "category = 'nope'" }), /matches no candidate/);
  await userError(previewRun(accepted, { limit: 0 }), /--limit/);
  await userError(previewRun(join(dir, 'missing')), /no run here/);
  await userError(previewRun(planned), /no manifest\.parquet yet; finish it with `pairgen finalize/);
  await userError(writePreview(planned), /no stats\.json yet/);
});

test('writePreview writes a sheet per category, the histogram and a self-contained index.html; again → same bytes', async () => {
  const keys = await writePreview(accepted);
  const stats = JSON.parse(readFileSync(join(accepted, 'stats.json'), 'utf8'));
  const categories = Object.keys(stats.by_category);
  assert.deepEqual(keys.sort(), [...categories.map((c) => `preview/sheet-${c}.png`), 'preview/identity-histogram.png', 'preview/index.html'].sort());
  const before = new Map(readdirSync(join(accepted, 'preview')).map((f) => [f, readFileSync(join(accepted, 'preview', f))]));
  await writePreview(accepted);
  for (const [f, bytes] of before) assert.ok(bytes.equals(readFileSync(join(accepted, 'preview', f))), `${f} changed on a second write`);
  for (const c of categories) {
    const meta = await sharp(before.get(`sheet-${c}.png`)!).metadata();
    assert.equal(meta.height, HEADER + Math.min(12, stats.by_category[c].candidates) * ROW);
  }
  const html = before.get('index.html')!.toString('utf8');
  const links = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
  assert.ok(links.length >= categories.length + 1);
  for (const link of links) {
    if (link.startsWith('#')) assert.ok(html.includes(`id="${link.slice(1)}"`), `dangling anchor ${link}`);
    else assert.ok(existsSync(join(accepted, 'preview', decodeURI(link))), `link ${link} points at nothing`);
  }
  assert.doesNotMatch(html, /https?:|<script|<link/);
  assert.match(html, new RegExp(`${stats.candidates}</td>`));

  await writePreview(rejected);
  const hist = await sharp(readFileSync(join(rejected, 'preview/identity-histogram.png'))).metadata();
  assert.equal(hist.format, 'png');
  assert.ok(hist.height! > 150 * (Object.keys(stats.by_category).length));
});

test('a run on S3 previews to the same bytes as the same run on a local folder', async () => {
  const uri = `s3://${s3.bucket}/runs/accepted`;
  const store = openStore(uri);
  const copy = (rel: string) => {
    for (const e of readdirSync(join(accepted, rel), { withFileTypes: true })) {
      const key = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) copy(key);
      else files.push(key);
    }
  };
  const files: string[] = [];
  copy('');
  for (const key of files) await store.put(key, readFileSync(join(accepted, key)));
  const local = await previewRun(accepted, { where: 'shard >= 1', limit: 4 });
  const remote = await previewRun(uri, { where: 'shard >= 1', limit: 4 });
  assert.ok(local.png.equals(remote.png));
  const keys = await writePreview(uri);
  for (const k of keys) assert.ok((await store.head(k))!.size > 0, `${k} not on S3`);
});

test('CLI: writes the sheet; a bad --where exits 2 and writes nothing; no fonts → exit 2 with the package to install', () => {
  const outDir = join(dir, 'cli');
  mkdirSync(outDir);
  const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => spawnSync(process.execPath, [BIN, 'preview', ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  const ok = cli([accepted, '--limit', '2', '--out', join(outDir, 'ok.png')]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(readFileSync(join(outDir, 'ok.png')).subarray(1, 4).toString(), 'PNG');
  const bad = cli([accepted, '--where', 'bogus = 1', '--out', join(outDir, 'bad.png')]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^error: --where "bogus = 1": .*bogus/m);
  assert.doesNotMatch(bad.stderr, /\n\s+at /, 'a user error printed a stack');
  const noFonts = join(dir, 'fonts.conf');
  writeFileSync(noFonts, `<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig><cachedir>${join(dir, 'fc-cache')}</cachedir></fontconfig>\n`);
  const tofu = cli([accepted, '--out', join(outDir, 'tofu.png')], { FONTCONFIG_FILE: noFonts });
  assert.equal(tofu.status, 2, tofu.stderr);
  assert.match(tofu.stderr, /no usable font.*fonts-dejavu-core/);
  assert.deepEqual(readdirSync(outDir), ['ok.png']);
  const wrongOut = cli([accepted, '--out', join(outDir, 'nope/sheet.png')]);
  assert.equal(wrongOut.status, 2);
  assert.match(wrongOut.stderr, /--out .*does not exist/);
});
