import YAML from 'yaml';
import { DataType, type Field } from 'apache-arrow';
import type { DatasetStats } from './stats.ts';
import { describeColumn, isJsonField, runSchemas } from './record.ts';
import type { Schema } from 'apache-arrow';

/**
 * The dataset card (README.md at the run root). Its YAML front matter is what the Hugging Face Hub and
 * `datasets.load_dataset("<run>")` read: `configs` maps each split to its data files (data/<split>-*),
 * so rejects, markers and the manifest are never loaded as data; `dataset_info` declares the features
 * (as datasets writes them), and the rows and bytes of each split.
 */

/** One split as finalize found it: its share, counts and data files. */
export interface CardSplit {
  name: string;
  fraction: number;
  candidates: number;
  accepted: number;
  /** Glob of its data files relative to the run root, e.g. "data/train-*". */
  glob: string;
  files: number;
  bytes: number;
}

export interface CardInput {
  /** Runs with the duplicates scorer: accepted pairs marked as near-duplicates, by category. */
  nearDuplicates?: { accepted: number; by_category: Record<string, number> } | null;
  /** The data files' schema (runSchemas(scorers).pair); default: the fixed columns only. */
  schema?: Schema;
  /** Dataset name, used as the title and pretty_name. */
  name: string;
  /** Where the run lives (path or s3:// URI); shown in the body. Never a signed URL. */
  runUri: string;
  stats: DatasetStats;
  /** The frozen settings worth showing (teacher, sampler, identity model...), rendered as YAML. */
  configSummary: Record<string, unknown>;
  /** What decided acceptance (identity thresholds...), shown in their own section. */
  acceptance?: Record<string, unknown>;
  codeVersion: string;
  description?: string;
  /** A Hub license id or SPDX id ("apache-2.0", "cc-by-4.0", "other"); omitted when not given. */
  license?: string | null;
  /** Language codes of the instructions, e.g. ["en"]. */
  language?: string[];
  /** Every split, also those without pairs (they get no `configs` entry). */
  splits?: CardSplit[];
  /** File of sha256 sums of the data files, relative to the run root (e.g. "checksums.sha256"). */
  checksumsFile?: string;
}

function sizeCategory(n: number): string {
  const steps: [number, string][] = [[1e3, 'n<1K'], [1e4, '1K<n<10K'], [1e5, '10K<n<100K'], [1e6, '100K<n<1M'], [1e7, '1M<n<10M'], [1e8, '10M<n<100M'], [1e9, '100M<n<1B']];
  return steps.find(([limit]) => n < limit)?.[1] ?? 'n>1T';
}

const cellText = (s: string) => s.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const num = (x: number | null, digits = 3) => (x === null ? '—' : x.toFixed(digits));

