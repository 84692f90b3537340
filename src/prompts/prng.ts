/**
 * The prompt expander's seedable PRNG: xoshiro128** (Blackman & Vigna, 2018) on 32-bit words,
 * its 128-bit state filled from splitmix64 (BigInt, only at seeding time).
 *
 *   state0 = (seed XOR streamTag) mod 2^64
 *   s0 s1 = the high and low 32-bit halves of splitmix64 output #1, s2 s3 = of output #2
 *   next() = rotl32(s1 * 5, 7) * 9, then the xoshiro128 state update.
 *   uniform() = next() / 2^32, in [0, 1).
 *
 * Everything is 32-bit integer math (Math.imul, >>>), so every platform yields the same sequence.
 */
const MASK64 = (1n << 64n) - 1n;

function splitmix64(state: bigint): { state: bigint; out: bigint } {
  const next = (state + 0x9e3779b97f4a7c15n) & MASK64;
  let z = next;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return { state: next, out: z ^ (z >> 31n) };
}

export class Prng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** seed: an integer in [0, 2^64); streamTag separates independent streams drawn from one seed. */
  constructor(seed: bigint | number, streamTag = 0n) {
    let state = (BigInt(seed) ^ streamTag) & MASK64;
    const a = splitmix64(state);
    state = a.state;
    const b = splitmix64(state);
    this.s0 = Number(a.out >> 32n) >>> 0;
    this.s1 = Number(a.out & 0xffffffffn) >>> 0;
    this.s2 = Number(b.out >> 32n) >>> 0;
    this.s3 = Number(b.out & 0xffffffffn) >>> 0;
    // An all-zero state would stay zero; splitmix64 cannot output two zero words in a row, but be explicit.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s3 = 1;
  }

  /** The next 32-bit unsigned integer. */
  next(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A float in [0, 1) with 32 bits of resolution. */
  uniform(): number {
    return this.next() / 4294967296;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Index into a cumulative weight table: the first i with cumulative[i] > r * total. */
export function pickWeighted(prng: Prng, cumulative: Float64Array): number {
  const target = prng.uniform() * cumulative[cumulative.length - 1];
  let lo = 0;
  let hi = cumulative.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cumulative[mid] > target) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

export function cumulativeWeights(weights: number[]): Float64Array {
  const out = new Float64Array(weights.length);
  let sum = 0;
  weights.forEach((w, i) => (out[i] = sum += w));
  return out;
}
