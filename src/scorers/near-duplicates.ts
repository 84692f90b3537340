/**
 * Near-duplicate sources across a run (issue 11, "duplicates"): which pairs' source dHash is within a few
 * bits of an earlier accepted pair's, in pair_id order, so the answer depends on the pair ids only.
 *
 * The rule. Walk the pairs in pair_id order (JS string `<`). The references are the accepted pairs with
 * a hash that were not themselves marked. A pair (accepted or not) with a hash is marked with the
 * pair_id of the earliest reference before it whose hash is within maxDistance bits; an accepted pair
 * left unmarked becomes a reference. A marked pair never marks another: in a chain a ≈ b ≈ c of accepted
 * pairs, b is marked with a, and c is marked with a when within reach of a, else c is a reference. A pair
 * without a hash is never marked and never a reference.
 *
 * The search, in three steps.
 * 1. Distinct values. Pairs with the same hash get the same mark, so the work is over distinct hash
 *    values: a million flat images with dHash 0 are one value, not a million.
 * 2. Near pairs of values, all at once (a self-join). The 64 bits are split into m > d blocks (d =
 *    maxDistance); two values within d bits differ in at most d blocks, so they agree exactly on at least
 *    t = m − d of them (pigeonhole). For every combination of t blocks, the values are grouped by those
 *    blocks (counting sorts, one block per level inside the previous level's groups; the last block
 *    chains equal keys instead of moving values), and within each group every two values are compared
 *    by popcount. A pair agreeing on more than t blocks is kept only in the group of its first t
 *    agreeing blocks, so it is found once. m is chosen by an estimated cost (9 blocks of 7–8 bits, t = 3,
 *    for d = 6 and a million values or more). Block k holds bits k, k+m, k+2m... of the hash, so every
 *    block samples every row of the dHash grid and images sharing a flat region do not pile into one
 *    group. The work is sequential over typed arrays: an index queried value by value (multi-index
 *    hashing with d+1 blocks) was tried first and was over ten times slower at a million values, its
 *    lookups being cache misses and its buckets large. The combinations are independent, so finalize
 *    cuts them into runs of block prefixes for worker threads over shared hashes (markRowsOnThreads,
 *    joinParts); a group small enough to compare whole before the prefix is fixed belongs to one part.
 * 3. The walk in pair_id order, each value's neighbours (values within d) in hand: a value's mark is
 *    the earliest reference among its neighbours, remembered for its later pairs once found.
 * The cost grows with the number of near pairs among distinct values: k distinct but mutually near
 * hashes (a burst of frames) are k²/2 pairs, harmless for bursts of thousands.
 */
import { availableParallelism } from 'node:os';
import { UserError } from '../errors.ts';
import { ThreadPool } from '../util/thread-pool.ts';
import { joinParts, joinWhole, permuteBits, planJoin, type JoinPlan, type JoinRequest, type PairArrays } from './near-duplicates-join.ts';

export interface NearDuplicateInput {
  /** Unique pair ids; any order (the result is aligned with the input rows). */
  pairIds: readonly string[];
  /** `duplicates.source_dhash`: 16 hex digits, or null where no hash was recorded. */
  dhashes: readonly (string | null | undefined)[];
  /** Whether each pair is accepted (only accepted pairs can be references). */
  accepted: ArrayLike<boolean | number>;
}

export const DEFAULT_MAX_DISTANCE = 6;
/** Larger distances make the join's combinations explode (and dHash matches become meaningless). */
export const MAX_DISTANCE_LIMIT = 12;

const NONE = -1;

/**
 * For every input row, the pair_id of the earliest reference (see the rule above) whose dHash is within
 * maxDistance bits, or null.
 */
export function findNearDuplicates(input: NearDuplicateInput, maxDistance = DEFAULT_MAX_DISTANCE): (string | null)[] {
  const markRow = findNearDuplicateRows(input, maxDistance);
  const result: (string | null)[] = new Array(markRow.length);
  for (let row = 0; row < markRow.length; row++) result[row] = markRow[row] === NONE ? null : input.pairIds[markRow[row]];
  return result;
}

