/**
 * A set of 64-bit fingerprints in one flat typed array (open addressing, linear probing), used to
 * de-duplicate millions of rows in bounded memory: 8 bytes per slot, (hi, lo) side by side so a lookup
 * touches one cache line, load factor <= 0.75 (a power-of-two table, doubled when full), so 10M
 * entries take 128 MiB (2^24 slots). A JS Set of strings or BigInts would take ~10x that.
 * The fingerprint (hi, lo) = (0, 0) is reserved for "empty" and is stored as (0, 1).
 */
export class FingerprintSet {
  private table: Uint32Array;
  private mask: number;
  size = 0;

  constructor(initialCapacity = 1024) {
    let cap = 16;
    while (cap * 3 < initialCapacity * 4) cap *= 2;
    this.table = new Uint32Array(2 * cap);
    this.mask = cap - 1;
  }

  get bytes(): number {
    return this.table.byteLength;
  }

  /** Add (hi, lo); returns false when it was already present. */
  add(hi: number, lo: number): boolean {
    hi >>>= 0;
    lo >>>= 0;
    if ((hi | lo) === 0) lo = 1;
    if ((this.size + 1) * 4 > (this.mask + 1) * 3) this.grow();
    const t = this.table;
    let i = (lo ^ Math.imul(hi, 0x9e3779b1)) & this.mask;
    for (;;) {
      const h = t[2 * i];
      const l = t[2 * i + 1];
      if ((h | l) === 0) {
        t[2 * i] = hi;
        t[2 * i + 1] = lo;
        this.size++;
        return true;
      }
      if (h === hi && l === lo) return false;
      i = (i + 1) & this.mask;
    }
  }

  has(hi: number, lo: number): boolean {
    hi >>>= 0;
    lo >>>= 0;
    if ((hi | lo) === 0) lo = 1;
    const t = this.table;
    let i = (lo ^ Math.imul(hi, 0x9e3779b1)) & this.mask;
    for (;;) {
      const h = t[2 * i];
      const l = t[2 * i + 1];
      if ((h | l) === 0) return false;
      if (h === hi && l === lo) return true;
      i = (i + 1) & this.mask;
    }
  }

  private grow(): void {
    const old = this.table;
    const cap = (this.mask + 1) * 2;
    this.table = new Uint32Array(2 * cap);
    this.mask = cap - 1;
    this.size = 0;
    for (let j = 0; j < old.length; j += 2) if ((old[j] | old[j + 1]) !== 0) this.add(old[j], old[j + 1]);
  }
}