function table(head: string[], rows: (string | number)[][]): string {
  return [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.map((c) => cellText(String(c))).join(' | ')} |`),
  ].join('\n');
}

function typeName(f: Field<DataType>): string {
  if (isJsonField(f)) return 'string (JSON)';
  if (DataType.isStruct(f.type)) return 'Image';
  return String(f.type).replace(/<Float32>/, '<float32>').toLowerCase();
}

function splitSection(splits: CardSplit[]): string[] {
  return [
    '## Splits',
    '',
    'Each pair\'s split is fixed by a hash of its `pair_id` (column `split`), so it keeps its split as the dataset',
    'grows. The accepted pairs of a split are the files `data/<split>-NNNNN-of-MMMMM.parquet` (one per shard that has any).',
    '',
    table(['split', 'fraction', 'candidates', 'accepted pairs', 'files', 'bytes'], splits.map((x) => [x.name, x.fraction, x.candidates, x.accepted, x.files, x.bytes])),
    '',
  ];
}

/** A column's feature in the card's `dataset_info`, as `datasets` writes it (lists as `sequence`, images as `dtype: image`). */
function cardFeature(f: Field<DataType>): Record<string, unknown> {
  const t = f.type;
  if (DataType.isStruct(t)) return { name: f.name, dtype: 'image' };
  if (DataType.isList(t)) return { name: f.name, sequence: valueDtype(t.children[0].type) };
  return { name: f.name, dtype: valueDtype(t) };
}

function valueDtype(t: DataType): string {
  if (DataType.isUtf8(t)) return 'string';
  if (DataType.isBinary(t)) return 'binary';
  if (DataType.isBool(t)) return 'bool';
  if (DataType.isInt(t)) return `int${t.bitWidth}`;
  if (DataType.isFloat(t)) return t.precision === 2 ? 'float64' : 'float32';
  throw new Error(`dataset card: no datasets dtype for Arrow type ${t}`);
}

export function renderDatasetCard(c: CardInput): string {
  const s = c.stats;
  const pairSchema: Schema = c.schema ?? runSchemas().pair;
  const withPairs = (c.splits ?? []).filter((x) => x.accepted > 0);
  const front: Record<string, unknown> = {
    pretty_name: c.name,
    ...(c.license ? { license: c.license } : {}),
    ...(c.language?.length ? { language: c.language } : {}),
    task_categories: ['image-to-image'],
    tags: ['synthetic', 'portrait', 'image-editing', 'paired', 'pairgen'],
    size_categories: [sizeCategory(s.accepted)],
    configs: [{ config_name: 'default', data_files: withPairs.map((x) => ({ split: x.name, path: x.glob })) }],
    dataset_info: {
      features: pairSchema.fields.map(cardFeature),
      splits: withPairs.map((x) => ({ name: x.name, num_bytes: x.bytes, num_examples: x.accepted })),
      download_size: withPairs.reduce((a, x) => a + x.bytes, 0),
      dataset_size: withPairs.reduce((a, x) => a + x.bytes, 0),
    },
  };
  const firstSplit = withPairs[0]?.name ?? 'train';
  const categories = Object.entries(s.by_category);
  const reasons = Object.entries(s.reject_reasons);
  const body = [
    `# ${c.name}`,
    '',
    c.description ?? 'Synthetic paired portrait edits: a source portrait, an edit instruction and the edited portrait, made by a teacher diffusion sampler and kept only when a face-identity model says both images show the same person.',
    '',
    '## Load it',
    '',
    '```python',
    'from datasets import load_dataset',
    `ds = load_dataset("path/to/run")  # ${withPairs.map((x) => x.name).join(' / ') || 'no splits yet'}, as the YAML above names them`,
    `ds["${firstSplit}"][0]["source_image"], ds["${firstSplit}"][0]["instruction"], ds["${firstSplit}"][0]["edited_image"]  # PIL images and the edit`,
    '```',
    '',
    'Any Parquet reader sees exactly the accepted pairs under `data/` (e.g. `pyarrow.dataset.dataset("path/to/run/data")`,',
    '`polars.scan_parquet("path/to/run/data/*.parquet")`). Rejected candidates (metadata and scores, no images) are in',
    '`rejects/`; every candidate is listed in `manifest.parquet`; totals and histograms are in `stats.json`.',
    ...(c.checksumsFile ? [`The sha256 of every data file is in \`${c.checksumsFile}\` (\`sha256sum -c ${c.checksumsFile}\` in the run folder checks them).`] : []),
    '',
    '## Counts',
    '',
    table(['candidates', 'accepted', 'rejected', 'acceptance', 'shards'], [[s.candidates, s.accepted, s.rejected, pct(s.acceptance_rate), s.shards]]),
    '',
    ...(c.nearDuplicates
      ? [`Near-duplicate sources: ${c.nearDuplicates.accepted} accepted pairs have a source within 6 bits (dHash) of an earlier accepted pair's (manifest column \`duplicate_of\`)${Object.keys(c.nearDuplicates.by_category).length ? `: ${Object.entries(c.nearDuplicates.by_category).map(([k, n]) => `${k} ${n}`).join(', ')}` : ''}.`, '']
      : []),
    '### Acceptance by category',
    '',
    categories.length
      ? table(['category', 'candidates', 'accepted', 'acceptance', 'mean identity similarity', 'no face'], categories.map(([k, g]) => [k, g.candidates, g.accepted, pct(g.acceptance_rate), num(g.identity_similarity.mean), g.identity_similarity.no_score]))
      : '_No candidates._',
    '',
    '### Reject reasons',
    '',
    reasons.length ? table(['reason', 'count'], reasons) : '_None._',
    '',
    ...(c.splits ? splitSection(c.splits) : []),
    ...(c.acceptance ? ['## What decided acceptance', '', '```yaml', YAML.stringify(c.acceptance).trimEnd(), '```', ''] : []),
    '## Columns',
    '',
    table(['column', 'type', 'meaning'], pairSchema.fields.map((f) => [`\`${f.name}\``, typeName(f), describeColumn(f.name)])),
    '',
    '## How it was made',
    '',
    `Generated by pairgen ${c.codeVersion} into \`${c.runUri}\`. Each candidate's seed is derived from the run seed, its`,
    'prompt id and sample index, so any pair can be regenerated exactly from run.json (see `pair_id`, `seed`,',
    '`sampler`, `teacher_digest`). Settings of this run:',
    '',
    '```yaml',
    YAML.stringify(c.configSummary).trimEnd(),
    '```',
    '',
  ];
  return `---\n${YAML.stringify(front)}---\n\n${body.join('\n')}`;
}
