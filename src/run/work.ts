import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { isUserError, UserError } from '../errors.ts';
import { readPromptRows, type PromptRow } from '../prompts/index.ts';
import { encodeImage, toPairRecord, type PairRecord, type ShardMarker } from '../shards/index.ts';
import type { S3Tuning } from '../store/index.ts';
import type { Store } from '../store/types.ts';
import type { CandidateSpec, GeneratedPair, IdentityScorer, IdentityVerdict, RgbImage, StageInfo, Teacher } from '../types.ts';
import { log } from '../util/log.ts';
import { peakRssMb, resetPeakRss } from '../util/rss.ts';
import { sha256Hex } from '../util/digest.ts';
import { clearFailure, readFailure, recordFailure } from '../dataset/failures.ts';
import { PROMPTS_FILE, RUN_FILE, shardName, shardRange } from '../dataset/layout.ts';
import { modelDigests, openRun, validateRun, type RunPlan } from '../dataset/run-file.ts';
import { localModels, type LocalModels } from '../models/index.ts';
import { candidateSlot, pairId, pairSeed } from '../candidates/seeds.ts';
import { isCommitted, writeShard } from '../dataset/commit.ts';
import { checkSplits, splitOf, type SplitFractions } from '../dataset/splits.ts';
import { runTeacher } from '../candidates/draw.ts';
import { readCandidateSpecs } from '../candidates/table.ts';
import { identityVerdict, judge } from '../candidates/verdict.ts';
import type { CategoryRules, Rule } from '../scorers/rules.ts';
import type { PairScores } from '../scorers/index.ts';
import type { PoolScore } from '../candidates/scoring.ts';
import { planRules } from '../dataset/run-file.ts';

export interface WorkOptions {
  /** This worker's share of an array job of `count` workers: the shards s with s mod count = index. */
  share?: { index: number; count: number };
  /** Shards to process; default: all shards of the run (or the share). */
  shards?: number[];
  /** Stop taking work when aborted (SIGINT/SIGTERM); the shard in progress is not committed. */
  signal?: AbortSignal;
  /** Re-run shards even when committed (they are rewritten with identical bytes). */
  force?: boolean;
  /** Also run shards whose previous attempt failed (they have a failure record); default: skip them. */
  retryFailed?: boolean;
  /** Called once with the shards this call is responsible for, before any is processed. */
  onStart?: (shards: number[]) => void;
  /** Called after each shard is committed, skipped or failed. */
  onShard?: (event: ShardEvent) => void;
  /**
   * Programmatic injection for tests of the spine only; the CLI never sets these. Default: the teacher
   * and identity scorer named in run.json's config.
   */
  teacherFactory?: (plan: RunPlan) => Promise<Teacher>;
  scorerFactory?: (plan: RunPlan) => Promise<IdentityScorer | null>;
  /** Internal S3 knobs (socket timeout, backoff steps) for tests and benchmarks; the CLI never sets them. */
  storeTuning?: S3Tuning;
}

export interface ShardEvent {
  shard: number;
  /** skipped: already committed; held: an earlier attempt failed and retryFailed is off; failed: this attempt failed. */
  status: 'committed' | 'skipped' | 'held' | 'failed';
  accepted: number;
  rejected: number;
  seconds: number;
  /** For failed and held shards: the error and the failed attempts so far. */
  error?: string;
  attempts?: number;
  /** Where the shard's models ran, e.g. "cuda:0 (CUDA_VISIBLE_DEVICES=3)" or "cpu" (committed and failed shards). */
  device?: string;
  /** Peak resident memory of this worker process during the shard, in MB (committed shards). */
  peakRssMb?: number;
}

export interface WorkSummary {
  committed: number[];
  skipped: number[];
  /** Shards whose attempt failed in this run (recorded in markers/shard-NNNNN.failed.json); the others went on. */
  failed: number[];
  /** Shards not tried because an earlier attempt failed (run with retryFailed to try them). */
  held: number[];
  accepted: number;
  rejected: number;
  timings: Timings;
}