/**
 * The same as row numbers: for every input row, the input row of its mark, or −1. For millions of rows
 * (no array of millions of strings to allocate, which costs full garbage collections of a large heap).
 */
export function findNearDuplicateRows(input: NearDuplicateInput, maxDistance = DEFAULT_MAX_DISTANCE): Int32Array {
  const { pairIds, dhashes, accepted } = input;
  const n = pairIds.length;
  if (dhashes.length !== n || accepted.length !== n) {
    throw new Error(`findNearDuplicates: ${n} pair ids, ${dhashes.length} hashes and ${accepted.length} accepted flags`);
  }
  const hashes = new HashColumns(n);
  for (let row = 0; row < n; row++) {
    const text = dhashes[row];
    if (text == null) continue;
    if (typeof text !== 'string' || !hashes.set(row, text)) {
      throw new UserError(`duplicates.source_dhash of pair ${JSON.stringify(pairIds[row])}: expected 16 hex digits, got ${JSON.stringify(text)}`);
    }
  }
  const flags = new Uint8Array(n);
  for (let row = 0; row < n; row++) flags[row] = accepted[row] ? 1 : 0;
  return markRows({ order: pairIdOrder(pairIds), hashes, accepted: flags }, maxDistance);
}

/** Each row's dHash as two 32-bit halves, and whether it has one: 9 bytes a row instead of a string. */
export class HashColumns {
  readonly hi: Uint32Array;
  readonly lo: Uint32Array;
  readonly present: Uint8Array;
  private readonly halves = new Uint32Array(2);

  constructor(readonly rows: number) {
    this.hi = new Uint32Array(rows);
    this.lo = new Uint32Array(rows);
    this.present = new Uint8Array(rows);
  }

  /** Record row's hash from its 16 hex digits; false when the text is not that. */
  set(row: number, text: string): boolean {
    if (!parseHash(text, this.halves)) return false;
    this.hi[row] = this.halves[0];
    this.lo[row] = this.halves[1];
    this.present[row] = 1;
    return true;
  }
}

/** The compact form of the input: rows already in pair_id order, hashes as halves, accepted as 0/1. */
export interface PairHashColumns {
  /** Every row once, in pair_id order. */
  order: Int32Array;
  hashes: HashColumns;
  accepted: Uint8Array;
}

/** findNearDuplicateRows over the compact form, on this thread. */
export function markRows(input: PairHashColumns, maxDistance = DEFAULT_MAX_DISTANCE): Int32Array {
  const { values, canBeReference, plan } = prepareJoin(input, maxDistance, false);
  return walk(input, values, neighbourLists(values.count, [joinWhole(values, canBeReference, maxDistance, plan)], canBeReference));
}

/**
 * markRows with the join of step 2 split across worker threads (finalize's pass, src/run/duplicates.ts):
 * each thread takes a run of block prefixes (joinParts) over the same shared hashes. The marks are the
 * same as markRows's, on any number of threads: every near pair is found once, by exactly one thread.
 */
export async function markRowsOnThreads(input: PairHashColumns, maxDistance = DEFAULT_MAX_DISTANCE, threads = availableParallelism()): Promise<Int32Array> {
  // The values' halves (permuted in place) and flags live in shared memory, read by every thread.
  const { values, canBeReference, plan } = prepareJoin(input, maxDistance, true);
  const parts = plan && values.count >= 2 ? joinParts(plan, threads) : [];
  const found = parts.length < 2 ? [joinWhole(values, canBeReference, maxDistance, plan)] : await joinOnThreads(values, canBeReference, maxDistance, plan!, parts);
  return walk(input, values, neighbourLists(values.count, found, canBeReference));
}

/** The parts of the join, one worker thread each, over the values' halves (permuted in place, shared). */
async function joinOnThreads(values: { hi: Uint32Array; lo: Uint32Array }, canBeReference: Uint8Array, maxDistance: number, plan: JoinPlan, parts: number[][][]): Promise<PairArrays[]> {
  const { hi, lo } = permuteBits(values.hi, values.lo, plan);
  const { pool } = await ThreadPool.start<JoinRequest, PairArrays, null>(new URL('./near-duplicates-worker.ts', import.meta.url), parts.length, {}, 'near-duplicate thread');
  try {
    return await Promise.all(parts.map((prefixes) => pool.run({ hi, lo, canBeReference, maxDistance, plan, prefixes })));
  } finally {
    await pool.close();
  }
}

