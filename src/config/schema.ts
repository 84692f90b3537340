import { teacherConfigSchema, type TeacherConfig } from '../teacher/config.ts';
import { identityConfigSchema, type IdentityConfig } from '../identity/config.ts';
import { storageConfigSchema, type StorageConfig } from '../store/config.ts';
import type { RuntimeConfig } from '../onnx/session.ts';

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
  output: OutputConfig;
  storage: StorageConfig;
  runtime: RuntimeConfig & { concurrency: number; batch_size: number };
}

export interface OutputConfig {
  image_format: 'jpeg' | 'png' | 'webp';
  quality: number;
  row_group_rows: number;
  splits: { train?: number; validation?: number; test?: number } | null;
}

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
      description: 'onnxruntime execution providers in order of preference, e.g. [cuda, cpu] on a GPU machine.',
    },
    intra_op_threads: { type: 'integer', minimum: 0, default: 1, description: 'Threads inside one ONNX operator (0: onnxruntime decides). Same threads → same bytes.' },
    inter_op_threads: { type: 'integer', minimum: 0, default: 1, description: 'Threads across ONNX operators (0: onnxruntime decides).' },
    graph_optimization: { enum: ['disabled', 'basic', 'extended', 'all'], default: 'all', description: 'onnxruntime graph optimisation level.' },
    concurrency: { type: 'integer', minimum: 1, maximum: 64, default: 4, description: 'Pairs scored, encoded and uploaded at once while the teacher samples the next batch.' },
    batch_size: { type: 'integer', minimum: 1, maximum: 256, default: 4, description: 'Candidate pairs handed to the teacher per call.' },
  },
} as const;

const outputSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'How images are encoded into the shards.',
  properties: {
    image_format: { enum: ['jpeg', 'png', 'webp'], default: 'jpeg', description: 'Image codec for source_image / edited_image (encoded by sharp).' },
    quality: { type: 'integer', minimum: 1, maximum: 100, default: 92, description: 'JPEG / WebP quality (PNG is lossless and ignores it).' },
    row_group_rows: { type: 'integer', minimum: 1, maximum: 100000, default: 64, description: 'Rows per Parquet row group in shard files (images make rows large: keep groups to tens of MB).' },
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
} as const;

export const pipelineConfigSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['prompts', 'teacher'],
  description: 'A pairgen pipeline: what to generate, with which teacher, how to filter and how to write it.',
  properties: {
    name: { type: 'string', minLength: 1, pattern: '^[A-Za-z0-9._-]+$', description: 'Run name, used in the dataset card. Default: the config file name without extension.' },
    seed: { type: 'integer', minimum: 0, maximum: 9007199254740991, default: 0, description: 'Run seed: every pair seed and the prompt sampling derive from it.' },
    pairs: { type: 'integer', minimum: 1, default: 100, description: 'Candidate pairs to generate (accepted + rejected). `plan --pairs` overrides.' },
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
          default: null,
          description: 'Training prompt rows to expand. Default (null): one per candidate pair. Fewer rows than pairs repeat each prompt with new seeds.',
        },
      },
    },
    teacher: teacherConfigSchema,
    identity: { ...identityConfigSchema, default: {} },
    output: { ...outputSchema, default: {} },
    storage: { ...storageConfigSchema, default: {} },
    runtime: { ...runtimeSchema, default: {} },
  },
} as const;
