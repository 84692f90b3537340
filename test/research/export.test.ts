/**
 * `pairgen export --format webdataset` on real runs of the tiny diffusers fixture teacher: tars per split
 * holding the stored images, the instruction and the manifest row with one stable set of keys; wids
 * indexes whose sizes and checksums match the tars; a README whose `configs` and features name exactly
 * those tars; no absolute path anywhere; the same bytes twice; and write errors through the real CLI
 * (exit 2, one line, nothing left behind, no temp files). The Python readers' side is in test/readers/.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tar from 'tar-stream';
import { parse as parseYaml } from 'yaml';
import { planRun } from '../../src/run/plan.ts';
import { workRun } from '../../src/run/work.ts';
import { finalizeRun } from '../../src/run/finalize.ts';
import { exportRun } from '../../src/research/index.ts';
import { TestScorer } from '../helpers/test-teacher.ts';
import { startS3Server } from '../helpers/s3server.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { openStore } from '../../src/store/index.ts';
import { BIN, FIXTURES, REPO, inBatches, readTree, runAsync, sqlRows, tempDir } from '../helpers/run-fixture.ts';

const dir = tempDir('pairgen-export-');
const scored = join(dir, 'scored'); // identity on (test scorer): accepted and rejected pairs, PNG
const lossless = join(dir, 'lossless'); // identity off, lossless WebP

// The demo prompt set with one edit carrying an extra attribute: rows of that edit have a key the others lack.
const promptSet = join(dir, 'prompts.yaml');
writeFileSync(promptSet, readFileSync(join(REPO, 'prompts/demo.yaml'), 'utf8').replace('attributes: { edit: high-contrast }', 'attributes: { edit: high-contrast, contrast: strong }'));

function config(name: string, pairs: number, identity: string, output: string): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, [
    'seed: 11', `pairs: ${pairs}`, 'shard_size: 6', `prompts: { set: ${promptSet} }`,
    `teacher: { model: ${join(FIXTURES, 'tiny-sd')}, steps: 2 }`, `identity: { ${identity} }`, `output: { ${output} }`,
  ].join('\n'));
  return file;
}

before(async () => {
  // Fixture edits keep ~0.97-0.999 pixel correlation: a high colour-grade threshold rejects some.
  await planRun(config('scored', 24, 'enabled: true, category_thresholds: { color_grade: 0.997, lighting: -1, style: -1 }', 'image_format: png, splits: { train: 0.5, validation: 0.25, test: 0.25 }'), scored);
  await workRun(scored, { scorerFactory: async () => new TestScorer() });
  await finalizeRun(scored);
  await planRun(config('lossless', 3, 'enabled: false', 'image_format: webp, lossless: true'), lossless);
  await workRun(lossless);
  await finalizeRun(lossless);
});

/** Members of a tar file, in order. */
async function untar(bytes: Buffer): Promise<[string, Buffer][]> {
  const extract = tar.extract();
  const out: [string, Buffer][] = [];
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => void chunks.push(c as Buffer));
      stream.on('end', () => {
        out.push([header.name, Buffer.concat(chunks)]);
        next();
      });
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  extract.end(bytes);
  await done;
  return out;
}

/** The accepted pairs' stored images and manifest rows, by pair_id, through DuckDB (not the code under test). */
async function stored(run: string): Promise<Map<string, Record<string, unknown>>> {
  const files = [...new Set((await sqlRows(`SELECT DISTINCT file FROM '${run}/manifest.parquet' WHERE accepted`)).map((r) => join(run, String(r.file))))];
  const list = files.map((f) => `'${f}'`).join(', ');
  const rows = await sqlRows(`SELECT m.*, d.source_image.bytes AS s, d.edited_image.bytes AS e FROM '${run}/manifest.parquet' m JOIN read_parquet([${list}]) d USING (pair_id) WHERE m.accepted`);
  return new Map(rows.map((r) => [String(r.pair_id), r]));
}

/** Every key path of a JSON value ("a", "a.b", ...); arrays are leaves. */
function keyPaths(v: unknown, prefix = ''): string[] {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return [];
  return Object.entries(v).flatMap(([k, x]) => [prefix + k, ...keyPaths(x, `${prefix}${k}.`)]);
}