export interface Timings {
  sample_s: number;
  score_s: number;
  encode_s: number;
  write_s: number;
  /** Not a time: the process's peak resident memory (MB) while the shard was made and written. */
  peak_rss_mb?: number;
}
type StageTiming = Exclude<keyof Timings, 'peak_rss_mb'>;

export class WorkAborted extends Error {
  constructor() {
    super('stopped by signal before the shard was committed');
    this.name = 'WorkAborted';
  }
}

/** `pairgen work`: process shards of a planned run; committed shards are skipped. */
export async function workRun(runUri: string, options: WorkOptions = {}): Promise<WorkSummary> {
  const { plan, store } = await openRun(runUri, options.storeTuning);
  const shards = options.share ? shareOf(plan.shards, options.share.index, options.share.count) : (options.shards ?? Array.from({ length: plan.shards }, (_, i) => i));
  for (const s of shards) {
    if (!Number.isInteger(s) || s < 0 || s >= plan.shards) throw new UserError(`shard ${s} is not in this run (it has shards 0-${plan.shards - 1})`);
  }
  const summary: WorkSummary = { committed: [], skipped: [], failed: [], held: [], accepted: 0, rejected: 0, timings: { sample_s: 0, score_s: 0, encode_s: 0, write_s: 0 } };
  options.onStart?.(shards);

  const todo: number[] = [];
  const hadFailure = new Set<number>();
  for (const s of shards) {
    if (!options.force && (await isCommitted(store, s))) {
      summary.skipped.push(s);
      options.onShard?.({ shard: s, status: 'skipped', accepted: 0, rejected: 0, seconds: 0 });
      continue;
    }
    const failure = await readFailure(store, s);
    if (failure) hadFailure.add(s);
    if (failure && !options.retryFailed) {
      summary.held.push(s);
      options.onShard?.({ shard: s, status: 'held', accepted: 0, rejected: 0, seconds: 0, error: failure.error, attempts: failure.attempts });
    } else todo.push(s);
  }
  if (todo.length === 0) return summary;

  // Models on a store are fetched into this node's cache once and checked against run.json's digests;
  // the teacher and scorer read local files (`here`), while shards are written under the plan as planned.
  const local = await localModels(plan.config, [...plan.models.teacher.files, ...plan.models.identity.files]);
  const here: RunPlan = { ...plan, config: local.config };
  await validateRun(here, store); // what every shard would hit: exit 2 before any shard is tried
  await checkModels(plan, local);
  // Every listed provider must load (onnxruntime never falls back to the CPU); the device goes in each shard's log line.
  const { requireProviders } = await import('../onnx/providers.ts');
  const device = (await requireProviders(plan.config.runtime.execution_providers, `${store.uri}/${RUN_FILE}`)).label;
  log.info(`models run on ${device}`);
  const tmp = mkdtempSync(join(tmpdir(), 'pairgen-work-'));
  const promptPath = join(tmp, PROMPTS_FILE);
  writeFileSync(promptPath, await readPrompts(store, plan));
  const splits = checkSplits(plan.splits, `${store.uri}/${RUN_FILE}: splits`);
  const rules = planRules(plan, `${store.uri}/${RUN_FILE}`);
  const teacher = await (options.teacherFactory ?? runTeacher)(here);
  let scoring: Scoring | null = null;
  try {
    scoring = await openScoring(here, options.scorerFactory);
    for (const shard of todo) {
      if (options.signal?.aborted) throw new WorkAborted();
      const started = performance.now();
      let result: Awaited<ReturnType<typeof processShard>>;
      try {
        result = await processShard({ plan, store, shard, promptPath, teacher, scoring, rules, splits, signal: options.signal });
      } catch (e) {
        // User errors (config, credentials, models) hold for every shard: stop. Anything else fails this shard only.
        if (isUserError(e) || e instanceof WorkAborted || options.signal?.aborted) throw e;
        const record = await recordFailure(store, shard, plan.run_id, e);
        summary.failed.push(shard);
        options.onShard?.({ shard, status: 'failed', accepted: 0, rejected: 0, seconds: (performance.now() - started) / 1000, error: record.error, attempts: record.attempts, device });
        continue;
      }
      if (hadFailure.has(shard)) await clearFailure(store, shard);
      summary.committed.push(shard);
      summary.accepted += result.accepted;
      summary.rejected += result.rejected;
      for (const k of Object.keys(summary.timings) as StageTiming[]) summary.timings[k] += result.timings[k];
      options.onShard?.({ shard, status: 'committed', accepted: result.accepted, rejected: result.rejected, seconds: (performance.now() - started) / 1000, device, peakRssMb: result.timings.peak_rss_mb });
    }
  } finally {
    await teacher.close();
    await scoring?.close();
    rmSync(tmp, { recursive: true, force: true });
  }
  return summary;
}

