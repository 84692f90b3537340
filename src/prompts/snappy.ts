/**
 * Snappy compression giving exactly the bytes of hyparquet-writer's built-in compressor (its port of
 * snappyjs: one pass over the whole input, a hash table of up to 2^14 entries, the reference skip
 * heuristic), so prompt tables keep their bytes. Written here because that compressor appends every
 * output byte through a ByteWriter method call and took ~12% of `pairgen expand` (bench/expand.ts);
 * this one writes into one preallocated array and reads 4-byte words through a DataView (hash inputs,
 * match checks, match extension). test/prompts/table-bytes.test.ts compares the two.
 * Passed to hyparquet-writer as its SNAPPY compressor.
 */
const MAX_HASH_TABLE_BITS = 14;
const MAX_OFFSET = 0xffff;
const INPUT_MARGIN = 15;
const hashTables: Uint32Array[] = [];

export function snappyCompress(input: Uint8Array): Uint8Array {
  // the format's worst case: a literal tag per 60 bytes plus the length varint
  const out = new Uint8Array(32 + input.length + Math.ceil(input.length / 6));
  let op = 0;
  for (let n = input.length; ; n = Math.floor(n / 128)) {
    if (n < 128) {
      out[op++] = n;
      break;
    }
    out[op++] = (n & 0x7f) | 0x80;
  }
  op = compressInput(input, out, op);
  return out.subarray(0, op);
}


function emitLiteral(out: Uint8Array, op: number, input: Uint8Array, ip: number, len: number): number {
  if (len <= 60) {
    out[op++] = (len - 1) << 2;
  } else {
    const value = len - 1;
    const bytes = value < 0x100 ? 1 : value < 0x10000 ? 2 : value < 0x1000000 ? 3 : 4;
    out[op++] = (59 + bytes) << 2;
    for (let i = 0; i < bytes; i++) out[op++] = (value >>> (i * 8)) & 0xff;
  }
  if (len < 16) {
    for (let i = 0; i < len; i++) out[op + i] = input[ip + i];
  } else {
    out.set(input.subarray(ip, ip + len), op);
  }
  return op + len;
}

function emitCopyLessThan64(out: Uint8Array, op: number, offset: number, len: number): number {
  if (len < 12 && offset < 2048) {
    out[op++] = (1 + ((len - 4) << 2) + ((offset >>> 8) << 5)) & 0xff;
    out[op++] = offset & 0xff;
  } else {
    out[op++] = (2 + ((len - 1) << 2)) & 0xff;
    out[op++] = offset & 0xff;
    out[op++] = (offset >>> 8) & 0xff;
  }
  return op;
}

function emitCopy(out: Uint8Array, op: number, offset: number, len: number): number {
  while (len >= 68) {
    op = emitCopyLessThan64(out, op, offset, 64);
    len -= 64;
  }
  if (len > 64) {
    op = emitCopyLessThan64(out, op, offset, 60);
    len -= 60;
  }
  return emitCopyLessThan64(out, op, offset, len);
}

function compressInput(input: Uint8Array, out: Uint8Array, op: number): number {
  const ipEnd = input.length;
  let bits = 1;
  while (1 << bits <= ipEnd && bits <= MAX_HASH_TABLE_BITS) bits++;
  bits--;
  const shift = 32 - bits;
  const table = (hashTables[bits] ??= new Uint32Array(1 << bits));
  table.fill(0);
  const view = new DataView(input.buffer, input.byteOffset, input.byteLength);
  let nextEmit = 0;
  if (ipEnd >= INPUT_MARGIN) {
    const ipLimit = ipEnd - INPUT_MARGIN;
    let ip = 1;
    // The hash input is the 4 bytes at a position as a little-endian word. The reference sums the bytes, and
    // reading past the end (only ever for nextIp) gives NaN, which Math.imul turns into 0: so does 0 here,
    // and that hash is never stored anyway (the loop ends first).
    let nextHash = Math.imul(view.getInt32(ip, true), 0x1e35a7bd) >>> shift;
    outer: for (;;) {
      let skip = 32;
      let nextIp = ip;
      let candidate: number;
      do {
        ip = nextIp;
        const hash = nextHash;
        nextIp = ip + (skip >>> 5);
        skip++;
        if (ip > ipLimit) break outer;
        nextHash = Math.imul(nextIp + 4 <= ipEnd ? view.getInt32(nextIp, true) : 0, 0x1e35a7bd) >>> shift;
        candidate = table[hash];
        table[hash] = ip;
      } while (ip - candidate > MAX_OFFSET || view.getInt32(ip, true) !== view.getInt32(candidate, true));

      op = emitLiteral(out, op, input, nextEmit, ip - nextEmit);
      do {
        const base = ip;
        let matched = 4;
        while (ip + matched + 4 <= ipEnd && view.getInt32(ip + matched, true) === view.getInt32(candidate + matched, true)) matched += 4;
        while (ip + matched < ipEnd && input[ip + matched] === input[candidate + matched]) matched++;
        ip += matched;
        op = emitCopy(out, op, base - candidate, matched);
        nextEmit = ip;
        if (ip >= ipLimit) break outer;
        table[Math.imul(view.getInt32(ip - 1, true), 0x1e35a7bd) >>> shift] = ip - 1;
        const cur = Math.imul(view.getInt32(ip, true), 0x1e35a7bd) >>> shift;
        candidate = table[cur];
        table[cur] = ip;
      } while (ip - candidate <= MAX_OFFSET && view.getInt32(ip, true) === view.getInt32(candidate, true));
      ip++;
      nextHash = Math.imul(view.getInt32(ip, true), 0x1e35a7bd) >>> shift;
    }
  }
  if (nextEmit < ipEnd) op = emitLiteral(out, op, input, nextEmit, ipEnd - nextEmit);
  return op;
}