function frontMatter(readme: string): Record<string, any> {
  const m = /^---\n([\s\S]*?)\n---\n/.exec(readme);
  assert.ok(m, 'README.md starts with YAML front matter');
  return parseYaml(m[1]);
}

test('export: tars per split with the stored images, the instruction and one stable set of JSON keys; wids indexes; README configs', async () => {
  const out = join(dir, 'wds');
  const r = await exportRun(scored, out, { format: 'webdataset', shardSize: 3 });
  const pairs = await stored(scored);
  const manifest = await sqlRows(`SELECT pair_id, split, accepted FROM '${scored}/manifest.parquet' ORDER BY "index"`);
  assert.ok(manifest.some((x) => !x.accepted), 'the run should have rejects (they are not exported)');
  const bySplit = new Map<string, string[]>();
  for (const x of manifest.filter((x) => x.accepted)) bySplit.set(String(x.split), [...(bySplit.get(String(x.split)) ?? []), String(x.pair_id)]);
  assert.deepEqual([...bySplit.keys()].sort(), ['test', 'train', 'validation'], 'every split should have accepted pairs');
  assert.equal(r.pairs, pairs.size);

  const card = frontMatter(readFileSync(join(out, 'README.md'), 'utf8'));
  const names = readdirSync(out).sort();
  const expectedTars = [...bySplit].flatMap(([split, ids]) => {
    const n = Math.ceil(ids.length / 3);
    return Array.from({ length: n }, (_, i) => `${split}-${String(i).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.tar`);
  });
  assert.deepEqual(names, [...expectedTars, ...[...bySplit.keys()].map((s) => `${s}.wids.json`), 'README.md'].sort());
  assert.deepEqual(r.files.slice().sort(), names);

  const allMeta: Record<string, unknown>[] = [];
  for (const [split, ids] of bySplit) {
    // The card's config names this split's tars and nothing else (the glob a loader applies).
    const entry = card.configs[0].data_files.find((d: { split: string }) => d.split === split);
    const glob = new RegExp(`^${entry.path.replace('.', '\\.').replace('*', '.*')}$`);
    const tars = names.filter((n) => glob.test(n));
    assert.deepEqual(tars, expectedTars.filter((t) => t.startsWith(`${split}-`)));
    assert.equal(card.dataset_info.splits.find((s: { name: string }) => s.name === split).num_examples, ids.length);
    // The wids index: relative urls, sample counts, sizes and checksums of the tars.
    const index = JSON.parse(readFileSync(join(out, `${split}.wids.json`), 'utf8'));
    assert.equal(index.__kind__, 'wids-shard-index-v1');
    assert.equal(index.wids_version, 1);
    assert.deepEqual(index.shardlist.map((s: { url: string }) => s.url), tars);
    const members: [string, Buffer][] = [];
    for (const s of index.shardlist) {
      const bytes = readFileSync(join(out, s.url));
      assert.equal(s.filesize, statSync(join(out, s.url)).size);
      assert.equal(s.sha256, createHash('sha256').update(bytes).digest('hex'));
      assert.equal(s.md5sum, createHash('md5').update(bytes).digest('hex'));
      const m = await untar(bytes);
      assert.equal(s.nsamples * 4, m.length);
      members.push(...m);
    }
    assert.deepEqual(members.map(([n]) => n), ids.flatMap((id) => [`${id}.source.png`, `${id}.edited.png`, `${id}.txt`, `${id}.json`]));
    for (let i = 0; i < members.length; i += 4) {
      const meta = JSON.parse(members[i + 3][1].toString('utf8'));
      const row = pairs.get(meta.pair_id)!;
      // A float column is spelled as a float in every sample (-1.0, not -1: readers type it from the text).
      assert.match(members[i + 3][1].toString('utf8'), /"identity_threshold":-?\d+(\.\d+|e[-+]?\d+)[,}]/);
      assert.ok(members[i][1].equals(Buffer.from(row.s as Uint8Array)) && members[i + 1][1].equals(Buffer.from(row.e as Uint8Array)), `${meta.pair_id}: not the stored images`);
      assert.equal(members[i + 2][1].toString('utf8'), row.instruction);
      assert.equal(meta.split, split);
      assert.equal(meta.accepted, true);
      assert.deepEqual(meta.sampler, JSON.parse(String(row.sampler)));
      assert.ok(!('file' in meta) && !('file_row' in meta));
      allMeta.push(meta);
    }
  }

  // One set of keys at every depth, nulls where a pair has none; the card types every one of them.
  const raw = [...pairs.values()].map((x) => JSON.parse(String(x.attributes)));
  assert.ok(raw.some((a) => 'contrast' in a) && raw.some((a) => !('contrast' in a)), 'the run should mix rows with and without attributes.contrast');
  const shape = keyPaths(allMeta[0]).sort();
  assert.ok(shape.includes('attributes.contrast'));
  for (const meta of allMeta) assert.deepEqual(keyPaths(meta).sort(), shape, `${meta.pair_id}: keys differ from the first sample's`);
  assert.ok(allMeta.some((m) => (m.attributes as Record<string, unknown>).contrast === null) && allMeta.some((m) => (m.attributes as Record<string, unknown>).contrast === 'strong'));
  const features = card.dataset_info.features as { name: string; struct?: { name: string; struct?: { name: string; dtype?: string }[] }[] }[];
  assert.deepEqual(features.map((f) => f.name), ['source.png', 'edited.png', 'txt', 'json', '__key__', '__url__']);
  const json = features.find((f) => f.name === 'json')!.struct!;
  assert.deepEqual(json.map((f) => f.name), Object.keys(allMeta[0]));
  assert.deepEqual(json.find((f) => f.name === 'attributes')!.struct, [{ name: 'contrast', dtype: 'string' }, { name: 'edit', dtype: 'string' }]);

  // No absolute path anywhere: not the run's, not the export's, not the temp folder's.
  for (const [name, bytes] of readTree(out)) {
    const text = name.endsWith('.tar') ? (await untar(bytes)).filter(([n]) => !n.endsWith('.png')).map(([, b]) => b.toString('utf8')).join('\n') : bytes.toString('utf8');
    assert.ok(!text.includes(dir) && !text.includes(REPO), `${name} holds an absolute path`);
  }

  // Same run → same bytes.
  const again = join(dir, 'wds-again');
  await exportRun(scored, again, { format: 'webdataset', shardSize: 3 });
  const a = readTree(out);
  const b = readTree(again);
  assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
  for (const [k, v] of a) assert.ok(v.equals(b.get(k)!), `${k} differs between two exports`);
});