/** Identity and the pair scorers for one pair; null identity when that stage is off. */
interface Scoring {
  /** The identity stage's provenance (null: disabled). */
  readonly identity: StageInfo | null;
  /** Pairs scored at once (the pool's threads). */
  readonly threads: number;
  score(source: RgbImage, edited: RgbImage, spec: CandidateSpec): Promise<PoolScore>;
  close(): Promise<void>;
}

/**
 * The run's scoring: the pool of scoring threads (src/candidates/scoring.ts) sized to the machine, or
 * nothing when neither identity nor any scorer runs. A test's injected identity scorer (an object, which
 * cannot move to a thread) scores on this thread, with the pair scorers opened here. Model stages are
 * imported on first use, so status/finalize never load onnxruntime.
 */
async function openScoring(plan: RunPlan, injected?: (plan: RunPlan) => Promise<IdentityScorer | null>): Promise<Scoring> {
  const { config } = plan;
  if (injected) {
    const { openScoringStage } = await import('../candidates/scoring-stage.ts');
    const stage = await openScoringStage({ identity: config.identity, scorers: config.scorers ?? { enabled: [] }, runtime: config.runtime }, await injected(plan));
    return { identity: stage.info.identity, threads: 1, score: (s, e, spec) => stage.score(s, e, spec), close: () => stage.close() };
  }
  if (!config.identity.enabled && !config.scorers) return { identity: null, threads: 1, score: async () => ({ identity: null, scores: { scores: {}, texts: {}, seconds: {} } }), close: async () => {} };
  const { createScoringPool, defaultScoringThreads } = await import('../candidates/scoring.ts');
  const pool = await createScoringPool({ identity: config.identity, scorers: config.scorers ?? { enabled: [] }, runtime: config.runtime, threads: config.runtime.scoring_threads ?? defaultScoringThreads(config.runtime) });
  return { identity: pool.info.identity, threads: pool.threads, score: (s, e, spec) => pool.score(s, e, spec), close: () => pool.close() };
}

/**
 * prompts.parquet, checked against the digest in run.json: a transfer that went wrong (or a file
 * replaced under the run) must not silently change which prompts the shards are made from.
 */
async function readPrompts(store: Store, plan: RunPlan): Promise<Uint8Array> {
  for (let attempt = 1; ; attempt++) {
    const bytes = await store.get(PROMPTS_FILE);
    if (sha256Hex(bytes) === plan.prompts.sha256) return bytes;
    if (attempt === 3) throw new UserError(`${store.uri}/${PROMPTS_FILE}: its sha256 differs from the one in ${RUN_FILE} (read ${attempt} times); the run's prompt table was replaced or is damaged: plan a new run`);
  }
}

/**
 * The model files this node reads (its own copies: local paths, the model cache, its packaged face
 * models) must be the ones the run was planned with, or the shards would not be reproducible.
 */
