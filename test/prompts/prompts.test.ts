import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parquetWriteFile } from 'hyparquet-writer';
import { UserError } from '../../src/errors.ts';
import { FingerprintSet } from '../../src/prompts/fingerprint-set.ts';
import { Prng } from '../../src/prompts/prng.ts';
import { expandPromptSet, loadPromptSet, readPromptRows, writePromptTable, ROW_GROUP_ROWS, type PromptRow, type PromptSet } from '../../src/prompts/index.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin/pairgen.js');
const DEMO = join(ROOT, 'prompts/demo.yaml');
const PORTRAIT = join(ROOT, 'prompts/portrait.yaml');
const dir = mkdtempSync(join(tmpdir(), 'pairgen-prompts-'));
let n = 0;

function yamlFile(text: string): string {
  const p = join(dir, `set-${n++}.yaml`);
  writeFileSync(p, text);
  return p;
}
const load = (text: string) => loadPromptSet(yamlFile(text));

async function collect(set: PromptSet, count: number, seed: number): Promise<PromptRow[]> {
  const rows: PromptRow[] = [];
  for await (const r of expandPromptSet(set, { count, seed })) rows.push(r);
  return rows;
}

/** A set with a large combination space and known weights (dedup redraws would bias a small one). */
const WEIGHTED = `
slots:
  color:
    - { value: red, weight: 1 }
    - { value: blue, weight: 3 }
  n: [${Array.from({ length: 64 }, (_, i) => `n${i}`).join(', ')}]
  m: [${Array.from({ length: 64 }, (_, i) => `m${i}`).join(', ')}]
  k: [${Array.from({ length: 16 }, (_, i) => `k${i}`).join(', ')}]
sources:
  - "photo {n} {m} {k} of a {color} thing"
categories:
  rare:
    weight: 1
    edits:
      - instructions: ["make it {shade} green", "turn it {shade} green", "paint it {shade} green"]
        target: "photo {n} {m} {k} of a {shade} green thing"
    slots:
      shade: [light, dark, pale, deep, bright, dull, soft, neon]
  common:
    weight: 3
    identity_threshold: 0.4
    attributes: { teacher: pix2pix }
    edits:
      - instructions: ["make it {size} small"]
        target: "{source}, {size} small"
        weight: 1
        attributes: { edit: shrink }
      - instructions: ["make it {size} big"]
        target: "{source}, {size} big"
        weight: 4
    slots:
      size: [very, slightly, quite, rather, really, oddly, a bit, much]
`;

test('the PRNG is splitmix64-seeded xoshiro128**, as documented', () => {
  // An independent BigInt reference: splitmix64's first output for seed 0 is the published 0xe220a8397b1dcdaf.
  const M64 = (1n << 64n) - 1n;
  const M32 = 0xffffffffn;
  const splitmix = (x: bigint) => {
    let z = (x + 0x9e3779b97f4a7c15n) & M64;
    const next = z;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
    return [next, z ^ (z >> 31n)];
  };
  assert.equal(splitmix(0n)[1], 0xe220a8397b1dcdafn);
  const reference = (seed: bigint, n: number) => {
    const [x1, a] = splitmix(seed);
    const [, b] = splitmix(x1);
    const s = [a >> 32n, a & M32, b >> 32n, b & M32];
    const rotl = (v: bigint, k: bigint) => ((v << k) | (v >> (32n - k))) & M32;
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      out.push(Number((rotl((s[1] * 5n) & M32, 7n) * 9n) & M32));
      const t = (s[1] << 9n) & M32;
      s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 11n);
    }
    return out;
  };
  for (const seed of [0, 1, 2 ** 53 - 1]) {
    const p = new Prng(seed);
    assert.deepEqual(Array.from({ length: 100 }, () => p.next()), reference(BigInt(seed), 100), `seed ${seed}`);
  }
  const tagged = new Prng(5, 0x6576616c00000000n);
  assert.deepEqual(Array.from({ length: 10 }, () => tagged.next()), reference(5n ^ 0x6576616c00000000n, 10));
});