/**
 * The checks, the distinct hash values and which can be references (in shared memory for threads), and
 * the join's plan (none for d = 0).
 */
function prepareJoin(input: PairHashColumns, maxDistance: number, shared: boolean) {
  const { order, hashes, accepted } = input;
  const n = hashes.rows;
  if (order.length !== n || accepted.length !== n) throw new Error(`findNearDuplicates: ${order.length} ordered rows, ${n} hashes and ${accepted.length} accepted flags`);
  if (!Number.isInteger(maxDistance) || maxDistance < 0 || maxDistance > MAX_DISTANCE_LIMIT) {
    throw new RangeError(`findNearDuplicates: maxDistance must be an integer in 0..${MAX_DISTANCE_LIMIT}, got ${maxDistance}`);
  }
  const values = distinctValues(hashes, shared);
  const canBeReference = new Uint8Array(shared ? new SharedArrayBuffer(values.count) : new ArrayBuffer(values.count));
  for (let row = 0; row < n; row++) if (accepted[row] && values.of[row] !== NONE) canBeReference[values.of[row]] = 1;
  return { values, canBeReference, plan: maxDistance === 0 ? null : planJoin(maxDistance, values.count) };
}

/** Step 3: the walk in pair_id order, with each value's neighbours that can be references. */
function walk(input: PairHashColumns, values: { of: Int32Array; count: number }, near: { offsets: Int32Array; neighbours: Int32Array }): Int32Array {
  const { order, accepted } = input;
  const n = order.length;
  // referenceAt[value]: the position (in pair_id order) of the value's reference pair, if it has one.
  // markOf[value]: the position every later pair with that value is marked with, once known.
  const referenceAt = new Int32Array(values.count).fill(NONE);
  const markOf = new Int32Array(values.count).fill(NONE);
  const markRow = new Int32Array(n).fill(NONE);
  for (let position = 0; position < n; position++) {
    const row = order[position];
    const value = values.of[row];
    if (value === NONE) continue;
    if (markOf[value] === NONE) {
      let earliest = NONE;
      for (let i = near.offsets[value]; i < near.offsets[value + 1]; i++) {
        const at = referenceAt[near.neighbours[i]];
        if (at !== NONE && (earliest === NONE || at < earliest)) earliest = at;
      }
      if (earliest !== NONE) markOf[value] = earliest;
      else if (accepted[row]) {
        referenceAt[value] = markOf[value] = position;
        continue;
      }
    }
    if (markOf[value] !== NONE) markRow[row] = order[markOf[value]];
  }
  return markRow;
}

/**
 * Rows sorted by their 64-bit key: a least-significant-digit radix sort, four stable counting passes of
 * 16 bits (sorting 10M row numbers with a comparator over strings took tens of seconds).
 */
export function keyOrder(keys: HashColumns): Int32Array {
  const n = keys.rows;
  let order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  let next = new Int32Array(n);
  const counts = new Int32Array(65537);
  for (const [words, shift] of [[keys.lo, 0], [keys.lo, 16], [keys.hi, 0], [keys.hi, 16]] as const) {
    counts.fill(0);
    for (let i = 0; i < n; i++) counts[((words[i] >>> shift) & 0xffff) + 1]++;
    for (let d = 1; d <= 65536; d++) counts[d] += counts[d - 1];
    for (let i = 0; i < n; i++) {
      const r = order[i];
      next[counts[(words[r] >>> shift) & 0xffff]++] = r;
    }
    [order, next] = [next, order];
  }
  return order;
}

