/**
 * The project's documented random numbers: standard-normal float32 values from an integer seed,
 * identical on every machine and every run.
 *
 * Definition (see docs/schedulers.md):
 * - Generator: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11),
 *   counter-based. Key = (seed mod 2^32, floor(seed / 2^32)); counter block k = (k mod 2^32,
 *   floor(k / 2^32), 0, 0) for k = 0, 1, 2, ...
 * - Each block's four 32-bit words (x0, x1, x2, x3) make two uniforms with 53 random bits each:
 *   u1 = ((x0 >>> 5) * 2^26 + (x1 >>> 6) + 1) / 2^53 in (0, 1], u2 = ((x2 >>> 5) * 2^26 + (x3 >>> 6)) / 2^53.
 * - Box-Muller in float64: r = sqrt(-2 ln u1), z0 = r cos(2 pi u2), z1 = r sin(2 pi u2), each rounded
 *   to float32. The stream is z0(block 0), z1(block 0), z0(block 1), ...
 * `randn(seed, n)` is the first n values of the stream; `normalStream(seed).next(n)` continues it.
 * Math.log/cos/sin in V8 are a portable software implementation (fdlibm), so values do not depend on
 * the CPU or OS.
 */

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;
const TWO32 = 4294967296;
const TWO26 = 67108864;
const TWO53 = 9007199254740992;

/** High 32 bits of the 64-bit product of two uint32 values (16-bit limbs: every partial product is exact). */
function mulhi(a: number, b: number): number {
  const al = a & 0xffff, ah = a >>> 16;
  const bl = b & 0xffff, bh = b >>> 16;
  const lh = al * bh;
  const hl = ah * bl;
  const mid = ((al * bl) >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (ah * bh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) >>> 0;
}

/** Philox4x32 with `rounds` rounds (10 is the standard); writes the 4 output words into `out`. */
export function philox4x32(counter: ArrayLike<number>, key: ArrayLike<number>, out: Uint32Array, rounds = 10): void {
  let c0 = counter[0] >>> 0, c1 = counter[1] >>> 0, c2 = counter[2] >>> 0, c3 = counter[3] >>> 0;
  let k0 = key[0] >>> 0, k1 = key[1] >>> 0;
  for (let r = 0; r < rounds; r++) {
    if (r > 0) {
      k0 = (k0 + W0) >>> 0;
      k1 = (k1 + W1) >>> 0;
    }
    const hi0 = mulhi(M0, c0);
    const lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi(M1, c2);
    const lo1 = Math.imul(M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

function checkSeed(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`seed must be an integer in [0, 2^53), got ${seed}`);
  }
}

export interface NormalStream {
  /** The next n standard-normal values of the stream. */
  next(n: number): Float32Array;
}

/** A stream of standard-normal float32 values from `seed` (an integer in [0, 2^53)). */
export function normalStream(seed: number): NormalStream {
  checkSeed(seed);
  const key = [seed % TWO32, Math.floor(seed / TWO32)];
  const ctr = [0, 0, 0, 0];
  const words = new Uint32Array(4);
  let block = 0;
  let spare: number | null = null;
  return {
    next(n: number): Float32Array {
      const out = new Float32Array(n);
      let i = 0;
      if (n > 0 && spare !== null) {
        out[i++] = spare;
        spare = null;
      }
      while (i < n) {
        ctr[0] = block % TWO32;
        ctr[1] = Math.floor(block / TWO32);
        block++;
        philox4x32(ctr, key, words);
        const u1 = ((words[0] >>> 5) * TWO26 + (words[1] >>> 6) + 1) / TWO53;
        const u2 = ((words[2] >>> 5) * TWO26 + (words[3] >>> 6)) / TWO53;
        const r = Math.sqrt(-2 * Math.log(u1));
        const theta = 2 * Math.PI * u2;
        out[i++] = r * Math.cos(theta);
        const z1 = Math.fround(r * Math.sin(theta));
        if (i < n) out[i++] = z1;
        else spare = z1;
      }
      return out;
    },
  };
}

/** n standard-normal float32 values from `seed`: the first n values of normalStream(seed). */
export function randn(seed: number, n: number): Float32Array {
  return normalStream(seed).next(n);
}
