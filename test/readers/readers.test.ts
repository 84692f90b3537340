/**
 * Issue 12: a finished run read by the real Python readers — Hugging Face `datasets`, pyarrow, Polars and
 * fastparquet from the venv `make pyenv` builds — and its WebDataset export loaded by `datasets`. The run
 * is the demo pipeline (reference teacher, face models) with 12 pairs in 3 shards and splits chosen so
 * every split gets pairs and one shard has a reject. The Python scripts beside this file report what each
 * reader saw; the expected values come from the run's stats.json, its dataset card and DuckDB.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { ensureReferenceTeacher } from '../../src/reference/index.ts';
import { runPython } from '../helpers/python.ts';
import { BIN, REPO, readTree, sqlRows, tempDir } from '../helpers/run-fixture.ts';

const HERE = join(REPO, 'test/readers');
const DEMO = join(REPO, 'pipelines/demo.yaml');
const dir = tempDir('pairgen-readers-');
const run = join(dir, 'run');
// Nothing may reach the network or the user's Hugging Face cache.
const HF_ENV = { HF_HOME: join(dir, 'hf'), HF_DATASETS_CACHE: join(dir, 'hf/datasets'), HF_DATASETS_OFFLINE: '1', HF_HUB_OFFLINE: '1', HF_HUB_DISABLE_TELEMETRY: '1' };

type Failed = { error: string };
type SplitSeen = { rows: number; split_values: string[] | null; image_columns: string[]; undecoded_images: number };
interface RunSeen {
  load_dataset_run: Record<string, SplitSeen> | Failed;
  load_dataset_parquet_data_dir: Record<string, SplitSeen> | Failed;
  pyarrow_dataset: { rows: number } | Failed;
  polars_glob: { rows: number } | Failed;
  fastparquet: Record<string, { rows: number } | Failed>;
  manifest: {
    rows: number;
    row_groups: number;
    pair_ids: string[];
    statistics_checked: number;
    statistics_problems: string[];
    page_index: { column: number; offset: number; chunks: number };
    pair_id_filter: { pair_id: string; rows: string[] };
    polars_rows: number;
  } | Failed;
}
type ExportLoad = { splits: Record<string, number>; keys: string[]; problems: string[]; problem_count: number } | Failed;
interface ExportSeen {
  tar_keys: string[];
  load_dataset_webdataset: ExportLoad;
  load_dataset_folder: ExportLoad;
}
interface Stats {
  candidates: number;
  accepted: number;
  rejected: number;
  splits: { counts: Record<string, { accepted: number }> };
}

const pairgen = (...args: string[]) => promisify(execFile)(process.execPath, [BIN, ...args], { maxBuffer: 1 << 24 });

/** The value a reader returned, or the test fails with the reader's own error. */
function ok<T extends object>(what: string, seen: T | Failed): T {
  if ('error' in seen && typeof seen.error === 'string') assert.fail(`${what} failed: ${seen.error}`);
  return seen as T;
}

let stats: Stats;
let card: { configs: { config_name: string; data_files: { split: string; path: string }[] }[]; dataset_info?: { splits?: { name: string; num_examples: number }[] } };
let seen: RunSeen;