test('the fingerprint set finds every member and rejects duplicates across growth', () => {
  const set = new FingerprintSet(16);
  const p = new Prng(3);
  const keys = Array.from({ length: 50_000 }, () => [p.next(), p.next()] as const);
  keys.push([0, 0], [0, 7], [0xffffffff, 0]);
  for (const [hi, lo] of keys) assert.equal(set.add(hi, lo), true);
  assert.equal(set.size, keys.length);
  for (const [hi, lo] of keys) assert.equal(set.add(hi, lo), false);
  for (const [hi, lo] of keys) assert.ok(set.has(hi, lo));
  assert.ok(!set.has(1, 2) && !set.has(0, 6));
  assert.ok(set.bytes <= 8 * 2 ** 17, `${set.bytes} bytes for ${keys.length} entries`);
});

test('same seed → same rows and same file bytes; another seed → other rows', async () => {
  const set = loadPromptSet(DEMO);
  const a = await collect(set, 300, 11);
  const b = await collect(set, 300, 11);
  const c = await collect(set, 300, 12);
  assert.deepEqual(a, b);
  const trainA = a.filter((r) => r.prompt_split === 'train').map((r) => r.prompt_id);
  const trainC = c.filter((r) => r.prompt_split === 'train').map((r) => r.prompt_id);
  assert.notDeepEqual(trainA, trainC);
  const f1 = join(dir, 'det1.parquet');
  const f2 = join(dir, 'det2.parquet');
  const s1 = await writePromptTable(set, { count: 2000, seed: 5 }, f1);
  const s2 = await writePromptTable(loadPromptSet(DEMO), { count: 2000, seed: 5 }, f2);
  assert.ok(readFileSync(f1).equals(readFileSync(f2)));
  assert.equal(s1.sha256, createHash('sha256').update(readFileSync(f1)).digest('hex'));
  assert.equal(s1.sha256, s2.sha256);
  const s3 = await writePromptTable(set, { count: 2000, seed: 6 }, join(dir, 'det3.parquet'));
  assert.notEqual(s3.sha256, s1.sha256);
});

test('category, edit and slot weights are respected (within 3 standard errors)', async () => {
  const set = load(WEIGHTED);
  const N = 12000;
  const rows = await collect(set, N, 1);
  const near = (count: number, total: number, p: number, what: string) => {
    const sd = Math.sqrt(p * (1 - p) / total);
    assert.ok(Math.abs(count / total - p) < 3 * sd, `${what}: ${(count / total).toFixed(4)} vs expected ${p}`);
  };
  const common = rows.filter((r) => r.category === 'common');
  near(common.length, N, 0.75, 'category common');
  near(common.filter((r) => r.instruction.endsWith('big')).length, common.length, 0.8, 'edit weight big');
  near(rows.filter((r) => r.source_prompt.endsWith('blue thing')).length, N, 0.75, 'slot weight blue');
  // per-category threshold and attributes (category + edit merged) reach every row
  for (const r of common) {
    assert.equal(r.identity_threshold, 0.4);
    assert.deepEqual(r.attributes, r.instruction.endsWith('small') ? { teacher: 'pix2pix', edit: 'shrink' } : { teacher: 'pix2pix' });
    assert.equal(r.target_prompt, `${r.source_prompt}, ${r.instruction.replace(/^make it /, '')}`);
  }
  for (const r of rows.filter((r) => r.category === 'rare')) assert.equal(r.identity_threshold, null);
});

