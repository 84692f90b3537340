/**
 * An explicit candidate table: candidates.parquet at the root of a derived run (`pairgen regenerate`).
 * One row per candidate, in candidate order: everything a CandidateSpec holds plus its lineage (the
 * pair it was made from and what changed). When run.json names such a table, workers read their
 * shard's candidates from it instead of deriving them from the prompt table.
 */
import { parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { UserError } from '../errors.ts';
import type { Lineage, LineageSpec, PairRecord } from '../shards/record.ts';
import { asAsyncBuffer } from '../shards/index.ts';
import type { Store } from '../store/types.ts';
import type { CandidateSpec } from '../types.ts';
import { sha256Hex } from '../util/digest.ts';
import type { RunPlan } from '../dataset/run-file.ts';


/** The table's bytes. Same specs → same bytes. */
export function encodeCandidates(specs: LineageSpec[]): Uint8Array {
  specs.forEach((s, i) => {
    if (s.index !== i) throw new Error(`encodeCandidates: candidate ${s.pairId} has index ${s.index} at position ${i}`);
  });
  const col = <T>(f: (s: LineageSpec) => T) => specs.map(f);
  const buffer = parquetWriteBuffer({
    columnData: [
      { name: 'pair_id', data: col((s) => s.pairId), type: 'STRING' },
      { name: 'index', data: col((s) => BigInt(s.index)), type: 'INT64' },
      { name: 'seed', data: col((s) => BigInt(s.seed)), type: 'INT64' },
      { name: 'prompt_id', data: col((s) => s.promptId), type: 'STRING' },
      { name: 'sample_index', data: col((s) => s.sampleIndex), type: 'INT32' },
      { name: 'category', data: col((s) => s.category), type: 'STRING' },
      { name: 'source_prompt', data: col((s) => s.sourcePrompt), type: 'STRING' },
      { name: 'instruction', data: col((s) => s.instruction), type: 'STRING' },
      { name: 'target_prompt', data: col((s) => s.targetPrompt), type: 'STRING' },
      { name: 'identity_threshold', data: col((s) => s.identityThreshold), type: 'DOUBLE', nullable: true },
      { name: 'attributes', data: col((s) => JSON.stringify(s.attributes)), type: 'JSON' },
      { name: 'parent_pair_id', data: col((s) => s.lineage?.parentPairId ?? null), type: 'STRING', nullable: true },
      { name: 'changes', data: col((s) => JSON.stringify(s.lineage?.changes ?? {})), type: 'JSON' },
    ],
    kvMetadata: [{ key: 'pairgen', value: JSON.stringify({ kind: 'candidates', version: 1 }) }],
  });
  return new Uint8Array(buffer);
}

/** The columns of a row (pair record, manifest, candidate table) that make its CandidateSpec. */
export type SpecColumns = Pick<PairRecord, 'pair_id' | 'index' | 'seed' | 'prompt_id' | 'sample_index' | 'category' | 'source_prompt' | 'instruction' | 'target_prompt' | 'attributes'>;

/** The CandidateSpec of a row; `identityThreshold` is the prompt set's threshold for it. */
export function specOfRow(r: SpecColumns, identityThreshold: number | null): CandidateSpec {
  return {
    pairId: r.pair_id,
    index: r.index,
    seed: r.seed,
    promptId: r.prompt_id,
    sampleIndex: r.sample_index,
    category: r.category,
    sourcePrompt: r.source_prompt,
    instruction: r.instruction,
    targetPrompt: r.target_prompt,
    identityThreshold,
    attributes: r.attributes,
  };
}

// A worker reads the table once per process, whatever the number of shards it takes.
const cache = new Map<string, Uint8Array>();

/** Candidates [start, end) of a run planned with a candidate table, lineage attached. */
export async function readCandidateSpecs(store: Store, plan: RunPlan, start: number, end: number): Promise<LineageSpec[]> {
  const table = plan.candidates!;
  const cacheKey = `${store.uri}\0${table.sha256}`;
  let bytes = cache.get(cacheKey);
  if (!bytes) {
    const got = await store.getIfExists(table.file);
    if (!got) throw new UserError(`${store.uri}/${table.file}: the run's candidate table is missing`);
    if (sha256Hex(got) !== table.sha256) throw new UserError(`${store.uri}/${table.file}: its sha256 differs from the one in run.json; the candidate table was replaced or is damaged`);
    cache.set(cacheKey, got);
    bytes = got;
  }
  const file = asAsyncBuffer(bytes);
  const metadata = await parquetMetadataAsync(file);
  const rows = await parquetReadObjects({ file, metadata, rowStart: start, rowEnd: end });
  return rows.map((r, i) => {
    const index = Number(r.index);
    if (index !== start + i) throw new UserError(`${store.uri}/${table.file}: row ${start + i} holds candidate index ${index}`);
    const columns = { ...r, index, seed: Number(r.seed), attributes: parseJson(r.attributes) } as unknown as SpecColumns; // the table's own columns
    const spec = specOfRow(columns, r.identity_threshold ?? null);
    const lineage: Lineage = { parentPairId: r.parent_pair_id ?? null, changes: parseJson(r.changes) };
    return { ...spec, lineage };
  });
}

function parseJson(v: unknown): Record<string, never> {
  return typeof v === 'string' ? JSON.parse(v) : (v as Record<string, never>);
}
