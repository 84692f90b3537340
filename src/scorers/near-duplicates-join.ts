/**
 * Step 2 of the near-duplicate search (near-duplicates.ts): the self-join of the distinct hash values,
 * every two values within maxDistance bits found once. The plan, the bit permutation, the block join
 * (BlockJoin), and its cut into parts for worker threads (joinParts; a part runs in
 * near-duplicates-worker.ts through joinPart). Kept apart from near-duplicates.ts, which starts the
 * threads, so that the worker does not import the module that names it.
 */

/** Near pairs of values, a[i] and b[i] for i < length. */
export interface PairArrays {
  a: Int32Array;
  b: Int32Array;
  length: number;
}

/** A part of the join for one thread: its hashes (bits permuted, shared), and the block prefixes it takes. */
export interface JoinRequest {
  hi: Int32Array;
  lo: Int32Array;
  canBeReference: Uint8Array;
  maxDistance: number;
  plan: JoinPlan;
  prefixes: number[][];
}

/** The whole join on this thread (none for d = 0: equal hashes are one value already). */
export function joinWhole(values: { hi: Uint32Array; lo: Uint32Array }, canBeReference: Uint8Array, maxDistance: number, plan: JoinPlan | null): PairArrays {
  return plan ? new BlockJoin(permuteBits(values.hi, values.lo, plan), canBeReference, maxDistance, plan).run(null) : new PairList();
}

/** One thread's part of the join (near-duplicates-worker.ts): the near pairs under its prefixes. */
export function joinPart(r: JoinRequest): PairArrays {
  const pairs = new BlockJoin(r, r.canBeReference, r.maxDistance, r.plan).run(r.prefixes);
  return { a: pairs.a.slice(0, pairs.length), b: pairs.b.slice(0, pairs.length), length: pairs.length };
}

/**
 * The join's work cut for `threads` threads. A unit is a prefix of blocks the first levels group by (the
 * first two blocks, or one when t = 2; none when t = 1, which cannot be cut); the units, in order, are
 * cut into runs of about equal work (below), so a thread sorts by each of its first blocks once.
 */
export function joinParts(plan: JoinPlan, threads: number): number[][][] {
  const m = plan.blockBits.length, t = plan.agree;
  const prefixLength = Math.min(2, t - 1);
  const units: number[][] = [];
  const extend = (prefix: number[]) => {
    if (prefix.length === prefixLength) return void units.push(prefix);
    for (let k = prefix.length ? prefix[prefix.length - 1] + 1 : 0; k <= m - t + prefix.length; k++) extend([...prefix, k]);
  };
  extend([]);
  // A unit's weight: the combinations of t blocks that start with it, plus one for its own grouping passes
  // (measured at 4M values: each unit cost about one combination more than its combinations).
  const weights = units.map((u) => choose(m - 1 - (u.length ? u[u.length - 1] : -1), t - u.length) + 1);
  const total = weights.reduce((a, b) => a + b, 0);
  const parts: number[][][] = Array.from({ length: Math.max(1, Math.min(threads, units.length)) }, () => []);
  let before = 0;
  units.forEach((u, i) => {
    parts[Math.min(parts.length - 1, Math.floor(((before + weights[i] / 2) / total) * parts.length))].push(u);
    before += weights[i];
  });
  return parts.filter((p) => p.length > 0);
}

/** How the join splits the hash: m blocks of these sizes, grouped by every combination of `agree` of them. */
export interface JoinPlan {
  blockBits: number[];
  agree: number;
}

/**
 * The plan of least estimated cost for d = maxDistance over `values` distinct values: per value and
 * combination of t blocks, one pass and the comparisons in its group (values / 2^(bits of t blocks)).
 * Blocks have at most 11 bits so a counting sort's histogram stays small. Measured at d = 6: 9 blocks
 * (its choice from a million values up) took 31 s of CPU at 10M values, 8 blocks 85 s, 10 blocks 41 s.
 */
