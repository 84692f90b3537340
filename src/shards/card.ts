import YAML from 'yaml';
import { DataType, type Field } from 'apache-arrow';
import type { DatasetStats } from './stats.ts';
import { columnDescriptions, isJsonField, pairSchema } from './record.ts';

/**
 * The dataset card (README.md at the run root). Its YAML front matter points `datasets.load_dataset`
 * at the accepted shards only: `shards/shard-*[0-9].parquet` matches shard-00000.parquet but not
 * shard-00000.rejects.parquet (fnmatch-style globs, as datasets resolves data_files).
 */
export const SHARD_GLOB = 'shards/shard-*[0-9].parquet';

export interface CardInput {
  /** Dataset name, used as the title and pretty_name. */
  name: string;
  /** Where the run lives (path or s3:// URI); shown in the body. Never a signed URL. */
  runUri: string;
  stats: DatasetStats;
  /** The frozen settings worth showing (teacher, sampler, identity model, thresholds...), rendered as YAML. */
  configSummary: Record<string, unknown>;
  codeVersion: string;
  description?: string;
  /** SPDX id or "other"; omitted from the front matter when not given. */
  license?: string;
  /** The split fractions and the candidates / accepted pairs in each split (manifest column `split`). */
  splits?: { fractions: Record<string, number>; counts: Record<string, { candidates: number; accepted: number }> };
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

function splitSection(splits: NonNullable<CardInput['splits']>): string[] {
  return [
    '## Splits',
    '',
    'Each pair\'s split is fixed by a hash of its `pair_id` (see `split` in `manifest.parquet`), so it keeps its split as',
    'the dataset grows. Export one split with `pairgen export <run> --format webdataset --where "split = \'test\'" --out DIR`.',
    '',
    table(['split', 'fraction', 'candidates', 'accepted pairs'], Object.entries(splits.counts).map(([k, n]) => [k, splits.fractions[k] ?? 0, n.candidates, n.accepted])),
    '',
  ];
}

export function renderDatasetCard(c: CardInput): string {
  const s = c.stats;
  const front: Record<string, unknown> = {
    pretty_name: c.name,
    ...(c.license ? { license: c.license } : {}),
    task_categories: ['image-to-image'],
    tags: ['synthetic', 'portrait', 'image-editing', 'paired', 'pairgen'],
    size_categories: [sizeCategory(s.accepted)],
    configs: [{ config_name: 'default', data_files: [{ split: 'train', path: SHARD_GLOB }] }],
  };
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
    `ds = load_dataset("parquet", data_files="${SHARD_GLOB}", split="train")`,
    'ds[0]["source_image"], ds[0]["instruction"], ds[0]["edited_image"]  # PIL images and the edit',
    '```',
    '',
    'Or from this folder as a dataset repository: `load_dataset("path/to/run")` (the YAML above names the shards).',
    'Rejected candidates (metadata and scores, no images) are in `shards/shard-*.rejects.parquet`; every candidate',
    'is listed in `manifest.parquet`; totals and histograms are in `stats.json`.',
    '',
    '## Counts',
    '',
    table(['candidates', 'accepted', 'rejected', 'acceptance', 'shards'], [[s.candidates, s.accepted, s.rejected, pct(s.acceptance_rate), s.shards]]),
    '',
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
    '## Columns',
    '',
    table(['column', 'type', 'meaning'], pairSchema.fields.map((f) => [`\`${f.name}\``, typeName(f), columnDescriptions[f.name] ?? ''])),
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