test('no (source, instruction) repeats; a set with too few combinations fails with a clear error', async () => {
  const set = load(`
slots: { who: [a cat, a dog] }
sources: ["{who} on a sofa"]
categories:
  style:
    edits:
      - instructions: [make it a sketch, make it a painting, make it a mosaic]
        target: "{source}, artwork"
`);
  // 2 sources x 3 instructions = 6 combinations: all of them, once each
  const rows = await collect(set, 6, 3);
  assert.equal(new Set(rows.map((r) => `${r.source_prompt}|${r.instruction}`)).size, 6);
  await assert.rejects(collect(set, 7, 3), (e: unknown) => e instanceof UserError && /category "style": no new distinct row after 1000 draws \(6 train rows drawn so far\)/.test(e.message));
  const big = await collect(load(WEIGHTED), 20000, 9);
  assert.equal(new Set(big.map((r) => `${r.source_prompt}\u0000${r.instruction}`)).size, big.length);
});

test('when/exclude rules, source exclusions and `set` edits are respected', async () => {
  const set = load(`
slots:
  age:
    - { value: young, vars: { an: a } }
    - { value: elderly, vars: { an: an } }
  beard: [a full beard, stubble, no beard]
  mood: [smiling, serious, sad]
  place: [in a park, at home, at work, in a cafe, on a bus, in a garden, on a beach, in a studio, in a library, in a shop]
exclude:
  - { age: young, beard: a full beard }
sources:
  - "{an} {age} man with {beard}, {mood}, {place}"
  - "{an} {age} man, {place}"
categories:
  face:
    weight: 4
    edits:
      - instructions: [add a full beard]
        target: "{an} {age} man with a full beard, {place}"
        exclude: { beard: a full beard }
      - instructions: [shave the beard off]
        set: { beard: no beard }
        when: [{ beard: a full beard }, { beard: stubble }]
      - instructions: ["make the man look {mood2}"]
        set: { mood: "{mood2}" }
    slots:
      mood2: [smiling, serious, sad]
  age:
    exclude: { age: elderly }
    edits:
      - instructions: [make him look older, age him, make him elderly]
        target: "an elderly man, {place}"
`);
  const rows = await collect(set, 300, 4);
  const seen = new Set<string>();
  for (const r of rows) {
    seen.add(r.category === 'age' ? 'age' : r.instruction.replace(/look \w+$/, ''));
    assert.doesNotMatch(r.source_prompt, /young man with a full beard/, 'source exclusion');
    if (r.instruction === 'add a full beard') assert.doesNotMatch(r.source_prompt, /with a full beard/);
    if (r.instruction === 'shave the beard off') {
      assert.match(r.source_prompt, /with (a full beard|stubble)/, 'when: the source must mention a beard');
      assert.equal(r.target_prompt, r.source_prompt.replace(/a full beard|stubble/, 'no beard'));
    }
    if (r.instruction.startsWith('make the man look')) {
      assert.match(r.source_prompt, /, (smiling|serious|sad),/, 'set needs the slot in the source template');
      assert.notEqual(r.target_prompt, r.source_prompt, 'no-op edits are redrawn');
      assert.ok(r.target_prompt.includes(r.instruction.replace('make the man look ', '')));
    }
    if (r.category === 'age') assert.match(r.source_prompt, /^a young/);
  }
  assert.equal(seen.size, 4, 'every edit occurs');
});

test('eval rows come first, never reappear in train, and do not depend on --seed or --count', async () => {
  const set = loadPromptSet(DEMO);
  const rows = await collect(set, 3000, 1);
  const evalRows = rows.filter((r) => r.prompt_split === 'eval');
  assert.equal(evalRows.length, set.eval.rows.length + set.eval.count);
  assert.ok(rows.slice(0, evalRows.length).every((r) => r.prompt_split === 'eval'));
  const evalKeys = new Set(evalRows.map((r) => `${r.source_prompt}\u0000${r.instruction}`));
  const evalIds = new Set(evalRows.map((r) => r.prompt_id));
  for (const r of rows.filter((r) => r.prompt_split === 'train')) {
    assert.ok(!evalKeys.has(`${r.source_prompt}\u0000${r.instruction}`));
    assert.ok(!evalIds.has(r.prompt_id));
  }
  const other = await collect(set, 10, 99);
  assert.deepEqual(other.filter((r) => r.prompt_split === 'eval'), evalRows);

  const held = load(`
slots: { who: [a cat, a dog, a fox, an owl] }
sources: ["{who} on a sofa"]
categories:
  style:
    edits:
      - instructions: [make it a sketch, make it a painting, make it a mosaic, make it pixel art]
        target: "{source}, artwork"
eval: { count: 2, holdout: instruction }
`);
  const h = await collect(held, 6, 2);
  const heldInstructions = new Set(h.filter((r) => r.prompt_split === 'eval').map((r) => r.instruction));
  for (const r of h.filter((r) => r.prompt_split === 'train')) assert.ok(!heldInstructions.has(r.instruction), `${r.instruction} is held out`);
});