export function planJoin(maxDistance: number, values: number): JoinPlan {
  let best: JoinPlan = { blockBits: [], agree: 0 };
  let bestCost = Infinity;
  for (let m = Math.max(6, maxDistance + 1); m <= Math.min(64, maxDistance + 8); m++) {
    const t = m - maxDistance;
    const blockBits = Array.from({ length: m }, (_, k) => Math.floor(64 / m) + (k < 64 % m ? 1 : 0));
    const cost = choose(m, t) * (3 + values / 2 ** ((64 * t) / m));
    if (cost < bestCost) [best, bestCost] = [{ blockBits, agree: t }, cost];
  }
  return best;
}

function choose(n: number, k: number): number {
  let c = 1;
  for (let i = 0; i < k; i++) c = (c * (n - i)) / (i + 1);
  return c;
}

/**
 * Every two of the values (hashes as 32-bit halves) within maxDistance bits of each other, each pair
 * once, as value indices a[i] < b[i] in no particular order: the join of step 2 on its own. With `parts`,
 * the join is cut as for that many threads (joinParts) and the parts run one after another here;
 * `sliceValues` sets how many values a level moves at once (SLICE_VALUES).
 */
export function nearValuePairs(hi: Uint32Array, lo: Uint32Array, maxDistance: number, parts = 1, sliceValues = SLICE_VALUES): { a: Int32Array; b: Int32Array } {
  const count = hi.length;
  if (maxDistance === 0) throw new RangeError('nearValuePairs: maxDistance 0 is equality, not a join');
  const plan = planJoin(maxDistance, count);
  const permuted = permuteBits(hi.slice(), lo.slice(), plan);
  const canBeReference = new Uint8Array(count).fill(1);
  const found = parts > 1
    ? joinParts(plan, parts).map((prefixes) => new BlockJoin(permuted, canBeReference, maxDistance, plan, sliceValues).run(prefixes))
    : [new BlockJoin(permuted, canBeReference, maxDistance, plan, sliceValues).run(null)];
  const a = new Int32Array(found.reduce((n, f) => n + f.length, 0)), b = new Int32Array(a.length);
  let at = 0;
  for (const f of found) {
    a.set(f.a.subarray(0, f.length), at);
    b.set(f.b.subarray(0, f.length), at);
    at += f.length;
  }
  for (let i = 0; i < a.length; i++) if (a[i] > b[i]) [a[i], b[i]] = [b[i], a[i]];
  return { a, b };
}

class PairList {
  a = new Int32Array(1024);
  b = new Int32Array(1024);
  length = 0;

  push(a: number, b: number): void {
    if (this.length === this.a.length) {
      const grow = (old: Int32Array) => {
        const next = new Int32Array(old.length * 2);
        next.set(old);
        return next;
      };
      this.a = grow(this.a);
      this.b = grow(this.b);
    }
    this.a[this.length] = a;
    this.b[this.length++] = b;
  }
}

/** Values (id, hi, lo) being grouped at one level of the join, with the start of each group. */
interface Level {
  /** The block key of each value of the group being grouped. */
  keys: Uint16Array;
  /** The values of one slice of the key range, in key order. */
  ids: Int32Array;
  hi: Int32Array;
  lo: Int32Array;
  /** Values per key, and where each key's group starts in the slice (a counting sort). */
  count: Int32Array;
  groupStart: Int32Array;
}

/** The end of a chain of equal last-block keys (BlockJoin.groupLast). */
const END_OF_CHAIN = -1;
const SMALL_GROUP = 32;
/**
 * The most values a level moves at once (unless one key has more): 12 bytes a value for a slice of the
 * key range, 24 MB, instead of for every value (120 MB a thread at the first level of 10M values). Smaller
 * slices cost time (each slice reads the level's keys again): 10M random values on one thread took
 * 28.8 s unsliced, 30.3 s with this, 37.0 s with 2^19.
 */
const SLICE_VALUES = 1 << 21;

