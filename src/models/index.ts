/**
 * Models every node can reach: a model key of the pipeline config (teacher.model, teacher.edit_model,
 * identity.detector.model, identity.embedder.model) may name a local path or a store URI
 * (s3://bucket/prefix, file:///path). localModels() turns the config into one whose model keys are
 * local paths, fetching what lives on a store into this node's cache (cache.ts) once, so every loader
 * keeps reading local files.
 *
 *   const local = await localModels(config);                 // plan, check, sample: list and download
 *   const local = await localModels(plan.config, recorded);  // work: exactly run.json's files, verified
 *   createTeacher(local.config.teacher, ...);
 *   local.recordedPath('/cache/trees/…/0/tiny-sd/unet/model.onnx') // → 's3://b/models/tiny-sd/unet/model.onnx'
 *
 * When any model key is a store URI, every model key is placed in one folder tree of the cache,
 * `trees/<key>/<rank>/<name>` with the rank of its URI or path among the config's model keys: the
 * model digest hashes files in path order, so the cached copies sort as the URIs and paths run.json
 * records, on the planner and on every worker alike; and each folder keeps its own name, as the
 * teacher's name in the shards uses it.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { link, copyFile, mkdir, rename, rm, symlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import pLimit from 'p-limit';
import { isUserError, UserError } from '../errors.ts';
import { localPath, openStore, redactUrl, type StorageConfig } from '../store/index.ts';
import type { Store } from '../store/types.ts';
import { digestFile, sha256Hex, type FileDigest } from '../util/digest.ts';
import { ModelCache } from './cache.ts';

export { modelCacheDir } from './cache.ts';

/** The part of a pipeline config that names models (PipelineConfig has this shape). */
export interface ModelConfig {
  teacher: { model: string; edit_model: string | null };
  identity: { enabled: boolean; detector: { kind: string; model?: string }; embedder: { kind: string; model?: string } };
  storage?: Partial<StorageConfig>;
}

export interface LocalModels<C extends ModelConfig> {
  /** The config with every model key a local path on this node. */
  config: C;
  /** The path run.json records for a local model file: its store URI, or the path the config gave. */
  recordedPath(local: string): string;
}

type Shape = 'folder' | 'file';

interface ModelKey {
  key: string;
  shape: Shape;
  get(c: ModelConfig): string | null | undefined;
  set(c: ModelConfig, path: string): void;
}

/** Every config key that names a model, and whether it names a folder or a file. */
const MODEL_KEYS: ModelKey[] = [
  { key: 'teacher.model', shape: 'folder', get: (c) => c.teacher.model, set: (c, p) => void (c.teacher.model = p) },
  { key: 'teacher.edit_model', shape: 'folder', get: (c) => c.teacher.edit_model, set: (c, p) => void (c.teacher.edit_model = p) },
  {
    key: 'identity.detector.model', shape: 'file',
    get: (c) => (c.identity.enabled && c.identity.detector.kind === 'scrfd' ? c.identity.detector.model : null),
    set: (c, p) => void (c.identity.detector.model = p),
  },
  {
    key: 'identity.embedder.model', shape: 'file',
    get: (c) => (c.identity.enabled && c.identity.embedder.kind === 'arcface' ? c.identity.embedder.model : null),
    set: (c, p) => void (c.identity.embedder.model = p),
  },
];

/** A model named by the config: where it is (`ref`, as run.json records it) and, for a local one, its path. */
interface Named {
  keys: string[];
  shape: Shape;
  ref: string;
  /** null: on a store. */
  path: string | null;
}

/** One file of a model on a store: its path under the model's URI ('' for a file model) and its blob. */
interface Fetched {
  rel: string;
  sha256: string;
  blob: string;
}

export function isStoreUri(value: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(value);
}

/**
 * The config with its model keys made local. Without `recorded` (plan, check, sample), a model on a
 * store is listed and downloaded whole; with it (work), exactly the recorded files are fetched and
 * each is checked against its recorded sha256 before use.
 */
export async function localModels<C extends ModelConfig>(config: C, recorded?: FileDigest[]): Promise<LocalModels<C>> {
  const named = namedModels(config);
  const local = structuredClone(config);
  const onStore = named.filter((n) => n.path === null);
  if (onStore.length === 0) {
    for (const n of named) for (const key of n.keys) keyOf(key).set(local, n.path!);
    return { config: local, recordedPath: (p) => p };
  }
  const cache = new ModelCache();
  let tree: { dir: string; places: Map<Named, string> };
  for (let attempt = 1; ; attempt++) {
    const fetched = new Map<Named, Fetched[]>();
    for (const n of onStore) fetched.set(n, await fetchModel(cache, n, config.storage ?? {}, recorded));
    tree = await placeTree(cache, named, fetched);
    const bad = await damaged(tree.places, fetched);
    if (bad.length === 0) break;
    // A blob changed after it was verified (a disk fault, a hand edit): drop it and its trees, fetch again.
    for (const f of bad) await cache.discard(f.sha256);
    await rm(tree.dir, { recursive: true, force: true });
    if (attempt === 2) throw new UserError(`model cache ${cache.root}: ${bad.length} cached file(s) do not match their digest after a fresh download (first: ${bad[0].blob}); check the disk, or delete the cache folder`);
  }
  for (const n of named) for (const key of n.keys) keyOf(key).set(local, tree.places.get(n)!);
  const places = [...tree.places].map(([n, place]) => ({ place, ref: n.ref }));
  return {
    config: local,
    recordedPath(p: string): string {
      for (const { place, ref } of places) {
        if (p === place) return ref;
        if (p.startsWith(place + '/')) return `${ref}/${p.slice(place.length + 1)}`;
      }
      return p;
    },
  };
}