async function checkModels(plan: RunPlan, local: LocalModels<RunPlan['config']>): Promise<void> {
  const here = await modelDigests(plan.config, local).catch((e: Error) => {
    throw new UserError(`the model files of this run cannot be read here: ${e.message}`, { cause: e });
  });
  for (const [stage, recorded] of Object.entries(plan.models) as [keyof RunPlan['models'], RunPlan['models']['teacher']][]) {
    const now = here[stage] ?? { digest: '', files: [] };
    if (now.digest !== recorded.digest) {
      const changed = now.files.filter((f, i) => f.sha256 !== recorded.files[i]?.sha256).map((f) => f.path);
      throw new UserError(`${stage} model files differ from the ones this run was planned with: ${changed.join(', ') || `${now.files.length} files here, ${recorded.files.length} recorded`}`);
    }
  }
}

interface ShardContext {
  plan: RunPlan;
  store: Store;
  shard: number;
  promptPath: string;
  teacher: Teacher;
  scoring: Scoring;
  rules: CategoryRules;
  splits: SplitFractions;
  signal?: AbortSignal;
}

/** Make, score, encode and write one shard; commit it by writing its marker last. */
async function processShard(ctx: ShardContext): Promise<{ accepted: number; rejected: number; timings: Timings; marker: ShardMarker }> {
  const { plan, store, shard } = ctx;
  const timings: Timings = { sample_s: 0, score_s: 0, encode_s: 0, write_s: 0 };
  resetPeakRss(); // this shard's peak, not the process's so far
  const specs = await shardSpecs(plan, shard, ctx.promptPath, store);
  const batchSize = plan.config.runtime.batch_size;
  // Enough pairs in flight to keep every scoring thread busy.
  const limit = pLimit(Math.max(plan.config.runtime.concurrency, ctx.scoring.threads));
  const records: Promise<PairRecord>[] = [];

  // The teacher samples batch k+1 (in its worker thread) while batch k is scored, encoded and buffered.
  const generate = async (batch: CandidateSpec[]) => {
    const t0 = performance.now();
    const pairs = await ctx.teacher.generate(batch);
    timings.sample_s += (performance.now() - t0) / 1000;
    if (pairs.length !== batch.length) throw new Error(`teacher returned ${pairs.length} pairs for ${batch.length} candidates`);
    return pairs;
  };
  const batches: CandidateSpec[][] = [];
  for (let i = 0; i < specs.length; i += batchSize) batches.push(specs.slice(i, i + batchSize));
  let next = batches.length > 0 ? generate(batches[0]) : null;
  for (let b = 0; b < batches.length; b++) {
    const pairs = await next!;
    if (ctx.signal?.aborted) throw new WorkAborted();
    next = b + 1 < batches.length ? generate(batches[b + 1]) : null;
    batches[b].forEach((spec, i) => records.push(limit(() => finishPair(ctx, spec, pairs[i], timings))));
  }
  const done = await Promise.all(records);
  if (ctx.signal?.aborted) throw new WorkAborted();

  const t0 = performance.now();
  const marker = await writeShard(store, plan, shard, done, timings as unknown as Record<string, number>, () => {
    timings.write_s += (performance.now() - t0) / 1000;
    timings.peak_rss_mb = peakRssMb();
    if (ctx.signal?.aborted) throw new WorkAborted();
  });
  return { accepted: marker.counts.accepted, rejected: marker.counts.rejected, timings, marker };
}


/**
 * The candidate specs of a shard: prompt rows by candidate index, ids and seeds from the run seed; or,
 * in a derived run, the rows of its candidate table.
 */
