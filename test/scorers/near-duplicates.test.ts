// Near-duplicate marking across a run: against a brute-force walk of the rule on seeded sets with planted
// near-copies around the threshold, independence from the input order, null hashes, identical hashes,
// skewed hashes that force every level of the block join, the join cut for threads (each pair found by
// exactly one part; the same marks on worker threads), and a million rows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findNearDuplicateRows, findNearDuplicates, HashColumns, keyOrder, markRows, markRowsOnThreads, MAX_DISTANCE_LIMIT, type NearDuplicateInput, type PairHashColumns } from '../../src/scorers/near-duplicates.ts';
import { joinParts, nearValuePairs, planJoin } from '../../src/scorers/near-duplicates-join.ts';
import { hammingDistance } from '../../src/scorers/duplicates.ts';
import { isUserError } from '../../src/errors.ts';
import { mulberry32 } from '../helpers/prng.ts';

interface Row {
  pairId: string;
  dhash: string | null;
  accepted: boolean;
}

const columns = (rows: Row[]): NearDuplicateInput => ({
  pairIds: rows.map((r) => r.pairId),
  dhashes: rows.map((r) => r.dhash),
  accepted: rows.map((r) => r.accepted),
});

/** Bits set, one at a time (a different count from the module's, on purpose). */
function bitCount(x: number): number {
  let count = 0;
  for (x >>>= 0; x; x = (x & (x - 1)) >>> 0) count++;
  return count;
}

/** The rule walked literally: pair_id order, every earlier reference in order, first within reach. */
function bruteForce(rows: Row[], maxDistance: number): Map<string, string | null> {
  const sorted = [...rows].sort((a, b) => (a.pairId < b.pairId ? -1 : a.pairId > b.pairId ? 1 : 0));
  const references: { pairId: string; hi: number; lo: number }[] = [];
  const marks = new Map<string, string | null>();
  for (const row of sorted) {
    let mark: string | null = null;
    if (row.dhash !== null) {
      const hi = parseInt(row.dhash.slice(0, 8), 16), lo = parseInt(row.dhash.slice(8), 16);
      mark = references.find((r) => bitCount(r.hi ^ hi) + bitCount(r.lo ^ lo) <= maxDistance)?.pairId ?? null;
      if (mark === null && row.accepted) references.push({ pairId: row.pairId, hi, lo });
    }
    marks.set(row.pairId, mark);
  }
  return marks;
}

function marksOf(rows: Row[], maxDistance: number): Map<string, string | null> {
  const result = findNearDuplicates(columns(rows), maxDistance);
  assert.equal(result.length, rows.length);
  return new Map(rows.map((r, i) => [r.pairId, result[i]]));
}

function randomHex(random: () => number, digits = 16): string {
  let s = '';
  for (let i = 0; i < digits; i++) s += Math.floor(random() * 16).toString(16);
  return s;
}

function flipBits(hex: string, bits: number, random: () => number): string {
  const positions = new Set<number>();
  while (positions.size < bits) positions.add(Math.floor(random() * 64));
  const digits = [...hex].map((c) => parseInt(c, 16));
  for (const p of positions) digits[p >> 2] ^= 1 << (p & 3);
  return digits.map((d) => d.toString(16)).join('');
}