test('export --where: only the matching accepted pairs, and the card names only the splits they fall in', async () => {
  const out = join(dir, 'wds-where');
  const r = await exportRun(scored, out, { format: 'webdataset', where: "category = 'lighting' AND split <> 'test'" });
  const expected = await sqlRows(`SELECT pair_id, split FROM '${scored}/manifest.parquet' WHERE accepted AND category = 'lighting' AND split <> 'test'`);
  assert.ok(expected.length > 0);
  assert.equal(r.pairs, expected.length);
  const card = frontMatter(readFileSync(join(out, 'README.md'), 'utf8'));
  assert.deepEqual(card.configs[0].data_files.map((d: { split: string }) => d.split), ['train', 'validation'].filter((s) => expected.some((x) => x.split === s)));
  const members = (await Promise.all(r.files.filter((f) => f.endsWith('.tar')).map((f) => untar(readFileSync(join(out, f)))))).flat();
  assert.deepEqual(members.filter(([n]) => n.endsWith('.json')).map(([, b]) => JSON.parse(b.toString('utf8')).category), expected.map(() => 'lighting'));
});

test('export of a lossless WebP run: .webp members holding lossless (VP8L) WebP, typed as images in the card', async () => {
  const out = join(dir, 'wds-webp');
  const r = await exportRun(lossless, out, { format: 'webdataset' });
  assert.equal(r.pairs, 3);
  const members = (await Promise.all(r.files.filter((f) => f.endsWith('.tar')).map((f) => untar(readFileSync(join(out, f)))))).flat();
  const images = members.filter(([n]) => n.endsWith('.webp'));
  assert.equal(images.length, 6);
  for (const [name, bytes] of images) {
    assert.equal(bytes.subarray(0, 4).toString('latin1') + bytes.subarray(8, 12).toString('latin1'), 'RIFFWEBP', name);
    assert.equal(bytes.subarray(12, 16).toString('latin1'), 'VP8L', `${name}: not lossless WebP`);
  }
  const card = frontMatter(readFileSync(join(out, 'README.md'), 'utf8'));
  assert.deepEqual(card.dataset_info.features.slice(0, 2), [{ name: 'source.webp', dtype: 'image' }, { name: 'edited.webp', dtype: 'image' }]);
});

