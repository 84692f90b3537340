/**
 * The Parquet bloom filter of a string column, the same bits as hyparquet-writer's BloomBuilder gives,
 * computed without BigInt.
 *
 * Why by hand: hyparquet's xxhash64 works in BigInt and its builder keeps a Set of BigInt hashes; on the
 * manifest's pair_id column that was about 7% of finalize's CPU time. Here each value's XXH64 (seed 0, over
 * its UTF-8 bytes: the column's PLAIN value without its length) is computed in 32-bit halves, the
 * distinct hashes are counted by sorting them in a BigUint64Array (a native sort, no BigInt per value),
 * and the filter is sized and filled as BloomBuilder does (parquet-java's sizing, split-block insert).
 * test/util/bloom.test.ts checks both against hyparquet on random strings.
 */
import { optimalNumBytes } from 'hyparquet-writer/src/bloom.js';

const SALT = [0x47b6137b, 0x44974d91, 0x8824ad5b, 0xa2b7289d, 0x705495c7, 0x2df1424b, 0x9efc4947, 0x5c6bfb31];
const MIN_BYTES = 32;

// XXH64's primes as [high 32 bits, low 32 bits].
const P1 = [0x9e3779b1, 0x85ebca87];
const P2 = [0xc2b2ae3d, 0x27d4eb4f];
const P3 = [0x165667b1, 0x9e3779f9];
const P4 = [0x85ebca77, 0xc2b2ae63];
const P5 = [0x27d4eb2f, 0x165667c5];

/** A 64-bit unsigned integer in two unsigned 32-bit halves; every operation below works in place, mod 2^64. */
class U64 {
  constructor(
    public hi = 0,
    public lo = 0,
  ) {}

  set(hi: number, lo: number): this {
    this.hi = hi >>> 0;
    this.lo = lo >>> 0;
    return this;
  }

  add(hi: number, lo: number): this {
    const sum = this.lo + (lo >>> 0);
    this.lo = sum >>> 0;
    this.hi = (this.hi + hi + (sum > 0xffffffff ? 1 : 0)) >>> 0;
    return this;
  }

  xor(hi: number, lo: number): this {
    this.hi = (this.hi ^ hi) >>> 0;
    this.lo = (this.lo ^ lo) >>> 0;
    return this;
  }

  /** this × (hi, lo): the low 64 bits of the product. */
  mul(hi: number, lo: number): this {
    const aL = this.lo;
    // aL × lo exactly, in 16-bit limbs (each partial product < 2^32 is exact in a double).
    const a0 = aL & 0xffff;
    const a1 = aL >>> 16;
    const b0 = lo & 0xffff;
    const b1 = lo >>> 16;
    const p00 = a0 * b0;
    const p01 = a0 * b1;
    const p10 = a1 * b0;
    const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
    const low = (((mid & 0xffff) << 16) | (p00 & 0xffff)) >>> 0;
    const high = a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16);
    this.hi = (high + Math.imul(this.hi, lo) + Math.imul(aL, hi)) >>> 0;
    this.lo = low;
    return this;
  }

  rotl(r: number): this {
    const { hi, lo } = this;
    if (r >= 32) return this.set(lo, hi).rotl(r - 32);
    if (r === 0) return this;
    this.hi = ((hi << r) | (lo >>> (32 - r))) >>> 0;
    this.lo = ((lo << r) | (hi >>> (32 - r))) >>> 0;
    return this;
  }

  /** this ^= this >> r, for 0 < r < 64. */
  xorShiftRight(r: number): this {
    if (r >= 32) return this.xor(0, this.hi >>> (r - 32));
    return this.xor(this.hi >>> r, ((this.lo >>> r) | (this.hi << (32 - r))) >>> 0);
  }
}

// Scratch words reused by every call (this runs once per value of a column).
const acc = [new U64(), new U64(), new U64(), new U64()];
const h = new U64();
const lane = new U64();
const t = new U64();
const ROTATIONS = [1, 7, 12, 18];

/** acc = rotl(acc + lane × P2, 31) × P1, XXH64's round. */
function round(a: U64, hi: number, lo: number): U64 {
  return a.add(lane.set(hi, lo).mul(P2[0], P2[1]).hi, lane.lo).rotl(31).mul(P1[0], P1[1]);
}

