import { sha256Hex } from '../util/digest.ts';
import { UserError } from '../errors.ts';

/**
 * The commit marker shards/shard-NNNNN.json: written LAST, after every data file of the shard.
 * A shard is committed iff its marker exists, parses, and every file it lists has the recorded size
 * and sha256. Timings are the only part that differs between two runs of the same shard.
 */
export interface MarkerFile {
  /** Key relative to the run root, e.g. "shards/shard-00000.parquet". */
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
  version: 1;
  shard: number;
  run_id: string;
  code_version: string;
  files: MarkerFile[];
  counts: ShardCounts;
  /** Seconds spent per stage for this shard (e.g. generate, score, encode, write), summed over its pairs. */
  timings: Record<string, number>;
}

export interface MarkerInput {
  shard: number;
  runId: string;
  codeVersion: string;
  files: { name: string; bytes: Uint8Array; rows: number }[];
  counts: ShardCounts;
  timings: Record<string, number>;
}

export { sha256Hex };

export function buildMarker(m: MarkerInput): ShardMarker {
  if (m.counts.accepted + m.counts.rejected !== m.counts.candidates) {
    throw new Error(`shard ${m.shard} marker: accepted ${m.counts.accepted} + rejected ${m.counts.rejected} != candidates ${m.counts.candidates}`);
  }
  return {
    format: 'pairgen-shard-marker',
    version: 1,
    shard: m.shard,
    run_id: m.runId,
    code_version: m.codeVersion,
    files: m.files.map((f) => ({ name: f.name, size: f.bytes.length, sha256: sha256Hex(f.bytes), rows: f.rows })),
    counts: {
      candidates: m.counts.candidates,
      accepted: m.counts.accepted,
      rejected: m.counts.rejected,
      ...(m.counts.by_category ? { by_category: sortKeys(m.counts.by_category) } : {}),
      ...(m.counts.by_reason ? { by_reason: sortKeys(m.counts.by_reason) } : {}),
    },
    timings: Object.fromEntries(Object.keys(m.timings).sort().map((k) => [k, m.timings[k]])),
  };
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
  for (const f of marker.files) {
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
  for (const f of marker.files) {
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
  if (o.version !== 1) throw bad('version', 'must be 1');
  if (!Number.isInteger(o.shard)) throw bad('shard', 'must be an integer');
  for (const k of ['run_id', 'code_version']) if (typeof o[k] !== 'string') throw bad(k, 'must be a string');
  if (!Array.isArray(o.files)) throw bad('files', 'must be a list');
  o.files.forEach((f, i) => {
    const x = f as Record<string, unknown>;
    if (typeof x?.name !== 'string') throw bad(`files[${i}].name`, 'must be a string');
    if (!Number.isInteger(x.size) || !Number.isInteger(x.rows)) throw bad(`files[${i}].size/rows`, 'must be integers');
    if (typeof x.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(x.sha256)) throw bad(`files[${i}].sha256`, 'must be 64 hex digits');
  });
  const c = o.counts as Record<string, unknown> | undefined;
  for (const k of ['candidates', 'accepted', 'rejected']) if (!Number.isInteger(c?.[k])) throw bad(`counts.${k}`, 'must be an integer');
  if (!o.timings || typeof o.timings !== 'object' || Object.values(o.timings).some((v) => typeof v !== 'number')) {
    throw bad('timings', 'must be an object of numbers');
  }
  return o as unknown as ShardMarker;
}