test('prompt_id is the documented content hash, independent of position and seed', async () => {
  const set = load(WEIGHTED);
  const a = await collect(set, 400, 1);
  for (const r of a) {
    const expected = createHash('sha256').update(JSON.stringify([r.category, r.source_prompt, r.instruction, r.target_prompt])).digest('hex').slice(0, 32);
    assert.equal(r.prompt_id, expected);
  }
  // the same content drawn at other positions (other seed) carries the same id
  const small = load(`
slots: { who: [a cat, a dog] }
sources: ["{who} on a sofa"]
categories: { style: { edits: [{ instructions: [make it a sketch, make it a painting], target: "{source}, artwork" }] } }
`);
  const x = await collect(small, 4, 1);
  const y = await collect(small, 4, 2);
  const idOf = (rows: PromptRow[]) => new Map(rows.map((r) => [`${r.source_prompt}|${r.instruction}`, r.prompt_id]));
  assert.deepEqual(new Map([...idOf(x)].sort()), new Map([...idOf(y)].sort()));
  assert.notDeepEqual(x.map((r) => r.prompt_id), y.map((r) => r.prompt_id), 'different order, same ids');
});

test('readPromptRows reads exactly the asked range of a split, from a path or bytes', async () => {
  const set = load(WEIGHTED);
  const count = ROW_GROUP_ROWS + 5000;
  const file = join(dir, 'range.parquet');
  const summary = await writePromptTable(set, { count, seed: 2 }, file);
  assert.equal(summary.rows, count);
  assert.equal(summary.evalRows, 0);
  assert.equal(Object.values(summary.perCategory).reduce((a, b) => a + b, 0), count);
  const all = await collect(set, count, 2);
  const start = ROW_GROUP_ROWS - 3;
  const got = await readPromptRows(file, { split: 'train', start, end: start + 10 });
  assert.deepEqual(got, all.slice(start, start + 10), 'a range across a row-group boundary');
  const bytes = readFileSync(file);
  assert.deepEqual(await readPromptRows(bytes, { split: 'train', start: 0, end: 3 }), all.slice(0, 3));
  assert.deepEqual(await readPromptRows(file, { split: 'train', start: count - 2, end: count + 100 }), all.slice(count - 2), 'end is clamped');
  assert.deepEqual(await readPromptRows(file, { split: 'eval' }), []);

  const demo = loadPromptSet(DEMO);
  const demoFile = join(dir, 'demo-range.parquet');
  const d = await writePromptTable(demo, { count: 50, seed: 1 }, demoFile);
  const demoRows = await collect(demo, 50, 1);
  assert.deepEqual(await readPromptRows(demoFile, { split: 'eval' }), demoRows.slice(0, d.evalRows));
  assert.deepEqual(await readPromptRows(demoFile, { split: 'train', start: 5, end: 8 }), demoRows.slice(d.evalRows + 5, d.evalRows + 8));
});

