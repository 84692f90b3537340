import { sha256Hex } from '../util/digest.ts';
import { UserError } from '../errors.ts';

/**
 * The commit marker markers/shard-NNNNN.json: written LAST, after every data file of the shard.
 * A shard is committed iff its marker exists, parses, and every file it lists has the recorded size
 * and sha256. It holds nothing that varies between two attempts at the same shard (no timings, hosts
 * or clocks), so two workers racing on one shard write the same bytes.
 */
export interface MarkerFile {
  /** Key relative to the run root, e.g. "data/train-00000-of-00004.parquet". */
  name: string;
  size: number;
  sha256: string;
  rows: number;
}

export interface ShardCounts {
  candidates: number;
  accepted: number;
  rejected: number;
  /** Per category, so `pairgen status` can report acceptance without reading the data files. */
  by_category?: Record<string, { accepted: number; rejected: number }>;
  /** Rejected candidates per reject reason. */
  by_reason?: Record<string, number>;
}

export interface ShardMarker {
  format: 'pairgen-shard-marker';
  version: typeof MARKER_VERSION;
  shard: number;
  run_id: string;
  code_version: string;
  files: MarkerFile[];
  /**
   * The shard's manifest part (manifest-parts/shard-NNNNN.parquet): its rows as finalize writes them in
   * the manifest. Absent in markers written before parts existed; finalize then makes it from the files.
   */
  manifest_part?: MarkerFile;
  counts: ShardCounts;
}

export interface MarkerInput {
  shard: number;
  runId: string;
  codeVersion: string;
  files: { name: string; bytes: Uint8Array; rows: number }[];
  manifestPart?: { name: string; bytes: Uint8Array; rows: number };
  counts: ShardCounts;
}

export { sha256Hex };
/** 2: layout 2 (data/, rejects/, markers/), no timings. */
export const MARKER_VERSION = 2;

export function buildMarker(m: MarkerInput): ShardMarker {
  if (m.counts.accepted + m.counts.rejected !== m.counts.candidates) {
    throw new Error(`shard ${m.shard} marker: accepted ${m.counts.accepted} + rejected ${m.counts.rejected} != candidates ${m.counts.candidates}`);
  }
  return {
    format: 'pairgen-shard-marker',
    version: MARKER_VERSION,
    shard: m.shard,
    run_id: m.runId,
    code_version: m.codeVersion,
    files: m.files.map(markerFile),
    ...(m.manifestPart ? { manifest_part: markerFile(m.manifestPart) } : {}),
    counts: {
      candidates: m.counts.candidates,
      accepted: m.counts.accepted,
      rejected: m.counts.rejected,
      ...(m.counts.by_category ? { by_category: sortKeys(m.counts.by_category) } : {}),
      ...(m.counts.by_reason ? { by_reason: sortKeys(m.counts.by_reason) } : {}),
    },
  };
}

function markerFile(f: { name: string; bytes: Uint8Array; rows: number }): MarkerFile {
  return { name: f.name, size: f.bytes.length, sha256: sha256Hex(f.bytes), rows: f.rows };
}

/** Every file a marker vouches for: the data and rejects files, then the manifest part when it lists one. */
export function markerFiles(marker: ShardMarker): MarkerFile[] {
  return marker.manifest_part ? [...marker.files, marker.manifest_part] : marker.files;
}

function sortKeys<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]]));
}

export interface MarkerCheck {
  ok: boolean;
  /** One line per mismatch, naming the file: missing, size or sha256 differs. */
  problems: string[];
}

/**
 * Check data files against a marker. `files` maps each listed name to its bytes (null/absent = missing).
 */
export function verifyMarker(marker: ShardMarker, files: Map<string, Uint8Array | null>): MarkerCheck {
  const problems: string[] = [];
  for (const f of markerFiles(marker)) {
    const bytes = files.get(f.name);
    if (!bytes) problems.push(`${f.name}: missing`);
    else if (bytes.length !== f.size) problems.push(`${f.name}: size ${bytes.length}, marker says ${f.size}`);
    else if (sha256Hex(bytes) !== f.sha256) problems.push(`${f.name}: sha256 differs from the marker`);
  }
  return { ok: problems.length === 0, problems };
}

/** The cheap check (sizes from a store listing or head, no reads): finds truncated or missing files, not flipped bytes. */
export function verifyMarkerSizes(marker: ShardMarker, sizes: Map<string, number | null>): MarkerCheck {
  const problems: string[] = [];
  for (const f of markerFiles(marker)) {
    const size = sizes.get(f.name);
    if (size === null || size === undefined) problems.push(`${f.name}: missing`);
    else if (size !== f.size) problems.push(`${f.name}: size ${size}, marker says ${f.size}`);
  }
  return { ok: problems.length === 0, problems };
}

export function markerJson(marker: ShardMarker): string {
  return JSON.stringify(marker, null, 2) + '\n';
}

/** Parse a marker read back from the store; `where` names it in the error. */
export function parseMarker(text: string | Uint8Array, where: string): ShardMarker {
  let m: unknown;
  try {
    m = JSON.parse(typeof text === 'string' ? text : new TextDecoder().decode(text));
  } catch (e) {
    throw new UserError(`${where}: not valid JSON (${(e as Error).message})`);
  }
  const bad = (field: string, expected: string) => new UserError(`${where}: field "${field}" ${expected}`);
  if (!m || typeof m !== 'object') throw bad('(root)', 'must be an object');
  const o = m as Record<string, unknown>;
  if (o.format !== 'pairgen-shard-marker') throw bad('format', 'must be "pairgen-shard-marker"');
  if (o.version !== MARKER_VERSION) throw bad('version', `must be ${MARKER_VERSION}`);
  if (!Number.isInteger(o.shard)) throw bad('shard', 'must be an integer');
  for (const k of ['run_id', 'code_version']) if (typeof o[k] !== 'string') throw bad(k, 'must be a string');
  if (!Array.isArray(o.files)) throw bad('files', 'must be a list');
  const checkFile = (f: unknown, where: string) => {
    const x = f as Record<string, unknown>;
    if (typeof x?.name !== 'string') throw bad(`${where}.name`, 'must be a string');
    if (!Number.isInteger(x.size) || !Number.isInteger(x.rows)) throw bad(`${where}.size/rows`, 'must be integers');
    if (typeof x.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(x.sha256)) throw bad(`${where}.sha256`, 'must be 64 hex digits');
  };
  o.files.forEach((f, i) => checkFile(f, `files[${i}]`));
  if (o.manifest_part !== undefined) checkFile(o.manifest_part, 'manifest_part');
  const c = o.counts as Record<string, unknown> | undefined;
  for (const k of ['candidates', 'accepted', 'rejected']) if (!Number.isInteger(c?.[k])) throw bad(`counts.${k}`, 'must be an integer');
  return o as unknown as ShardMarker;
}