const word = (b: ArrayLike<number>, i: number) => (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;

/** XXH64 with seed 0 of `bytes`, left in `h`. */
function xxhash64(bytes: ArrayLike<number>): U64 {
  const len = bytes.length;
  let i = 0;
  if (len >= 32) {
    acc[0].set(P1[0], P1[1]).add(P2[0], P2[1]);
    acc[1].set(P2[0], P2[1]);
    acc[2].set(0, 0);
    acc[3].set(0, 0).add(~P1[0], ~P1[1]).add(0, 1); // -P1
    for (; i + 32 <= len; i += 32) {
      for (let k = 0; k < 4; k++) round(acc[k], word(bytes, i + 8 * k + 4), word(bytes, i + 8 * k));
    }
    h.set(0, 0);
    for (let k = 0; k < 4; k++) {
      t.set(acc[k].hi, acc[k].lo).rotl(ROTATIONS[k]);
      h.add(t.hi, t.lo);
    }
    for (let k = 0; k < 4; k++) {
      t.set(0, 0);
      round(t, acc[k].hi, acc[k].lo);
      h.xor(t.hi, t.lo).mul(P1[0], P1[1]).add(P4[0], P4[1]);
    }
  } else {
    h.set(P5[0], P5[1]);
  }
  h.add(0, len);
  for (; i + 8 <= len; i += 8) {
    t.set(0, 0);
    round(t, word(bytes, i + 4), word(bytes, i));
    h.xor(t.hi, t.lo).rotl(27).mul(P1[0], P1[1]).add(P4[0], P4[1]);
  }
  if (i + 4 <= len) {
    t.set(0, word(bytes, i)).mul(P1[0], P1[1]);
    h.xor(t.hi, t.lo).rotl(23).mul(P2[0], P2[1]).add(P3[0], P3[1]);
    i += 4;
  }
  for (; i < len; i++) {
    t.set(0, bytes[i]).mul(P5[0], P5[1]);
    h.xor(t.hi, t.lo).rotl(11).mul(P1[0], P1[1]);
  }
  h.xorShiftRight(33).mul(P2[0], P2[1]);
  h.xorShiftRight(29).mul(P3[0], P3[1]);
  return h.xorShiftRight(32);
}

const encoder = new TextEncoder();
const ascii = new Uint8Array(256);

/** A string's UTF-8 bytes (ASCII strings are copied into a reused buffer instead of encoded). */
function utf8(s: string): ArrayLike<number> {
  if (s.length > ascii.length) return encoder.encode(s);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) return encoder.encode(s);
    ascii[i] = c;
  }
  return ascii.subarray(0, s.length);
}

/** XXH64 of a string's UTF-8 bytes as [high, low] 32-bit halves (exported for the test). */
export function xxhash64OfString(s: string): [number, number] {
  const r = xxhash64(utf8(s));
  return [r.hi, r.lo];
}

/**
 * The split-block bloom filter of a string column's non-null values, as BloomBuilder(element, { fpp,
 * maxBytes }).finalize() gives it; undefined for no values, or when a value is not a string (then the
 * caller uses BloomBuilder, which knows every type).
 */
export function stringBloomFilter(values: readonly unknown[], fpp = 0.01, maxBytes = 1024 * 1024): Uint32Array | undefined | 'not strings' {
  const halves = new Uint32Array(2 * values.length); // little-endian 64-bit words: low half first
  let n = 0;
  for (const v of values) {
    if (v === null || v === undefined) continue;
    if (typeof v !== 'string') return 'not strings';
    const r = xxhash64(utf8(v));
    halves[2 * n] = r.lo;
    halves[2 * n + 1] = r.hi;
    n++;
  }
  if (n === 0) return undefined;
  const hashes = new BigUint64Array(halves.buffer, 0, n).sort();
  let distinct = 1;
  for (let i = 1; i < n; i++) if (halves[2 * i] !== halves[2 * i - 2] || halves[2 * i + 1] !== halves[2 * i - 1]) distinct++;
  let numBytes = optimalNumBytes(distinct, fpp);
  while (numBytes > maxBytes && numBytes > MIN_BYTES) numBytes >>= 1;
  if (numBytes > maxBytes) return undefined;
  const blocks = new Uint32Array(numBytes >> 2);
  const numBlocks = blocks.length >> 3;
  for (let i = 0; i < hashes.length; i++) {
    const hi = halves[2 * i + 1];
    const lo = halves[2 * i] | 0;
    const offset = Math.floor((hi * numBlocks) / 4294967296) << 3; // (hash >> 32) × blocks >> 32, exact in a double
    for (let k = 0; k < 8; k++) blocks[offset + k] |= 1 << (Math.imul(lo, SALT[k]) >>> 27);
  }
  return blocks;
}