/** Where each block of the plan starts in the permuted hash (bit p < 32 in lo). */
function blockStarts(plan: JoinPlan): number[] {
  const starts: number[] = [];
  for (let k = 0, start = 0; k < plan.blockBits.length; start += plan.blockBits[k++]) starts.push(start);
  return starts;
}

/**
 * The hashes with their bits moved so each block of the plan is contiguous bits: the hash's bits are
 * dealt to the blocks in turn (skipping full ones), so every block samples every row of the dHash grid.
 * In place: the arrays are the join's from then on (shared memory stays shared).
 */
export function permuteBits(hi: Uint32Array, lo: Uint32Array, plan: JoinPlan): { hi: Int32Array; lo: Int32Array } {
  const { blockBits } = plan, m = blockBits.length;
  const start = blockStarts(plan);
  // Bit j of the hash (j < 32 in lo) moves to newPosition[j].
  const newPosition: number[] = [];
  const filled = new Array<number>(m).fill(0);
  for (let j = 0, k = 0; j < 64; j++, k = (k + 1) % m) {
    while (filled[k] === blockBits[k]) k = (k + 1) % m;
    newPosition.push(start[k] + filled[k]++);
  }
  const toHi = new Int32Array(8 * 256), toLo = new Int32Array(8 * 256);
  for (let byte = 0; byte < 8; byte++) {
    for (let v = 0; v < 256; v++) {
      for (let b = 0; b < 8; b++) {
        if (!((v >> b) & 1)) continue;
        const p = newPosition[byte * 8 + b];
        if (p < 32) toLo[byte * 256 + v] |= 1 << p;
        else toHi[byte * 256 + v] |= 1 << (p - 32);
      }
    }
  }
  const n = hi.length;
  const out = { hi: new Int32Array(hi.buffer, hi.byteOffset, n), lo: new Int32Array(lo.buffer, lo.byteOffset, n) };
  for (let i = 0; i < n; i++) {
    let h = 0, l = 0;
    for (let byte = 0; byte < 8; byte++) {
      const v = ((byte < 4 ? lo[i] >>> (8 * byte) : hi[i] >>> (8 * byte - 32)) & 255) + byte * 256;
      h |= toHi[v];
      l |= toLo[v];
    }
    out.hi[i] = h;
    out.lo[i] = l;
  }
  return out;
}

/**
 * The self-join of step 2 (module comment) over hashes whose bits permuteBits has moved; it only reads
 * them. run(null) does the whole join; run(prefixes) only the combinations that start with one of the
 * given block prefixes (one thread's part, joinParts).
 */
class BlockJoin {
  /** Block k is bits start[k] .. start[k] + blockBits[k] of the permuted hash (bit p < 32 in lo). */
  private readonly start: number[];
  private readonly levels: Level[] = [];
  /** The chains of the last block (only one last block is grouped at a time). */
  private readonly head: Int32Array;
  private next = new Int32Array(0);
  private keys = new Uint16Array(0);
  private readonly path: number[] = [];
  private readonly pairs = new PairList();
  /** With prefixes: every prefix of a given prefix, as text ("k0", "k0,k1"), and the given prefixes' length. */
  private assigned: Set<string> | null = null;
  private prefixLength = 0;

  private readonly hi: Int32Array;
  private readonly lo: Int32Array;

  constructor(
    hashes: { hi: Int32Array; lo: Int32Array },
    private readonly canBeReference: Uint8Array,
    private readonly maxDistance: number,
    private readonly plan: JoinPlan,
    private readonly sliceValues = SLICE_VALUES,
  ) {
    ({ hi: this.hi, lo: this.lo } = hashes);
    this.head = new Int32Array(2 ** Math.max(...plan.blockBits));
    this.start = blockStarts(plan);
  }