test('readPromptRows: bad inputs are user errors', async () => {
  await assert.rejects(readPromptRows(join(dir, 'missing.parquet'), { split: 'train' }), /missing\.parquet: cannot read the prompt table \(no such file\)/);
  const notParquet = yamlFile('hello: world');
  await assert.rejects(readPromptRows(notParquet, { split: 'train' }), (e: unknown) => e instanceof UserError && /not a Parquet file/.test(e.message));
  const foreign = join(dir, 'foreign.parquet');
  parquetWriteFile({ filename: foreign, columnData: [{ name: 'x', data: [1, 2, 3], type: 'INT32' }] });
  await assert.rejects(readPromptRows(foreign, { split: 'train' }), /not a pairgen prompt table/);
  const file = join(dir, 'ok.parquet');
  await writePromptTable(loadPromptSet(DEMO), { count: 5, seed: 1 }, file);
  await assert.rejects(readPromptRows(file, { split: 'test' as 'train' }), /split must be "train" or "eval"/);
  await assert.rejects(readPromptRows(file, { split: 'train', start: -1 }), /start must be an integer >= 0/);
});

test('streaming a large count keeps memory bounded', () => {
  // A fresh process with gc exposed: the live heap after each row group must not grow with the row
  // count (300k held rows would take > 250 MiB; the dedup set grows by 8 bytes per row and slot).
  const script = `
    import { loadPromptSet, writePromptTable } from ${JSON.stringify(join(ROOT, 'src/prompts/index.ts'))};
    const set = loadPromptSet(${JSON.stringify(PORTRAIT)});
    const heap = [];
    await writePromptTable(set, { count: 300000, seed: 1, onProgress: () => { gc(); heap.push(process.memoryUsage().heapUsed); } }, process.argv[1]);
    process.stdout.write(JSON.stringify(heap));`;
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script, join(dir, 'mem.parquet')], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const heap = JSON.parse(r.stdout) as number[];
  assert.ok(heap.length >= 6, `${heap.length} row groups`);
  const growth = (Math.max(...heap) - heap[0]) / 2 ** 20;
  assert.ok(growth < 24, `live heap grew by ${growth.toFixed(1)} MiB over 300k rows`);
});