async function shardSpecs(plan: RunPlan, shard: number, promptPath: string, store: Store): Promise<CandidateSpec[]> {
  const { start, end } = shardRange(shard, plan.shard_size, plan.pairs);
  if (plan.candidates) return readCandidateSpecs(store, plan, start, end);
  const rowsNeeded = new Map<number, PromptRow | null>();
  for (let i = start; i < end; i++) rowsNeeded.set(candidateSlot(i, plan.prompts.train_rows).row, null);
  // Needed rows form at most a few contiguous runs; read each run once.
  const sorted = [...rowsNeeded.keys()].sort((a, b) => a - b);
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    const rows = await readPromptRows(promptPath, { split: 'train', start: sorted[i], end: sorted[j] + 1 });
    rows.forEach((row, k) => rowsNeeded.set(sorted[i] + k, row));
    i = j + 1;
  }
  const specs: CandidateSpec[] = [];
  for (let index = start; index < end; index++) {
    const { row, sampleIndex } = candidateSlot(index, plan.prompts.train_rows);
    const p = rowsNeeded.get(row);
    if (!p) throw new Error(`prompt row ${row} missing from ${PROMPTS_FILE}`);
    specs.push({
      pairId: pairId(plan.seed, p.prompt_id, sampleIndex),
      index,
      seed: pairSeed(plan.seed, p.prompt_id, sampleIndex),
      promptId: p.prompt_id,
      sampleIndex,
      category: p.category,
      sourcePrompt: p.source_prompt,
      instruction: p.instruction,
      targetPrompt: p.target_prompt,
      identityThreshold: p.identity_threshold,
      attributes: p.attributes,
    });
  }
  return specs;
}

async function finishPair(ctx: ShardContext, spec: CandidateSpec, pair: GeneratedPair, timings: Timings): Promise<PairRecord> {
  const { plan } = ctx;
  let t0 = performance.now();
  const { identity: faces, scores } = await ctx.scoring.score(pair.source, pair.edited, spec);
  const scored = plan.config.scorers ? scores : null;
  const rules = ctx.rules.get(spec.category) ?? [];
  const verdict = faces ? identityVerdict(faces, spec, plan.config.identity, rules, scored?.scores) : unfiltered(plan, rules, scored);
  timings.score_s += (performance.now() - t0) / 1000;
  t0 = performance.now();
  const encoding = { format: plan.config.output.image_format, quality: plan.config.output.quality, lossless: plan.config.output.lossless };
  const [source, edited] = await Promise.all([encodeImage(pair.source, encoding), encodeImage(pair.edited, encoding)]);
  timings.encode_s += (performance.now() - t0) / 1000;
  return toPairRecord({
    spec,
    runId: plan.run_id,
    shard: ctx.shard,
    split: splitOf(spec.pairId, ctx.splits),
    teacher: ctx.teacher.info,
    identity: ctx.scoring.identity ?? { name: 'none', modelDigest: '', settings: { enabled: false } },
    codeVersion: plan.code_version,
    verdict,
    width: pair.edited.width,
    height: pair.edited.height,
    imageFormat: encoding.format,
    // Rejects keep no images: refilter/regenerate remake them from their seeds when needed.
    images: verdict.accepted ? { source, edited } : null,
    extra: pair.extra,
    scores: scored ? { ...scored.scores, ...scored.texts } : undefined,
  });
}

/** The verdict recorded when the identity filter is disabled: no face measured, judged by the rules alone. */
function unfiltered(plan: RunPlan, rules: readonly Rule[], scored: PairScores | null): IdentityVerdict {
  const threshold = plan.config.identity.threshold;
  const { accepted, rejectReason } = judge(null, threshold, rules, (name) => scored?.scores[name] ?? null);
  return { similarity: null, sourceFaces: 0, editedFaces: 0, sourceFace: null, editedFace: null, threshold, accepted, rejectReason };
}

/** --index I --count N: the shards s with s mod N == I (a deterministic, balanced share). */
function shareOf(totalShards: number, index: number, count: number): number[] {
  const out: number[] = [];
  for (let s = index; s < totalShards; s += count) out.push(s);
  return out;
}

export function logShard(e: ShardEvent): void {
  if (e.status === 'skipped') log.info(`${shardName(e.shard)} already committed, skipped`);
  else if (e.status === 'held') log.warn(`${shardName(e.shard)} skipped: an earlier attempt failed (run with --retry-failed to try it again)`, { attempts: e.attempts, error: e.error });
  else if (e.status === 'failed') log.error(`${shardName(e.shard)} failed; going on with the other shards`, { attempts: e.attempts, error: e.error, device: e.device });
  else log.info(`${shardName(e.shard)} committed`, { accepted: e.accepted, rejected: e.rejected, seconds: Number(e.seconds.toFixed(2)), device: e.device, peak_rss_mb: e.peakRssMb });
}