function keyOf(key: string): ModelKey {
  return MODEL_KEYS.find((k) => k.key === key)!;
}

/** The models a config names, one entry per distinct reference; a URI that names no store is refused here. */
function namedModels(config: ModelConfig): Named[] {
  const out: Named[] = [];
  for (const k of MODEL_KEYS) {
    const value = k.get(config);
    if (!value) continue;
    const ref = isStoreUri(value) ? value.replace(/\/+$/, '') : value;
    const same = out.find((n) => n.ref === ref);
    if (same) {
      same.keys.push(k.key);
      continue;
    }
    let path: string | null;
    try {
      path = isStoreUri(ref) ? localPath(ref) : ref;
      if (path === null) openStore(ref, config.storage ?? {}); // parses the URI: a bad bucket or credentials in it fail here
    } catch (e) {
      if (isUserError(e)) throw new UserError(`${k.key}: ${e.message}`, { cause: e });
      throw e;
    }
    out.push({ keys: [k.key], shape: k.shape, ref, path });
  }
  return out;
}

/** The store a model's files are read from, and the key of each file there. */
function modelStore(n: Named, storage: Partial<StorageConfig>): { store: Store; keyOf: (rel: string) => string } {
  if (n.shape === 'folder') return { store: openStore(n.ref, storage), keyOf: (rel) => rel };
  const cut = n.ref.lastIndexOf('/');
  const name = n.ref.slice(cut + 1);
  if (cut < 's3://'.length || name === '') throw new UserError(`${n.keys[0]}: ${redactUrl(n.ref)}: expected the URI of a file, s3://bucket/path/model.onnx`);
  return { store: openStore(n.ref.slice(0, cut), storage), keyOf: () => name };
}

async function fetchModel(cache: ModelCache, n: Named, storage: Partial<StorageConfig>, recorded: FileDigest[] | undefined): Promise<Fetched[]> {
  const where = `${n.keys[0]}: ${redactUrl(n.ref)}`;
  const { store, keyOf: storeKey } = modelStore(n, storage);
  const limit = pLimit(4);
  try {
    if (recorded) {
      const files = recorded.filter((f) => f.path === n.ref || f.path.startsWith(n.ref + '/'));
      if (files.length === 0) throw new UserError(`${where}: run.json records no model files under this URI; plan the run again`);
      return await Promise.all(
        files.map((f) =>
          limit(async () => {
            const rel = f.path === n.ref ? '' : f.path.slice(n.ref.length + 1);
            const blob = await cache.fetchKnown(store, storeKey(rel), f.size, f.sha256, `${n.keys[0]}: ${redactUrl(f.path)}`);
            return { rel, sha256: f.sha256, blob };
          }),
        ),
      );
    }
    const objects: { rel: string; size: number; etag?: string }[] = [];
    if (n.shape === 'folder') {
      for await (const e of store.list('')) objects.push({ rel: e.key, size: e.size, etag: e.etag });
      if (objects.length === 0) throw new UserError(`${where}: no objects under this prefix; expected a model folder (model_index.json, unet/, ...) uploaded there`);
    } else {
      const head = await store.head(storeKey(''));
      if (head === null) throw new UserError(`${where}: no such object; expected an .onnx file there`);
      objects.push({ rel: '', size: head.size });
    }
    return await Promise.all(
      objects.map((o) =>
        limit(async () => {
          const uri = o.rel === '' ? n.ref : `${n.ref}/${o.rel}`;
          const sha256 = cache.knownDigest(uri, o.size, o.etag) ?? (await cache.fetchNew(store, storeKey(o.rel), o.size));
          await cache.remember(uri, o.size, o.etag, sha256);
          return { rel: o.rel, sha256, blob: cache.blobPath(sha256) };
        }),
      ),
    );
  } catch (e) {
    if (isUserError(e) && !e.message.startsWith(n.keys[0])) throw new UserError(`${where}: ${e.message}`, { cause: e });
    throw e;
  }
}

/**
 * The config's models as one folder tree in the cache, `trees/<key>/<rank>/<name>`: hard links to the
 * blobs of models on a store, a symbolic link to a local model. Built under a temporary name and
 * renamed into place, so a worker sees a whole tree or none; the same models give the same tree.
 */