function shuffle<T>(items: T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/**
 * Random hashes, a third of the rows near-copies (0..8 bits flipped) of an earlier row's hash, some of
 * them copies of copies (chains), 5% without a hash, 70% accepted; unique ids of varying length.
 */
function plantedSet(seed: number, n: number, hashOf: (random: () => number) => string = randomHex): Row[] {
  const random = mulberry32(seed);
  const ids = new Set<string>();
  while (ids.size < n) ids.add(`p${Math.floor(random() * n * 50).toString(36)}`);
  const rows: Row[] = [];
  for (const pairId of ids) {
    let dhash: string | null;
    const kind = random();
    if (kind < 0.05) dhash = null;
    else if (kind < 0.38 && rows.length > 0) {
      const source = rows[Math.floor(random() * rows.length)].dhash ?? hashOf(random);
      dhash = flipBits(source, Math.floor(random() * 9), random);
    } else dhash = hashOf(random);
    rows.push({ pairId, dhash, accepted: random() < 0.7 });
  }
  return rows;
}

test('matches the rule walked by brute force on planted near-copies, for several distances', () => {
  for (const [seed, maxDistance] of [[1, 6], [2, 6], [3, 0], [4, 1], [5, 3], [6, 8], [7, 12]]) {
    const rows = plantedSet(seed, 3000);
    const expected = bruteForce(rows, maxDistance);
    assert.deepEqual(marksOf(rows, maxDistance), expected, `seed ${seed}, maxDistance ${maxDistance}`);
    const marked = [...expected.values()].filter((m) => m !== null).length;
    assert.ok(marked > 30, `the set plants near-copies (${marked} marked)`);
  }
});

test('the result depends on the pair ids, not on the order of the input rows', () => {
  const rows = plantedSet(11, 2000);
  const expected = marksOf(rows, 6);
  for (const seed of [12, 13]) assert.deepEqual(marksOf(shuffle(rows, mulberry32(seed)), 6), expected);
  // Already sorted input (the fast path) gives the same answer.
  const sorted = [...rows].sort((a, b) => (a.pairId < b.pairId ? -1 : 1));
  assert.deepEqual(marksOf(sorted, 6), expected);
  // The row-number form says the same.
  const markRow = findNearDuplicateRows(columns(rows), 6);
  assert.deepEqual(Array.from(markRow, (j, i) => [rows[i].pairId, j < 0 ? null : rows[j].pairId]), [...expected]);
});

test('the rule: earliest reference by pair_id, a marked pair never marks another, rejected pairs never do', () => {
  const zero = '0000000000000000', three = '0000000000000007', six = '000000000000003f', seven = '000000000000007f';
  const rows: Row[] = [
    { pairId: 'e', dhash: six, accepted: true }, // 6 from a: marked with a (b, nearer, is marked itself)
    { pairId: 'd', dhash: seven, accepted: true }, // 7 from a, 4 from b: b is marked, so d is a reference
    { pairId: 'f', dhash: seven, accepted: true }, // same hash as d
    { pairId: 'b', dhash: three, accepted: true }, // 3 from a
    { pairId: 'a', dhash: zero, accepted: true },
    { pairId: 'c', dhash: zero, accepted: false }, // rejected: marked, but marks nothing
    { pairId: 'a0', dhash: null, accepted: true },
    { pairId: 'A', dhash: three, accepted: false }, // 'A' < 'a': before any reference
  ];
  const marks = marksOf(rows, 6);
  assert.deepEqual(Object.fromEntries(marks), { e: 'a', d: null, f: 'd', b: 'a', a: null, c: 'a', a0: null, A: null });
  assert.deepEqual(marks, bruteForce(rows, 6));
  // With a larger reach, d is within reach of a too.
  assert.equal(marksOf(rows, 7).get('d'), 'a');
});

test('pairs without a hash are never marked and never references', () => {
  const random = mulberry32(21);
  const hash = randomHex(random);
  const rows: Row[] = [
    { pairId: 'a', dhash: null, accepted: true },
    { pairId: 'b', dhash: hash, accepted: true },
    { pairId: 'c', dhash: null, accepted: true },
    { pairId: 'd', dhash: hash, accepted: true },
  ];
  assert.deepEqual(findNearDuplicates(columns(rows)), [null, null, null, 'b']);
  const none = Array.from({ length: 50 }, (_, i) => ({ pairId: `x${i}`, dhash: null, accepted: true }));
  assert.deepEqual(findNearDuplicates(columns(none)), none.map(() => null));
  assert.deepEqual(findNearDuplicates(columns([])), []);
});

test('identical hashes (flat images) all go to the first accepted pair', () => {
  const n = 100_000;
  const random = mulberry32(31);
  const rows: Row[] = Array.from({ length: n }, (_, i) => ({
    pairId: `p${String(i).padStart(7, '0')}`,
    dhash: i % 1000 === 999 ? randomHex(random) : '0000000000000000',
    accepted: i >= 10 && random() < 0.5,
  }));
  const started = performance.now();
  const result = findNearDuplicates(columns(shuffle(rows, random).reverse()), 6);
  console.log(`# ${n} rows, mostly one hash: ${(performance.now() - started).toFixed(0)} ms`);
  const firstAccepted = rows.find((r) => r.accepted && r.dhash === '0000000000000000')!.pairId;
  const marks = marksOf(rows, 6);
  for (const r of rows) {
    if (r.dhash !== '0000000000000000') continue;
    if (r.pairId < firstAccepted) assert.equal(marks.get(r.pairId), null, r.pairId);
    else if (r.pairId > firstAccepted) assert.equal(marks.get(r.pairId), firstAccepted, r.pairId);
  }
  assert.equal(marks.get(firstAccepted), null);
  assert.equal(result.filter((m) => m === firstAccepted).length, [...marks.values()].filter((m) => m === firstAccepted).length);
  assert.deepEqual(marks, bruteForce(rows, 6));
});

test('hashes sharing most of their bits (every level of the block join) still match brute force', () => {
  // Low halves from 3 values, high halves random: the groups of the low blocks hold a third of the set each.
  for (const [seed, maxDistance] of [[41, 6], [42, 4], [43, 9]]) {
    const lows = ['00000000', 'ffff0000', '0f0f0f0f'];
    const rows = plantedSet(seed, 4000, (random) => randomHex(random, 8) + lows[Math.floor(random() * 3)]);
    assert.deepEqual(marksOf(rows, maxDistance), bruteForce(rows, maxDistance), `seed ${seed}`);
  }
});

test('the join finds every two values within reach exactly once', () => {
  for (const [seed, maxDistance, skewed] of [[61, 6, false], [62, 6, true], [63, 2, false], [64, 11, true]] as const) {
    const lows = ['00000000', '0000ffff'];
    const rows = plantedSet(seed, 2500, skewed ? (random) => randomHex(random, 8) + lows[Math.floor(random() * 2)] : randomHex);
    const distinct = [...new Set(rows.flatMap((r) => (r.dhash === null ? [] : [r.dhash])))];
    const hi = Uint32Array.from(distinct, (h) => parseInt(h.slice(0, 8), 16)), lo = Uint32Array.from(distinct, (h) => parseInt(h.slice(8), 16));
    const expected: string[] = [];
    for (let i = 0; i < distinct.length; i++) {
      for (let j = i + 1; j < distinct.length; j++) if (bitCount(hi[i] ^ hi[j]) + bitCount(lo[i] ^ lo[j]) <= maxDistance) expected.push(`${i}-${j}`);
    }
    expected.sort();
    // Whole, and cut as for threads (parts run here one after another): each pair found by exactly one
    // part; and with levels moving a few values at a time (slices of the key range, 1 = a key at a time).
    for (const [parts, sliceValues] of [[1, undefined], [2, undefined], [3, undefined], [5, undefined], [40, undefined], [1, 1], [1, 100], [3, 7]]) {
      const { a, b } = nearValuePairs(hi, lo, maxDistance, parts, sliceValues);
      const found = Array.from(a, (x, i) => `${x}-${b[i]}`);
      assert.deepEqual(found.sort(), expected, `seed ${seed}, ${parts} parts, slices of ${sliceValues}`);
    }
    assert.ok(expected.length > 100, `${expected.length} near pairs`);
  }
  // A set small enough to be compared whole at the first level: the cut parts still report it once.
  const random = mulberry32(65);
  const base = randomHex(random);
  const few = Array.from({ length: 20 }, () => flipBits(base, Math.floor(random() * 4), random));
  const fewHi = Uint32Array.from(few, (h) => parseInt(h.slice(0, 8), 16)), fewLo = Uint32Array.from(few, (h) => parseInt(h.slice(8), 16));
  const whole = nearValuePairs(fewHi, fewLo, 2);
  assert.ok(whole.a.length > 10);
  for (const parts of [2, 3, 7]) assert.equal(nearValuePairs(fewHi, fewLo, 2, parts).a.length, whole.a.length, `${parts} parts`);
});

test('worker threads give the marks of one thread, on skewed sets whose groups are small at every level', async () => {
  const lows = ['00000000', 'ffff0000', '0f0f0f0f'];
  for (const [seed, maxDistance] of [[71, 2], [72, 6], [73, 11]] as const) {
    const rows = plantedSet(seed, 6000, (random) => randomHex(random, 8) + lows[Math.floor(random() * 3)]);
    const order = Int32Array.from(rows.map((_, i) => i).sort((a, b) => (rows[a].pairId < rows[b].pairId ? -1 : 1)));
    const input: PairHashColumns = { order, hashes: new HashColumns(rows.length), accepted: Uint8Array.from(rows, (r) => Number(r.accepted)) };
    rows.forEach((r, i) => r.dhash !== null && input.hashes.set(i, r.dhash));
    const one = markRows(input, maxDistance);
    assert.ok(one.filter((m) => m >= 0).length > 100);
    for (const threads of [2, 3]) assert.deepEqual(await markRowsOnThreads(input, maxDistance, threads), one, `seed ${seed}, ${threads} threads`);
  }
});

test('the join cut for threads: every combination of agreeing blocks in exactly one part, parts of about equal work', () => {
  for (let d = 1; d <= MAX_DISTANCE_LIMIT; d++) {
    for (const values of [10, 10_000, 1_000_000, 10_000_000]) {
      const plan = planJoin(d, values), m = plan.blockBits.length, t = plan.agree;
      const all: string[] = [];
      const combos = (prefix: number[]): void => {
        if (prefix.length === t) return void all.push(prefix.join(','));
        for (let k = prefix.length ? prefix[prefix.length - 1] + 1 : 0; k < m; k++) combos([...prefix, k]);
      };
      combos([]);
      for (let threads = 1; threads <= 9; threads++) {
        const parts = joinParts(plan, threads);
        assert.ok(parts.length >= 1 && parts.length <= threads, `d ${d}: ${parts.length} parts for ${threads} threads`);
        const covered: string[] = [];
        const extend = (prefix: number[]): void => {
          if (prefix.length === t) return void covered.push(prefix.join(','));
          for (let k = prefix.length ? prefix[prefix.length - 1] + 1 : 0; k < m; k++) extend([...prefix, k]);
        };
        parts.flat().forEach(extend);
        assert.deepEqual(covered.sort(), [...all].sort(), `d ${d}, ${values} values, ${threads} threads`);
      }
    }
  }
  // 9 blocks, 3 agreeing (d = 6 from a million values): 28 units of (first block, second block), each
  // worth its combinations plus one; 2 or 3 parts each within one unit (at most 8) of an equal share.
  for (const threads of [2, 3]) {
    const work = joinParts(planJoin(6, 10_000_000), threads).map((units) => units.reduce((w, u) => w + (8 - u[1]) + 1, 0));
    assert.equal(work.length, threads);
    assert.equal(work.reduce((a, b) => a + b), 84 + 28);
    for (const w of work) assert.ok(Math.abs(w - 112 / threads) <= 8, `${work}`);
  }
});

test('a join plan covers the 64 bits in blocks of nearly equal size and needs m − d agreeing blocks', () => {
  for (let d = 1; d <= MAX_DISTANCE_LIMIT; d++) {
    for (const values of [10, 10_000, 1_000_000, 10_000_000]) {
      const { blockBits, agree } = planJoin(d, values);
      assert.equal(agree, blockBits.length - d, `d ${d}`);
      assert.ok(agree >= 1);
      assert.equal(blockBits.reduce((a, b) => a + b), 64);
      assert.ok(Math.max(...blockBits) <= 11 && Math.max(...blockBits) - Math.min(...blockBits) <= 1, `${blockBits}`);
    }
  }
  assert.deepEqual(planJoin(6, 1_000_000), { blockBits: [8, 7, 7, 7, 7, 7, 7, 7, 7], agree: 3 });
});

test('malformed input is refused', () => {
  const row = (pairId: string, dhash: string | null): Row => ({ pairId, dhash, accepted: true });
  assert.throws(() => findNearDuplicates(columns([row('a', '00000000000000g0')])), (e) => isUserError(e) && /pair "a".*16 hex digits.*00000000000000g0/.test(e.message));
  assert.throws(() => findNearDuplicates(columns([row('a', '0')])), isUserError);
  assert.throws(() => findNearDuplicates(columns([row('a', '0'.repeat(17))])), isUserError);
  assert.throws(() => findNearDuplicates(columns([row('a', '\u00b0'.repeat(16))])), isUserError); // ° is '0' + 128
  // Upper case digits are the same hash.
  assert.deepEqual(findNearDuplicates(columns([row('a', 'ABCDEF0123456789'), row('b', 'abcdef0123456789')]), 0), [null, 'a']);
  assert.throws(() => findNearDuplicates(columns([row('b', null), row('a', null), row('b', null)])), (e) => isUserError(e) && /"b" appears twice/.test(e.message));
  assert.throws(() => findNearDuplicates({ pairIds: ['a'], dhashes: [], accepted: [true] }), /1 pair ids, 0 hashes/);
  assert.throws(() => findNearDuplicates(columns([]), MAX_DISTANCE_LIMIT + 1), RangeError);
  assert.throws(() => findNearDuplicates(columns([]), 1.5), RangeError);
});

test('a million rows: every mark is a valid earlier reference within reach, every planted copy of a reference is found, the same on threads', async () => {
  const n = 1_000_000, maxDistance = 6;
  const random = mulberry32(51);
  const pairIds: string[] = new Array(n), dhashes: (string | null)[] = new Array(n), accepted: boolean[] = new Array(n);
  const copyOf = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) {
    pairIds[i] = `pair-${String(i).padStart(8, '0')}`;
    accepted[i] = random() < 0.8;
    if (i > 0 && random() < 0.01) {
      const source = Math.floor(random() * i);
      if (copyOf[source] === -1 && dhashes[source] !== null) copyOf[i] = source;
    }
    dhashes[i] = copyOf[i] >= 0 ? flipBits(dhashes[copyOf[i]]!, Math.floor(random() * 9), random) : random() < 0.02 ? null : randomHex(random);
  }
  const started = performance.now();
  const markRow = findNearDuplicateRows({ pairIds, dhashes, accepted }, maxDistance);
  console.log(`# ${n} rows: ${((performance.now() - started) / 1000).toFixed(1)} s, rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
  // The same marks with the join on worker threads (the ids are in order already).
  const compact: PairHashColumns = { order: Int32Array.from(pairIds, (_, i) => i), hashes: new HashColumns(n), accepted: Uint8Array.from(accepted, Number) };
  dhashes.forEach((h, i) => h !== null && compact.hashes.set(i, h));
  assert.deepEqual(await markRowsOnThreads(compact, maxDistance, 3), markRow, 'three threads');

  let marked = 0, plantedWithinReach = 0;
  for (let i = 0; i < n; i++) {
    const j = markRow[i];
    if (j >= 0) {
      marked++;
      assert.ok(j < i && accepted[j] && markRow[j] === -1, `${pairIds[i]} → ${pairIds[j]}`);
      assert.ok(hammingDistance(dhashes[i]!, dhashes[j]!) <= maxDistance);
    }
    const source = copyOf[i];
    if (source >= 0 && accepted[source] && markRow[source] === -1 && hammingDistance(dhashes[i]!, dhashes[source]!) <= maxDistance) {
      plantedWithinReach++;
      assert.ok(j >= 0, `${pairIds[i]}, a copy of ${pairIds[source]}`);
    }
  }
  assert.ok(plantedWithinReach > 5000, `${plantedWithinReach}`);
  console.log(`# ${marked} marked, ${plantedWithinReach} planted copies within reach of an accepted source`);
});

test('keyOrder puts 64-bit pair-id keys in the text order of their 16 hex digits (radix passes over every digit)', () => {
  const random = mulberry32(5);
  // Shared prefixes and equal halves, so every 16-bit pass decides some comparisons.
  const ids = Array.from({ length: 5000 }, (_, i) => (i % 7 === 0 ? '00000000' + randomHex(random, 8) : i % 5 === 0 ? randomHex(random, 8) + '0000ffff' : randomHex(random)));
  const keys = new HashColumns(ids.length);
  ids.forEach((id, row) => assert.ok(keys.set(row, id)));
  const expected = ids.map((_, i) => i).sort((a, b) => (ids[a] < ids[b] ? -1 : ids[a] > ids[b] ? 1 : a - b));
  assert.deepEqual([...keyOrder(keys)], expected);
  assert.equal(keys.set(0, 'not hex digits!!'), false);
});