/** Row indices sorted by pair id (JS `<`); checks the ids are unique. Already sorted input is a fast path. */
function pairIdOrder(pairIds: readonly string[]): Int32Array {
  const n = pairIds.length;
  let sorted = true;
  for (let i = 1; i < n && sorted; i++) sorted = pairIds[i - 1] < pairIds[i];
  let order: Int32Array;
  if (sorted) order = Int32Array.from({ length: n }, (_, i) => i);
  else {
    const rows = Array.from({ length: n }, (_, i) => i);
    rows.sort((a, b) => (pairIds[a] < pairIds[b] ? -1 : pairIds[a] > pairIds[b] ? 1 : 0));
    order = Int32Array.from(rows);
    for (let i = 1; i < n; i++) {
      if (pairIds[order[i - 1]] === pairIds[order[i]]) throw new UserError(`pair_id ${JSON.stringify(pairIds[order[i]])} appears twice; near-duplicate marking needs unique pair ids`);
    }
  }
  return order;
}

/** Hex digit value by character code, -1 for anything else. */
const HEX_DIGIT = new Int8Array(128).fill(-1);
for (let c = 0; c < 16; c++) HEX_DIGIT[c.toString(16).charCodeAt(0)] = HEX_DIGIT[c.toString(16).toUpperCase().charCodeAt(0)] = c;

/** The two 32-bit halves of 16 hex digits into out[0], out[1]; false if the text is not that. */
export function parseHash(text: string, out: Uint32Array): boolean {
  if (text.length !== 16) return false;
  let h = 0, l = 0;
  for (let i = 0; i < 8; i++) {
    const dh = hexDigit(text.charCodeAt(i)), dl = hexDigit(text.charCodeAt(i + 8));
    if (dh < 0 || dl < 0) return false;
    h = (h << 4) | dh;
    l = (l << 4) | dl;
  }
  out[0] = h;
  out[1] = l;
  return true;
}

const hexDigit = (code: number) => (code < 128 ? HEX_DIGIT[code] : -1);

/** Each row's distinct hash value (`of`, NONE without a hash) and the values as two 32-bit halves. */
function distinctValues(hashes: HashColumns, shared: boolean) {
  const n = hashes.rows;
  const of = new Int32Array(n).fill(NONE);
  const buffer = () => (shared ? new SharedArrayBuffer(4 * n) : new ArrayBuffer(4 * n));
  const hi = new Uint32Array(buffer()), lo = new Uint32Array(buffer());
  let count = 0;
  // Open addressing on the 64-bit value: slot → value + 1 (0 is empty).
  let slotBits = 4;
  while (2 ** slotBits < n * 1.5) slotBits++;
  const slots = new Int32Array(2 ** slotBits);
  const slotMask = slots.length - 1;
  for (let row = 0; row < n; row++) {
    if (!hashes.present[row]) continue;
    const h = hashes.hi[row], l = hashes.lo[row];
    let slot = Math.imul(h ^ Math.imul(l, 0x85ebca6b), 0x9e3779b1) >>> (32 - slotBits);
    for (;;) {
      const value = slots[slot] - 1;
      if (value === NONE) {
        hi[count] = h;
        lo[count] = l;
        of[row] = count++;
        slots[slot] = count;
        break;
      }
      if (hi[value] === h && lo[value] === l) {
        of[row] = value;
        break;
      }
      slot = (slot + 1) & slotMask;
    }
  }
  return { of, hi: hi.subarray(0, count), lo: lo.subarray(0, count), count };
}

/**
 * The near pairs of values (from one or several threads) as neighbour lists (CSR):
 * neighbours[offsets[v]..offsets[v+1]) are the values near v that can be references (the only neighbours
 * the walk reads).
 */
function neighbourLists(count: number, found: PairArrays[], canBeReference: Uint8Array) {
  const offsets = new Int32Array(count + 1);
  for (const pairs of found) {
    for (let i = 0; i < pairs.length; i++) {
      const a = pairs.a[i], b = pairs.b[i];
      if (canBeReference[b]) offsets[a + 1]++;
      if (canBeReference[a]) offsets[b + 1]++;
    }
  }
  for (let v = 0; v < count; v++) offsets[v + 1] += offsets[v];
  const neighbours = new Int32Array(offsets[count]);
  const fill = offsets.slice(0, count);
  for (const pairs of found) {
    for (let i = 0; i < pairs.length; i++) {
      const a = pairs.a[i], b = pairs.b[i];
      if (canBeReference[b]) neighbours[fill[a]++] = b;
      if (canBeReference[a]) neighbours[fill[b]++] = a;
    }
  }
  return { offsets, neighbours };
}

