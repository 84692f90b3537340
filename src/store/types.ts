import type { Readable } from 'node:stream';

/** One object in a listing. `key` is relative to the store's root. */
export interface StoreEntry {
  key: string;
  size: number;
  /** S3: the object's ETag, which changes whenever its bytes are written again; local folders: absent. */
  etag?: string;
}

export type PutIfAbsentResult = 'written' | 'exists';
export type ConditionalWrites = 'atomic' | 'check-then-put';

/**
 * Object storage rooted at a URI: a local folder (path or file://) or s3://bucket/prefix.
 * Keys are '/'-separated and relative to the root. Every write is atomic: a reader sees the
 * whole object or none of it (local: temp file + rename; S3: PutObject / completed multipart).
 */
export interface Store {
  /** The root URI as given (normalised), e.g. "/data/runs/a" or "s3://bucket/runs/a". */
  readonly uri: string;
  put(key: string, body: Uint8Array | string, options?: { contentType?: string }): Promise<void>;
  /**
   * Write the object only if no object has that key yet: 'written', or 'exists' (then nothing was
   * changed). See conditionalWrites() for how strong that promise is on this store. One request on S3
   * (no multipart), so it suits small objects such as commit markers.
   */
  putIfAbsent(key: string, body: Uint8Array | string, options?: { contentType?: string }): Promise<PutIfAbsentResult>;
  /**
   * How putIfAbsent works here. 'atomic': of any number of racing calls on one key exactly one writes
   * (local link(), S3 If-None-Match). 'check-then-put': a HEAD then a PUT, so racing calls may both
   * write; correct when they write identical bytes (the storage.conditional_writes fallback).
   */
  conditionalWrites(): Promise<ConditionalWrites>;
  /** Stream a large object (multipart on S3); atomic like put. */
  putStream(key: string, body: Readable, options?: { contentType?: string }): Promise<void>;
  /** The whole object; throws NotFoundError when missing. */
  get(key: string): Promise<Uint8Array>;
  /**
   * Bytes [start, end) of an object (a ranged GET on S3), so readers of big files fetch only what they
   * need, e.g. a Parquet footer and some column chunks. Throws NotFoundError when missing; a range past
   * the end is an error.
   */
  getRange(key: string, start: number, end: number): Promise<Uint8Array>;
  /** The object, or null when it does not exist. */
  getIfExists(key: string): Promise<Uint8Array | null>;
  /** Size of the object, or null when it does not exist. */
  head(key: string): Promise<{ size: number } | null>;
  /** Every object whose key starts with prefix, in lexicographic key order, paginated underneath. */
  list(prefix: string): AsyncIterable<StoreEntry>;
  delete(key: string): Promise<void>;
  /** A store rooted at a sub-prefix of this one. */
  child(prefix: string): Store;
}