async function placeTree(cache: ModelCache, named: Named[], fetched: Map<Named, Fetched[]>): Promise<{ dir: string; places: Map<Named, string> }> {
  const sortKey = (n: Named) => (n.shape === 'folder' ? n.ref + '/' : n.ref);
  const ranked = [...named].sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : sortKey(a) > sortKey(b) ? 1 : 0));
  const entries = ranked.map((n, rank) => ({ rank, name: basename(n.ref), ref: n.ref, files: fetched.get(n)?.map((f) => [f.rel, f.sha256]) ?? null }));
  const dir = join(cache.root, 'trees', sha256Hex(JSON.stringify(entries)).slice(0, 24));
  const places = new Map(ranked.map((n, rank) => [n, join(dir, String(rank), basename(n.ref))]));
  if (existsSync(dir)) return { dir, places };
  const tmp = join(cache.root, 'trees', `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    for (const [n, place] of places) {
      const at = join(tmp, place.slice(dir.length + 1));
      mkdirSync(dirname(at), { recursive: true });
      const files = fetched.get(n);
      if (!files) {
        await symlink(n.path!, at);
        continue;
      }
      for (const f of files) {
        const target = f.rel === '' ? at : join(at, f.rel);
        await mkdir(dirname(target), { recursive: true });
        // A hard link shares the verified blob; a file system without them gets a copy.
        await link(f.blob, target).catch(() => copyFile(f.blob, target));
      }
    }
    await rename(tmp, dir).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e; // another worker placed the same tree first
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return { dir, places };
}

/** The fetched files whose copy in the tree does not hash to their digest. */
async function damaged(places: Map<Named, string>, fetched: Map<Named, Fetched[]>): Promise<Fetched[]> {
  const bad: Fetched[] = [];
  for (const [n, files] of fetched) {
    const place = places.get(n)!;
    for (const f of files) {
      const path = f.rel === '' ? place : join(place, f.rel);
      const now = existsSync(path) ? (await digestFile(path)).sha256 : null;
      if (now !== f.sha256) bad.push(f);
    }
  }
  return bad;
}

/** One model folder given on the command line (`pairgen sample --model`): a local path as it is, a store URI fetched into the cache. */
export async function localModelFolder(ref: string, flag: string): Promise<string> {
  const config: ModelConfig = { teacher: { model: ref, edit_model: null }, identity: { enabled: false, detector: { kind: 'packaged' }, embedder: { kind: 'packaged' } } };
  try {
    return (await localModels(config)).config.teacher.model;
  } catch (e) {
    if (isUserError(e) && e.message.startsWith('teacher.model: ')) throw new UserError(`${flag}: ${e.message.slice('teacher.model: '.length)}`, { cause: e });
    throw e;
  }
}

/** A model file `plan --upload-models` copies into the run's store. */
export interface ModelUpload {
  from: string;
  /** Key under the run's root: models/<rank>/<name>/<path in the folder>. */
  key: string;
  size: number;
}

/**
 * `plan --upload-models`: the config's local models, to be copied into the run's store under
 * `models/<rank>/<name>` (rank: the order of their paths, so the copies sort as the originals and the
 * model digest stays the same). Returns the config naming the copies, the local view to check and
 * digest the originals with (its recordedPath gives the copies' URIs), and the copies to make of the
 * files run.json records.
 */
export function uploadedModels<C extends ModelConfig>(config: C, runUri: string): { config: C; local: LocalModels<C>; uploads(files: FileDigest[]): ModelUpload[] } {
  const named = namedModels(config);
  const onStore = named.find((n) => n.path === null);
  if (onStore) throw new UserError(`--upload-models: ${onStore.keys[0]} is already on a store (${redactUrl(onStore.ref)}); upload every model yourself, or give them all as local paths`);
  const sortKey = (n: Named) => (n.shape === 'folder' ? n.path! + '/' : n.path!);
  const ranked = [...named].sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : sortKey(a) > sortKey(b) ? 1 : 0));
  const copies = ranked.map((n, rank) => ({ n, key: `models/${rank}/${basename(n.path!)}`, uri: `${runUri}/models/${rank}/${basename(n.path!)}` }));
  const remote = structuredClone(config);
  const local = structuredClone(config);
  for (const { n, uri } of copies) {
    for (const key of n.keys) {
      keyOf(key).set(remote, uri);
      keyOf(key).set(local, n.path!);
    }
  }
  const under = (p: string, root: string) => (p === root ? '' : p.startsWith(root + '/') ? p.slice(root.length) : null);
  return {
    config: remote,
    local: {
      config: local,
      recordedPath(p: string): string {
        for (const { n, uri } of copies) {
          const rest = under(p, n.path!);
          if (rest !== null) return uri + rest;
        }
        return p;
      },
    },
    uploads(files: FileDigest[]): ModelUpload[] {
      const out: ModelUpload[] = [];
      for (const f of files) {
        for (const { n, key, uri } of copies) {
          const rest = under(f.path, uri);
          if (rest !== null) out.push({ from: n.path! + rest, key: key + rest, size: f.size });
        }
      }
      return out;
    },
  };
}

/** The model keys of a config that name a local path (what a node without the submitter's disk cannot read). */
export function localModelKeys(config: ModelConfig): string[] {
  return namedModels(config).filter((n) => n.path !== null).flatMap((n) => n.keys);
}
