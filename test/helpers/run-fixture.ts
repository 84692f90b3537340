/** Shared setup for the spine's run tests: a pipeline config over the demo prompt set and a fixture model folder. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(REPO, 'bin/pairgen.js');
import { FIXTURES } from './fixtures.ts';
export { FIXTURES };

export function tempDir(prefix = 'pairgen-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * Write a pipeline config into `dir` and return its path. `extra` is appended YAML. `steps` sets the
 * teacher's sampler steps (default: the config default): 2 suits tests that do not look at the images.
 */
export function writeConfig(dir: string, options: { pairs?: number; shardSize?: number; steps?: number; extra?: string; name?: string } = {}): string {
  const file = join(dir, `${options.name ?? 'spine'}.yaml`);
  writeFileSync(
    file,
    [
      `seed: 7`,
      `pairs: ${options.pairs ?? 24}`,
      `shard_size: ${options.shardSize ?? 8}`,
      `prompts:`,
      `  set: ${join(REPO, 'prompts/demo.yaml')}`,
      `teacher:`,
      `  model: ${join(FIXTURES, 'tiny-sd')}`,
      ...(options.steps === undefined ? [] : [`  steps: ${options.steps}`]),
      `identity:`,
      `  enabled: false`,
      `output:`,
      `  image_format: jpeg`,
      `  quality: 90`,
      options.extra ?? '',
    ].join('\n'),
  );
  return file;
}

/** Every file under dir (relative path → bytes), for byte-for-byte comparisons. */
export function readTree(dir: string, filter: (rel: string) => boolean = () => true): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (rel: string) => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (filter(r)) out.set(r, readFileSync(join(dir, r)));
    }
  };
  walk('');
  return out;
}

/**
 * Write `<dir>/<name>.yaml`: a pipeline config over the demo prompt set writing PNG images.
 * `teacher` and `identity` are the bodies of their YAML flow maps, e.g. `enabled: false`.
 */
export function writeFlowConfig(dir: string, name: string, o: { seed: number; pairs: number; shardSize: number; teacher: string; identity: string }): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    [
      `seed: ${o.seed}`,
      `pairs: ${o.pairs}`,
      `shard_size: ${o.shardSize}`,
      `prompts: { set: ${join(REPO, 'prompts/demo.yaml')} }`,
      `teacher: { ${o.teacher} }`,
      `identity: { ${o.identity} }`,
      'output: { image_format: png }',
    ].join('\n'),
  );
  return file;
}

/** Rows of one query on a fresh in-memory DuckDB (read_parquet over run files). */
export async function sqlRows(query: string): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(':memory:');
  const db = await instance.connect();
  try {
    return (await db.runAndReadAll(query)).getRowObjectsJS();
  } finally {
    db.closeSync();
    instance.closeSync();
  }
}

/** What a finished process printed, in spawnSync's terms. */
export type CliResult = { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string };

/** Run `command args` without blocking this process (so that several can run at once). */
export function runAsync(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, timeout: options.timeout, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

/** `fn` over `items`, `size` at a time (CLI calls: each spends seconds starting up), results in order. */
export async function inBatches<T, R>(items: T[], size: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}