test('export errors through the CLI: exit 2, one line, nothing written and no temp file left', async () => {
  const cli = (args: string[], o: { limitKiB?: number } = {}) =>
    o.limitKiB === undefined
      ? runAsync(process.execPath, [BIN, ...args], { cwd: dir })
      : runAsync('bash', ['-c', `ulimit -f ${o.limitKiB} && exec "$0" "$@"`, process.execPath, BIN, ...args], { cwd: dir });
  const aFile = join(dir, 'a-file');
  writeFileSync(aFile, 'not a folder');
  const full = join(dir, 'full');
  mkdirSync(full);
  writeFileSync(join(full, 'notes.txt'), 'mine');
  // A file size limit below the first tar's size: the write fails inside the tar stream (as a full disk would).
  const firstTar = JSON.parse(readFileSync(join(dir, 'wds', 'train.wids.json'), 'utf8')).shardlist[0].filesize;
  const cases: [string[], RegExp, string, number?][] = [
    [['export', scored, '--format', 'webdataset', '--out', aFile], /a file stands where a folder/, aFile],
    [['export', scored, '--format', 'webdataset', '--out', join(aFile, 'sub')], /a file stands where a folder/, aFile],
    [['export', scored, '--format', 'webdataset', '--out', full], /is not empty \(it holds notes\.txt\)/, full],
    [['export', scored, '--format', 'webdataset', '--out', join(dir, 'limited'), '--shard-size', '3'], /cannot write .*train-00000-of-\d{5}\.tar'? \(EFBIG\): .*ulimit -f/, join(dir, 'limited'), Math.floor(firstTar / 1024) - 4],
  ];
  const listing = (where: string) => (existsSync(where) && statSync(where).isDirectory() ? readdirSync(where).sort() : null);
  const befores = cases.map(([, , where]) => listing(where));
  const results = await inBatches(cases, 3, ([args, , , limitKiB]) => cli(args, { limitKiB }));
  for (const [i, [args, message, where]] of cases.entries()) {
    const before = befores[i];
    const r = results[i];
    assert.equal(r.status, 2, `${args.join(' ')}: exit ${r.status ?? r.signal}\n${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    if (before) assert.deepEqual(readdirSync(where).sort(), before, `${where}: files were left behind`);
    else if (statSync(where, { throwIfNoEntry: false })?.isFile()) assert.equal(readFileSync(where, 'utf8'), 'not a folder');
    else assert.deepEqual(existsSync(where) ? readdirSync(where) : [], [], `${where}: files were left behind`);
  }
  assert.deepEqual(readdirSync(dir).filter((n) => n.includes('.pairgen-tmp-')), []);

  // On S3, the store refusing the last file (README.md) after every tar was written: what was written goes.
  const s3 = await startS3Server({ processEnv: true });
  const proxy = await startFaultProxy(s3.endpoint);
  try {
    proxy.setFault((q) => (q.method === 'PUT' && q.url.includes('README.md') ? { status: 403, code: 'AccessDenied' } : null));
    // Not spawnSync: the proxy runs in this process and must keep answering.
    const r = await runAsync(process.execPath, [BIN, 'export', scored, '--format', 'webdataset', '--out', `s3://${s3.bucket}/exports/a`], { cwd: dir, env: { ...process.env, AWS_ENDPOINT_URL_S3: proxy.endpoint } });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /access denied .*AccessDenied/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(proxy.requests.some((l) => /PUT .*train-00000-of-\d{5}\.tar/.test(l)), 'the tars should have been written first');
    const left: string[] = [];
    for await (const e of openStore(`s3://${s3.bucket}/exports/a`).list('')) left.push(e.key);
    assert.deepEqual(left, []);
  } finally {
    await proxy.close();
    await s3.stop();
  }
});