  run(prefixes: readonly (readonly number[])[] | null): PairList {
    if (prefixes && prefixes.some((p) => p.length > 0)) {
      this.assigned = new Set(prefixes.flatMap((p) => p.map((_, i) => p.slice(0, i + 1).join(','))));
      this.prefixLength = prefixes[0].length;
    }
    const count = this.hi.length;
    if (count >= 2) this.group(0, identity(count), this.hi, this.lo, 0, count, 0);
    return this.pairs;
  }

  /** Whether this part of the join groups by block k at this depth (path[0..depth) being set). */
  private takes(depth: number, k: number): boolean {
    if (!this.assigned || depth >= this.prefixLength) return true;
    return this.assigned.has([...this.path.slice(0, depth), k].join(','));
  }

  /**
   * Whether this part compares a small group at this depth: a group below the prefixes' length is met by
   * every part with a prefix that extends its path, and belongs to the one with the first such prefix.
   */
  private ownsSmallGroup(depth: number): boolean {
    if (!this.assigned || depth >= this.prefixLength) return true;
    const first = this.path.slice(0, depth);
    while (first.length < this.prefixLength) first.push(first.length ? first[first.length - 1] + 1 : 0);
    return this.assigned.has(first.join(','));
  }

  private blockKey(h: number, l: number, k: number): number {
    const start = this.start[k], bits = this.plan.blockBits[k];
    const v = start >= 32 ? h >>> (start - 32) : start + bits <= 32 ? l >>> start : (l >>> start) | (h << (32 - start));
    return v & ((1 << bits) - 1);
  }

  /** out[i − from] = block k of values [from, to). */
  private blockKeys(k: number, hi: Int32Array, lo: Int32Array, from: number, to: number, out: Uint16Array): void {
    const start = this.start[k], mask = (1 << this.plan.blockBits[k]) - 1;
    if (start >= 32) for (let i = from; i < to; i++) out[i - from] = (hi[i] >>> (start - 32)) & mask;
    else if (start + this.plan.blockBits[k] <= 32) for (let i = from; i < to; i++) out[i - from] = (lo[i] >>> start) & mask;
    else for (let i = from; i < to; i++) out[i - from] = ((lo[i] >>> start) | (hi[i] << (32 - start))) & mask;
  }

  /** Values [from, to) of (ids, hi, lo) agree on the blocks in path[0..depth); group them by one more block. */
  private group(depth: number, ids: Int32Array, hi: Int32Array, lo: Int32Array, from: number, to: number, firstBlock: number): void {
    const { blockBits, agree } = this.plan;
    const lastBlock = blockBits.length - (agree - depth);
    // A small group costs less compared whole than grouped again, block after block.
    if (to - from <= SMALL_GROUP) {
      if (this.ownsSmallGroup(depth)) this.compare(depth, ids, hi, lo, from, to);
      return;
    }
    if (depth + 1 === agree) return this.groupLast(depth, ids, hi, lo, from, to, firstBlock);
    const level = this.level(depth, to - from);
    const { keys, count, groupStart: start } = level;
    for (let k = firstBlock; k <= lastBlock; k++) {
      if (!this.takes(depth, k)) continue;
      // Counting sort by block k into the level's arrays, a slice of the key range at a time.
      const buckets = 1 << blockBits[k];
      this.blockKeys(k, hi, lo, from, to, keys);
      count.fill(0, 0, buckets);
      for (let i = 0; i < to - from; i++) count[keys[i]]++;
      this.path[depth] = k;
      for (let first = 0, last = 0; first < buckets; first = last) {
        let size = count[last++];
        while (last < buckets && size + count[last] <= this.sliceValues) size += count[last++];
        if (level.ids.length < size) [level.ids, level.hi, level.lo] = [new Int32Array(size), new Int32Array(size), new Int32Array(size)];
        start[first] = 0;
        for (let key = first; key < last; key++) start[key + 1] = start[key] + count[key];
        for (let i = from; i < to; i++) {
          const key = keys[i - from];
          if (key < first || key >= last) continue;
          const at = start[key]++;
          level.ids[at] = ids[i];
          level.hi[at] = hi[i];
          level.lo[at] = lo[i];
        }
        // start[key] is now where group key + 1 begins.
        for (let key = first, begin = 0; key < last; begin = start[key++]) {
          const end = start[key];
          if (end - begin >= 2) this.group(depth + 1, level.ids, level.hi, level.lo, begin, end, k + 1);
        }
      }
    }
  }

