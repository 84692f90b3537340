/**
 * Keys are '/'-separated, relative to a store's root, with no empty, '.' or '..' segments, so a key
 * can never escape its root (on disk or in a bucket). Keys are built by code, so a bad one is a bug.
 */
export function checkKey(key: string): string {
  if (key === '' || key.split('/').some((s) => s === '' || s === '.' || s === '..') || key.includes('\\') || key.includes('\0')) {
    throw new Error(`invalid store key '${key}': expected '/'-separated names without empty, '.' or '..' parts`);
  }
  return key;
}

/** A prefix for list(): like a key, but may be empty and may end with '/'. */
export function checkPrefix(prefix: string): string {
  if (prefix !== '') checkKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
  return prefix;
}

/** A byte range [start, end) for getRange; built by code, so a bad one is a bug. */
export function checkRange(start: number, end: number): void {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end <= start) throw new Error(`invalid byte range [${start}, ${end})`);
}

/** S3 and our listings order keys by their UTF-8 bytes. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
