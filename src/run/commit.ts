import { parseMarker, verifyMarker, verifyMarkerSizes, type ShardMarker } from '../shards/index.ts';
import type { Store } from '../store/types.ts';
import { shardMarkerKey } from './layout.ts';

/** The marker of a shard, or null when it has none or it is unreadable (then the shard is not committed). */
export async function readMarker(store: Store, shard: number): Promise<ShardMarker | null> {
  const bytes = await store.getIfExists(shardMarkerKey(shard));
  if (!bytes) return null;
  try {
    return parseMarker(bytes, `${store.uri}/${shardMarkerKey(shard)}`);
  } catch {
    return null;
  }
}

/**
 * A shard is committed iff its marker exists and its data files match it. The quick check compares
 * sizes (one HEAD per file); `deep` also downloads and hashes every file against the marker's sha256.
 */
export async function isCommitted(store: Store, shard: number, deep = false): Promise<boolean> {
  const marker = await readMarker(store, shard);
  return marker !== null && (await markerProblems(store, marker, deep)).length === 0;
}

/** What is wrong between a marker and the files it lists ([] when they match). */
export async function markerProblems(store: Store, marker: ShardMarker, deep = false): Promise<string[]> {
  if (deep) {
    const files = new Map<string, Uint8Array | null>();
    for (const f of marker.files) files.set(f.name, await store.getIfExists(f.name));
    return verifyMarker(marker, files).problems;
  }
  const sizes = new Map<string, number | null>();
  for (const f of marker.files) sizes.set(f.name, (await store.head(f.name))?.size ?? null);
  return verifyMarkerSizes(marker, sizes).problems;
}