  /**
   * The last block of the combination: no need to move the values, each block value's values are
   * chained (head by block value, then `next`) and each value is compared with those before it.
   */
  private groupLast(depth: number, ids: Int32Array, hi: Int32Array, lo: Int32Array, from: number, to: number, firstBlock: number): void {
    const { blockBits } = this.plan, d = this.maxDistance;
    if (this.next.length < to - from) {
      this.next = new Int32Array(to - from);
      this.keys = new Uint16Array(to - from);
    }
    const { head, next, keys } = this;
    for (let k = firstBlock; k < blockBits.length; k++) {
      const buckets = 1 << blockBits[k];
      this.blockKeys(k, hi, lo, from, to, keys);
      head.fill(END_OF_CHAIN, 0, buckets);
      this.path[depth] = k;
      for (let i = from; i < to; i++) {
        const key = keys[i - from];
        const h = hi[i], l = lo[i];
        for (let j = head[key]; j !== END_OF_CHAIN; j = next[j - from]) {
          const xh = h ^ hi[j], xl = l ^ lo[j], high = popcount32(xh);
          if (high > d || high + popcount32(xl) > d) continue;
          const a = ids[i], b = ids[j];
          if ((this.canBeReference[a] || this.canBeReference[b]) && this.firstAgreeingBlocksArePath(xh, xl, depth + 1)) this.pairs.push(a, b);
        }
        next[i - from] = head[key];
        head[key] = i;
      }
    }
  }

  /** The level of this depth, with keys for `size` values (its slice arrays grow as slices need). */
  private level(depth: number, size: number): Level {
    const buckets = 2 ** Math.max(...this.plan.blockBits);
    const level = (this.levels[depth] ??= { keys: new Uint16Array(0), ids: new Int32Array(0), hi: new Int32Array(0), lo: new Int32Array(0), count: new Int32Array(buckets), groupStart: new Int32Array(buckets + 1) });
    // Only the call at this depth uses this level, and it asks before it starts: replacing its arrays is safe.
    if (level.keys.length < size) level.keys = new Uint16Array(size);
    return level;
  }

  /**
   * Every two values of a group agreeing on the blocks in path[0..depth): keep those within maxDistance
   * whose first agreeing blocks are those (the one group of the join that reports the pair).
   */
  private compare(depth: number, ids: Int32Array, hi: Int32Array, lo: Int32Array, begin: number, end: number): void {
    const d = this.maxDistance;
    for (let i = begin; i < end; i++) {
      const h = hi[i], l = lo[i], a = ids[i];
      for (let j = i + 1; j < end; j++) {
        const xh = h ^ hi[j], xl = l ^ lo[j], high = popcount32(xh);
        if (high > d || high + popcount32(xl) > d) continue;
        const b = ids[j];
        if ((this.canBeReference[a] || this.canBeReference[b]) && this.firstAgreeingBlocksArePath(xh, xl, depth)) this.pairs.push(a, b);
      }
    }
  }

  /** Whether path[0..depth) lists the first blocks on which the two values (xh, xl = their XOR) agree. */
  private firstAgreeingBlocksArePath(xh: number, xl: number, depth: number): boolean {
    for (let k = 0, found = 0; found < depth; k++) {
      if (this.blockKey(xh, xl, k) !== 0) continue;
      if (this.path[found++] !== k) return false;
    }
    return true;
  }
}

function identity(n: number): Int32Array {
  const ids = new Int32Array(n);
  for (let i = 0; i < n; i++) ids[i] = i;
  return ids;
}

function popcount32(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}