before(async () => {
  // First, so a missing venv fails at once with `make pyenv` instead of after the run is made.
  const versions = runPython<Record<string, string>>(join(HERE, 'versions.py'), {});
  console.log(`readers: ${Object.entries(versions).map(([p, v]) => `${p} ${v}`).join(', ')}`);
  await ensureReferenceTeacher();
  const splits = ['train=0.4', 'validation=0.3', 'test=0.3'].flatMap((s) => ['--set', `output.splits.${s}`]);
  await pairgen('run', DEMO, '--out', run, '--pairs', '12', '--shard-size', '4', ...splits);
  stats = JSON.parse(readFileSync(join(run, 'stats.json'), 'utf8')) as Stats;
  const front = /^---\n([\s\S]*?)\n---\n/.exec(readFileSync(join(run, 'README.md'), 'utf8'));
  assert.ok(front, 'the dataset card has no YAML header');
  card = parse(front[1]);
  seen = runPython<RunSeen>(join(HERE, 'read_run.py'), { run }, HF_ENV);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Split → accepted pairs, from stats.json; the card must name exactly these splits with these counts. */
function expectedSplits(): Record<string, number> {
  return Object.fromEntries(Object.entries(stats.splits.counts).filter(([, c]) => c.accepted > 0).map(([s, c]) => [s, c.accepted]));
}

test('the fixture run has accepted pairs in all three splits and rejected candidates', () => {
  assert.deepEqual(Object.keys(expectedSplits()).sort(), ['test', 'train', 'validation'], `splits: ${JSON.stringify(stats.splits.counts)}`);
  assert.ok(stats.rejected > 0 && stats.accepted > 0, `accepted ${stats.accepted}, rejected ${stats.rejected}`);
});

test("the card's configs and dataset_info name exactly the splits and counts of stats.json", () => {
  const want = expectedSplits();
  const config = card.configs.find((c) => c.config_name === 'default');
  assert.ok(config, `no default config in ${JSON.stringify(card.configs)}`);
  assert.deepEqual(config.data_files.map((f) => f.split).sort(), Object.keys(want).sort());
  assert.deepEqual(Object.fromEntries((card.dataset_info?.splits ?? []).map((s) => [s.name, s.num_examples])), want);
});

for (const [name, call] of [
  ['load_dataset_run', 'datasets.load_dataset(<run>)'],
  ['load_dataset_parquet_data_dir', 'datasets.load_dataset("parquet", data_dir=<run>/data)'],
] as const) {
  test(`${call}: the card's splits with their counts, every row's split column its split, images decoding to PIL`, () => {
    const got = ok(call, seen[name]);
    const want = Object.fromEntries(
      Object.entries(expectedSplits()).map(([s, n]) => [s, { rows: n, split_values: [s], image_columns: ['source_image', 'edited_image'], undecoded_images: 0 }]),
    );
    assert.deepEqual(got, want);
  });
}

test('pyarrow.dataset.dataset(<run>/data) and polars.scan_parquet(<run>/data/*.parquet) see exactly the accepted pairs', () => {
  assert.equal(ok('pyarrow.dataset', seen.pyarrow_dataset).rows, stats.accepted);
  assert.equal(ok('polars.scan_parquet', seen.polars_glob).rows, stats.accepted);
});

test('fastparquet reads every Parquet file of the run (data, rejects, manifest, prompts) with the rows DuckDB counts', async () => {
  const files = [...readTree(run, (f) => f.endsWith('.parquet')).keys()].sort();
  const want: Record<string, { rows: number }> = {};
  for (const f of files) want[f] = { rows: Number((await sqlRows(`SELECT count(*) AS n FROM read_parquet('${join(run, f)}')`))[0].n) };
  assert.deepEqual(seen.fastparquet, want);
  for (const f of ['manifest.parquet', 'prompts.parquet']) assert.ok(files.includes(f), `no ${f} in ${files.join(', ')}`);
  assert.ok(files.some((f) => f.startsWith('rejects/')), `no rejects file in ${files.join(', ')}`);
});

test('manifest.parquet (row groups of whole shards merged from the manifest parts) through pyarrow and polars: DuckDB\'s rows in order, statistics that bound every chunk\'s values, page indexes, a pair_id filter', async () => {
  const m = ok('pyarrow manifest', seen.manifest);
  const want = (await sqlRows(`SELECT pair_id FROM read_parquet('${join(run, 'manifest.parquet')}')`)).map((r) => String(r.pair_id));
  assert.equal(m.rows, stats.candidates);
  assert.deepEqual(m.pair_ids, want);
  assert.equal(m.polars_rows, stats.candidates);
  assert.equal(m.row_groups, 1, 'the run\'s 3 shards of 4 pairs fit one row group');
  assert.deepEqual(m.statistics_problems, []);
  assert.ok(m.statistics_checked > 25, `${m.statistics_checked} chunks' statistics checked`);
  // Copied and joined chunks keep a page per shard, so they have both indexes; a chunk encoded again as a
  // single page (duplicate_of, a column some parts dictionary-encode and others not) has neither.
  assert.equal(m.page_index.column, m.page_index.offset);
  assert.ok(m.page_index.column >= 0.9 * m.page_index.chunks, `${m.page_index.column} of ${m.page_index.chunks} chunks have a page index`);
  assert.deepEqual(m.pair_id_filter.rows, [m.pair_id_filter.pair_id]);
});

test('the WebDataset export loads with load_dataset("webdataset", data_files=...) and with load_dataset(<folder>): every pair, every JSON key', async () => {
  const out = join(dir, 'wds');
  await pairgen('export', run, '--format', 'webdataset', '--out', out);
  const got = runPython<ExportSeen>(join(HERE, 'read_export.py'), { export: out }, HF_ENV);
  const accepted = (await sqlRows(`SELECT pair_id FROM read_parquet('${join(run, 'manifest.parquet')}') WHERE accepted ORDER BY pair_id`)).map((r) => String(r.pair_id));
  assert.deepEqual(got.tar_keys, accepted, 'the tars should hold every accepted pair once');
  for (const [name, call] of [
    ['load_dataset_webdataset', 'load_dataset("webdataset", data_files=<tars>)'],
    ['load_dataset_folder', 'load_dataset(<export folder>)'],
  ] as const) {
    const load = ok(call, got[name]);
    assert.deepEqual(load.problems, [], `${call}: ${load.problem_count} problems`);
    assert.deepEqual(load.keys, accepted, `${call} should load every pair once`);
  }
  assert.deepEqual(ok('load_dataset(<export folder>)', got.load_dataset_folder).splits, expectedSplits(), 'the export folder should load with the run\'s splits');
});