const BAD: [string, string, RegExp][] = [
  ['malformed YAML', 'sources: [a, b\ncategories: {}\n', /:\d+:\d+: malformed YAML/],
  ['not a mapping', '- a\n- b\n', /:1:1: expected a YAML mapping/],
  ['unknown top-level key', 'sources: [a]\ncategories: { s: { edits: [{ instructions: [x], target: y }] } }\ncolour: red\n', /:3:1: colour: unknown key "colour" \(expected one of: name, description, slots, exclude, sources, categories, eval\)/],
  ['unknown edit key', 'sources: [a]\ncategories:\n  s:\n    edits:\n      - instructions: [x]\n        target: y\n        wieght: 2\n', /:7:9: categories\.s\.edits\[0\]\.wieght: unknown key "wieght"/],
  ['missing categories', 'sources: [a]\n', /missing key "categories"/],
  ['wrong type', 'sources: [a]\ncategories:\n  s:\n    weight: heavy\n    edits: [{ instructions: [x], target: y }]\n', /:4:13: categories\.s\.weight: expected a number/],
  ['zero weight', 'slots:\n  a:\n    - { value: x, weight: 0 }\nsources: [a]\ncategories: { s: { edits: [{ instructions: [x], target: y }] } }\n', /:3:27: slots\.a\[0\]\.weight: expected a number > 0/],
  ['category with no edits', 'sources: [a]\ncategories:\n  s:\n    edits: []\n', /:4:12: categories\.s\.edits: expected a list with at least 1 item/],
  ['category without edits key', 'sources: [a]\ncategories:\n  s:\n    weight: 1\n', /:4:5: categories\.s: missing key "edits"/],
  ['no categories', 'sources: [a]\ncategories: {}\n', /categories: expected a mapping with at least 1 key/],
  ['undefined slot', 'slots: { age: [old] }\nsources: ["a {age} {hair} person"]\ncategories: { s: { edits: [{ instructions: [x], target: y }] } }\n', /:2:11: sources\[0\]: \{hair\} is not a defined slot or var \(defined here: age\)/],
  ['undefined slot in instruction', 'sources: [a]\ncategories: { s: { edits: [{ instructions: ["make it {colour}"], target: y }] } }\n', /categories\.s\.edits\[0\]\.instructions\[0\]: \{colour\} is not a defined slot/],
  ['bad template', 'sources: ["a {Age person"]\ncategories: { s: { edits: [{ instructions: [x], target: y }] } }\n', /sources\[0\]: bad reference at character 3/],
  ['target and set', 'slots: { a: [x, y] }\nsources: ["{a}"]\ncategories: { s: { edits: [{ instructions: [x], target: y, set: { a: y } }] } }\n', /categories\.s\.edits\[0\]: an edit needs exactly one of `target`.*or `set`/],
  ['neither target nor set', 'sources: [a]\ncategories: { s: { edits: [{ instructions: [x] }] } }\n', /an edit needs exactly one of/],
  ['set on unknown slot', 'sources: [a]\ncategories: { s: { edits: [{ instructions: [x], set: { hair: y } }] } }\n', /edits\[0\]\.set\.hair: "hair" is not a source slot/],
  ['condition on unknown slot', 'slots: { a: [x, y] }\nsources: ["{a}"]\ncategories: { s: { exclude: { b: x }, edits: [{ instructions: [x], target: y }] } }\n', /categories\.s\.exclude\.b: "b" is not a slot here \(expected one of: a\)/],
  ['condition on unknown value', 'slots: { a: [x, y] }\nsources: ["{a}"]\ncategories:\n  s:\n    edits:\n      - instructions: [x]\n        target: y\n        when: [{ a: [x, z] }]\n', /:8:25: categories\.s\.edits\[0\]\.when\[0\]\.a\[1\]: "z" is not a value of slot "a"/],
  ['duplicate slot value', 'slots: { a: [x, x] }\nsources: ["{a}"]\ncategories: { s: { edits: [{ instructions: [x], target: y }] } }\n', /slots\.a\[1\]: duplicate value "x"/],
  ['inconsistent vars', 'slots:\n  g:\n    - { value: w, vars: { their: her } }\n    - { value: m }\nsources: ["{g}"]\ncategories: { s: { edits: [{ instructions: [x], target: y }] } }\n', /:4:7: slots\.g\[1\]: every item of slot "g" must define the same vars/],
  ['category slot shadows source slot', 'slots: { a: [x] }\nsources: ["{a}"]\ncategories: { s: { slots: { a: [y] }, edits: [{ instructions: [x], target: y }] } }\n', /categories\.s\.slots\.a: slot "a" is already a source slot/],
  ['reserved slot name', 'slots: { source: [x] }\nsources: [a]\ncategories: { s: { edits: [{ instructions: [x], target: y }] } }\n', /slots\.source: "source" is reserved/],
  ['bad category name', 'sources: [a]\ncategories: { Big-Style: { edits: [{ instructions: [x], target: y }] } }\n', /categories\.Big-Style: bad name "Big-Style"/],
  ['threshold out of range', 'sources: [a]\ncategories: { s: { identity_threshold: 2, edits: [{ instructions: [x], target: y }] } }\n', /categories\.s\.identity_threshold: expected a number <= 1/],
  ['eval row with unknown category', 'sources: [a]\ncategories: { s: { edits: [{ instructions: [x], target: y }] } }\neval:\n  rows:\n    - { category: t, source: a, instruction: x, target: y }\n', /:5:19: eval\.rows\[0\]\.category: unknown category "t" \(expected one of: s\)/],
  ['repeated eval row', 'sources: [a]\ncategories: { s: { edits: [{ instructions: [x], target: y }] } }\neval:\n  rows:\n    - { category: s, source: a, instruction: x, target: y }\n    - { category: s, source: a, instruction: x, target: z }\n', /eval\.rows\[1\]: repeats the source \+ instruction of eval\.rows\[0\]/],
  ['bad holdout', 'sources: [a]\ncategories: { s: { edits: [{ instructions: [x], target: y }] } }\neval: { holdout: prompt }\n', /eval\.holdout: expected one of "pair", "instruction"/],
  ['a __proto__ key', 'slots: { __proto__: [x] }\nsources: [a]\ncategories: { s: { edits: [{ instructions: [x], target: y }] } }\n', /:1:10: "__proto__" cannot be a key/],
  ['an alias bomb', 'x: &x [a, a, a, a, a, a, a, a, a, a]\ny: &y [*x, *x, *x, *x, *x, *x, *x, *x, *x, *x]\nsources: [*y, *y, *y, *y, *y, *y, *y, *y, *y, *y]\ncategories: {}\n', /: its aliases \(\*name\) expand to too many values \(at most 100 alias expansions\)/],
];

