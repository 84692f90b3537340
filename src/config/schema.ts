import { teacherConfigSchema, type TeacherConfig } from '../teacher/config.ts';
import { identityConfigSchema, type IdentityConfig } from '../identity/config.ts';
import { storageConfigSchema, type StorageConfig } from '../store/config.ts';
import type { RuntimeConfig } from '../onnx/session.ts';
import { DEFAULT_QUALITY, PNG_COMPRESSION_LEVEL } from '../image/constants.ts';
import { scorersConfigSchema, type ScorersConfig } from '../scorers/config.ts';
import { rulesConfigSchema, type RulesConfig } from '../scorers/rules.ts';

/**
 * The pipeline config: one YAML or JSON file. Each stage owns the schema of its own section; this file
 * composes them. Every key has a description and (where optional) a default: docs/config.md is
 * generated from this schema (`npm run config-docs`) and a test keeps it in step.
 * Keys marked `'x-path': true` are file paths, resolved against the config file's folder.
 */
export interface PipelineConfig {
  name: string;
  seed: number;
  pairs: number;
  shard_size: number;
  prompts: { set: string; count: number | null };
  teacher: TeacherConfig;
  identity: IdentityConfig;
  /** Absent (no default, so older configs keep their run_id): no pair scorers, no rules. */
  scorers?: ScorersConfig;
  rules?: RulesConfig;
  output: OutputConfig;
  storage: StorageConfig;
  runtime: RuntimeConfig & { concurrency: number; batch_size: number; max_memory?: string; scoring_threads?: number };
}

export interface OutputConfig {
  image_format: 'jpeg' | 'png' | 'webp';
  quality: number;
  lossless: boolean;
  license: string | null;
  language: string[];
  row_group_bytes: number;
  splits: { train?: number; validation?: number; test?: number } | null;
}

/**
 * The execution providers onnxruntime-node knows by name on some platform (its README's table, plus
 * tensorrt beside cuda on Linux x64); a name outside it can never load, so it is refused at plan time.
 */
export const EXECUTION_PROVIDERS: readonly string[] = ['cpu', 'cuda', 'tensorrt', 'dml', 'webgpu', 'coreml'];
/** The most candidate pairs a run plans (shard numbers, candidate indexes and seeds stay exact far below 2^53). */
export const MAX_PAIRS = 1_000_000_000_000;
/** The most prompt rows a plan expands: their de-duplication table (src/prompts/fingerprint-set.ts) takes 8 bytes per slot, 512 MiB here. */
export const MAX_PROMPT_ROWS = 50_000_000;

const runtimeSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'Where and how models run, and how much work a worker overlaps.',
  properties: {
    execution_providers: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      minItems: 1,
      default: ['cpu'],
      description: `onnxruntime execution providers in order of preference, e.g. [cuda, cpu] on a GPU machine; known: ${EXECUTION_PROVIDERS.join(', ')} (which of them a machine has depends on its onnxruntime build).`,
    },
    intra_op_threads: { type: 'integer', minimum: 0, default: 1, description: 'Threads inside one ONNX operator (0: onnxruntime decides). Same threads → same bytes.' },
    inter_op_threads: { type: 'integer', minimum: 0, default: 1, description: 'Threads across ONNX operators (0: onnxruntime decides).' },
    graph_optimization: { enum: ['disabled', 'basic', 'extended', 'all'], default: 'all', description: 'onnxruntime graph optimisation level.' },
    concurrency: { type: 'integer', minimum: 1, maximum: 64, default: 4, description: 'Pairs scored, encoded and uploaded at once while the teacher samples the next batch.' },
    batch_size: { type: 'integer', minimum: 1, maximum: 256, default: 4, description: 'Candidate pairs handed to the teacher per call.' },
    // No default: a config without it keeps its run_id (the thread count never changes a pair's bytes).
    scoring_threads: {
      type: 'integer',
      minimum: 0,
      maximum: 64,
      description: 'Worker threads scoring pairs (identity and the pair scorers, each thread with its own sessions); 0 scores on the main thread. Absent: one per core but one, divided by intra_op_threads. Same pairs → same numbers whatever the count.',
    },
    // No default: a config without it keeps its run_id.
    max_memory: {
      type: 'string',
      pattern: '^[0-9]+(\\.[0-9]+)? ?(MB|MiB|GB|GiB)$',
      'x-message': 'expected a size such as 12GB, 12 GiB or 9000MB',
      description: 'Memory budget of one worker process (e.g. 12GB). The teacher picks its batch (at most teacher.max_batch candidates per UNet call) so that its estimated peak fits (docs/memory.md); a budget below one candidate\'s need is an error. Absent: teacher.max_batch.',
    },
  },
} as const;

const outputSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'How images are encoded into the shards, and what the dataset card states about the data.',
  properties: {
    image_format: {
      enum: ['jpeg', 'png', 'webp'],
      default: 'jpeg',
      description: `Image codec for source_image / edited_image (encoded by sharp, no metadata). jpeg: 4:4:4 chroma at \`quality\`; webp: lossy at \`quality\`, or lossless with \`lossless: true\`; png: lossless, zlib level ${PNG_COMPRESSION_LEVEL} with adaptive filtering.`,
    },
    quality: { type: 'integer', minimum: 1, maximum: 100, default: DEFAULT_QUALITY, description: 'JPEG / lossy WebP quality (PNG and lossless WebP do not use it).' },
    lossless: { type: 'boolean', default: false, description: 'Lossless WebP (needs image_format webp): the same pixels as PNG in fewer bytes.' },
    license: {
      type: ['string', 'null'],
      pattern: '^[A-Za-z0-9][A-Za-z0-9.+-]*$',
      'x-message': 'expected one license id such as apache-2.0, cc-by-4.0, MIT or other',
      default: null,
      description: 'License of the generated data for the dataset card: an SPDX id or a Hugging Face Hub license id (apache-2.0, cc-by-4.0, other...). null: not stated.',
    },
    language: {
      type: 'array',
      items: { type: 'string', pattern: '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$', 'x-message': 'expected a language code such as en, fr or pt-BR' },
      minItems: 1,
      uniqueItems: true,
      default: ['en'],
      description: 'Languages of the prompts and instructions for the dataset card: ISO 639-1/639-3 codes, optionally with a BCP-47 subtag (en, fr, pt-BR).',
    },
    row_group_bytes: { type: 'integer', minimum: 1048576, maximum: 1073741824, default: 33554432, description: 'Target bytes of images per Parquet row group in the data files (default 32 MiB): the rows per group follow from the shard\'s mean pair size, at least 1. Readers and the Hub\'s dataset viewer load a whole row group at once, so keep it to tens of MB.' },
    splits: {
      type: ['object', 'null'],
      additionalProperties: false,
      default: null,
      description: 'Fractions of pairs in each split, assigned by a hash of pair_id (stable as the dataset grows); they must sum to 1. null: train 0.98, validation 0.01, test 0.01.',
      properties: {
        train: { type: 'number', minimum: 0, maximum: 1, description: 'Fraction of pairs in the train split.' },
        validation: { type: 'number', minimum: 0, maximum: 1, description: 'Fraction of pairs in the validation split.' },
        test: { type: 'number', minimum: 0, maximum: 1, description: 'Fraction of pairs in the test split.' },
      },
    },
  },
  // lossless is a WebP mode: refuse it with any other format (x-message: the error the loader prints).
  if: { properties: { image_format: { not: { const: 'webp' } } } },
  then: { properties: { lossless: { const: false, 'x-message': 'only image_format webp has a lossless mode (PNG always is lossless, JPEG never is)' } } },
} as const;

export const pipelineConfigSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['prompts', 'teacher'],
  description: 'A pairgen pipeline: what to generate, with which teacher, how to filter and how to write it.',
  properties: {
    name: { type: 'string', minLength: 1, pattern: '^[A-Za-z0-9._-]+$', description: 'Run name, used in the dataset card. Default: the config file name without extension.' },
    seed: { type: 'integer', minimum: 0, maximum: 9007199254740991, default: 0, description: 'Run seed: every pair seed and the prompt sampling derive from it.' },
    pairs: { type: 'integer', minimum: 1, maximum: MAX_PAIRS, default: 100, description: 'Candidate pairs to generate (accepted + rejected). `plan --pairs` overrides.' },
    shard_size: { type: 'integer', minimum: 1, maximum: 100000, default: 100, description: 'Candidates per shard. `plan --shard-size` overrides.' },
    prompts: {
      type: 'object',
      additionalProperties: false,
      required: ['set'],
      description: 'The prompt set the run draws from.',
      properties: {
        set: { type: 'string', 'x-path': true, description: 'Prompt-set YAML (see docs/prompts.md), relative to the config file.' },
        count: {
          type: ['integer', 'null'],
          minimum: 1,
          maximum: MAX_PROMPT_ROWS,
          default: null,
          description: `Training prompt rows to expand (at most ${MAX_PROMPT_ROWS}). Default (null): one per candidate pair. Fewer rows than pairs repeat each prompt with new seeds.`,
        },
      },
    },
    teacher: teacherConfigSchema,
    identity: { ...identityConfigSchema, default: {} },
    // No defaults: a config without these sections runs no scorers and keeps its run_id.
    scorers: { ...scorersConfigSchema, description: `${scorersConfigSchema.description} Absent: no scorers run (a config that has the section, even {}, gets the default list).` },
    rules: rulesConfigSchema,
    output: { ...outputSchema, default: {} },
    storage: { ...storageConfigSchema, default: {} },
    runtime: { ...runtimeSchema, default: {} },
  },
} as const;