test('a prompt set that is not UTF-8 is refused naming the byte offset of the first bad sequence, never decoded with replacement characters', () => {
  const good = 'sources: [a]\ncategories: { s: { edits: [{ instructions: ["make it caf', tail = '"], target: y }] } }\n';
  for (const [bad, at] of [[[0xe9], 0], [[0xc3, 0x28], 0], [[0xe2, 0x82], 0], [[0xff], 0], [[0xc3, 0xa9, 0xff], 2]] as const) {
    const path = yamlFile('');
    writeFileSync(path, Buffer.concat([Buffer.from(good), Buffer.from(bad), Buffer.from(tail)]));
    assert.throws(() => loadPromptSet(path), (e: unknown) => e instanceof UserError && e.message === `${path}: not valid UTF-8 at byte offset ${good.length + at} (save the file as UTF-8)`, JSON.stringify(bad));
  }
  // Valid multi-byte UTF-8 loads.
  const path = yamlFile(good + 'é' + tail);
  assert.equal(loadPromptSet(path).categories[0].edits[0].instructions.length, 1);
});

for (const [what, text, message] of BAD) {
  test(`bad prompt set: ${what}`, () => {
    const path = yamlFile(text);
    assert.throws(() => loadPromptSet(path), (e: unknown) => {
      assert.ok(e instanceof UserError, `expected a UserError, got ${e}`);
      assert.ok(e.message.startsWith(path), e.message);
      assert.match(e.message, message);
      return true;
    });
  });
}

test('a missing prompt-set file is a user error', () => {
  assert.throws(() => loadPromptSet(join(dir, 'nope.yaml')), /nope\.yaml: cannot read the prompt set \(no such file\)/);
});

test('bad expand options are user errors', async () => {
  const set = loadPromptSet(DEMO);
  await assert.rejects(collect(set, -1, 0), /--count must be an integer >= 0/);
  await assert.rejects(collect(set, 1, 1.5), /--seed must be an integer/);
});

test('the shipped prompt sets load; portrait has >= 8 categories and >= 200 distinct instruction templates', async () => {
  const portrait = loadPromptSet(PORTRAIT);
  assert.ok(portrait.categories.length >= 8, `${portrait.categories.length} categories`);
  const names = portrait.categories.map((c) => c.name);
  for (const c of ['style', 'expression', 'accessory', 'hair', 'age', 'makeup', 'lighting', 'background']) assert.ok(names.includes(c), c);
  const templates = new Set(portrait.categories.flatMap((c) => c.edits.flatMap((e) => e.instructions.map((t) => t.text))));
  assert.ok(templates.size >= 200, `${templates.size} distinct instruction templates`);
  assert.ok(portrait.eval.rows.length + portrait.eval.count >= 40);
  const rows = await collect(portrait, 2000, 1);
  assert.equal(new Set(rows.map((r) => r.category)).size, portrait.categories.length);

  const EDITS = ['grayscale', 'sepia', 'warm', 'cool', 'sketch', 'popart', 'soft-focus', 'high-contrast', 'vignette'];
  const demo = loadPromptSet(DEMO);
  const used = new Set<string>();
  for (const c of demo.categories) {
    for (const e of c.edits) {
      const edit = e.attributes.edit;
      assert.ok(EDITS.includes(edit), `demo edit ${edit}`);
      used.add(edit);
      assert.ok(e.instructions.length >= 2 && e.instructions.length <= 4, `${edit}: ${e.instructions.length} instructions`);
    }
  }
  assert.deepEqual([...used].sort(), [...EDITS].sort());
  for (const r of await collect(demo, 200, 1)) assert.ok(EDITS.includes(r.attributes.edit), `row edit ${r.attributes.edit}`);
});

function pairgen(...args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8' });
}

test('CLI: pairgen expand writes the table and prints counts per category', async () => {
  const out = join(dir, 'cli', 'table.parquet');
  const r = pairgen('expand', DEMO, '--out', out, '--count', '120', '--seed', '4');
  assert.equal(r.status, 0, r.stderr);
  const set = loadPromptSet(DEMO);
  for (const c of set.categories) assert.match(r.stdout, new RegExp(`^${c.name}\\s+\\d+$`, 'm'));
  assert.match(r.stdout, /^train\s+120$/m);
  assert.match(r.stdout, new RegExp(`^eval\\s+${set.eval.rows.length + set.eval.count}$`, 'm'));
  const sha = createHash('sha256').update(readFileSync(out)).digest('hex');
  assert.match(r.stdout, new RegExp(`sha256 ${sha}`));
  assert.equal((await readPromptRows(out, { split: 'train' })).length, 120);

  const j = pairgen('expand', DEMO, '-o', join(dir, 'cli', 'table2.parquet'), '-n', '120', '-s', '4', '--json');
  assert.equal(j.status, 0, j.stderr);
  assert.equal(JSON.parse(j.stdout).sha256, sha, 'same inputs, same bytes');

  const help = pairgen('expand', '--help');
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--count <N>/);
  assert.match(help.stdout, /--seed <S>/);
});

test('CLI: user errors exit 2 with one message and write nothing', () => {
  const out = join(dir, 'cli-bad', 'table.parquet');
  const bad = yamlFile('sources: [a]\ncategories:\n  s:\n    edits: []\n');
  let r = pairgen('expand', bad, '--out', out);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /categories\.s\.edits: expected a list with at least 1 item/);
  assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/, 'no stack trace');
  assert.ok(!existsSync(out));

  r = pairgen('expand', DEMO, '--out', dir, '--count', '3');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /is a directory: expected a file path/);

  r = pairgen('expand', DEMO, '--out', out, '--count', 'many');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--count must be a whole number/);

  // the combinations run out mid-write: the error names the category, no table and no temp file remain
  const tiny = yamlFile('slots: { w: [a, b] }\nsources: ["{w}"]\ncategories: { s: { edits: [{ instructions: [x, y], target: "{w} z" }] } }\n');
  r = pairgen('expand', tiny, '--out', out, '--count', '5');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /category "s": no new distinct row/);
  assert.deepEqual(readdirSync(join(dir, 'cli-bad')), []);

  // an existing table is left untouched by a failed run
  writeFileSync(out, 'previous');
  r = pairgen('expand', tiny, '--out', out, '--count', '5');
  assert.equal(r.status, 2);
  assert.equal(readFileSync(out, 'utf8'), 'previous');
  assert.deepEqual(readdirSync(join(dir, 'cli-bad')), ['table.parquet']);
});

test('the example in docs/prompts.md loads and expands', async () => {
  const doc = readFileSync(join(ROOT, 'docs/prompts.md'), 'utf8');
  const example = /```yaml\n([\s\S]*?)```/.exec(doc)![1];
  const set = load(example);
  assert.deepEqual(set.categories.map((c) => c.name), ['expression', 'age', 'facial_hair']);
  const rows = await collect(set, 10, 1);
  assert.equal(rows.filter((r) => r.prompt_split === 'eval').length, 5);
  for (const r of rows) {
    if (r.category === 'age') assert.match(r.source_prompt, /young adult/);
    if (r.instruction.startsWith('give')) assert.match(r.source_prompt, / man\b/);
    if (r.instruction.startsWith('shave')) assert.match(r.source_prompt, /a full beard|a short stubble/);
  }
});
