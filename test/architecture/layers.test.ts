/**
 * The layering of docs/architecture.md holds in the code: every import of src/ (static or dynamic) goes to
 * the same folder or a lower layer, every folder is in the table, no two files import each other in a
 * loop, and nothing in the project reads the workspace folder beside the repository.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { REPO } from '../helpers/run-fixture.ts';

const SRC = join(REPO, 'src');

/** folder (or top-level file) → layer, from the table under "## Layers". */
function layersFromDoc(): Map<string, number> {
  const doc = readFileSync(join(REPO, 'docs/architecture.md'), 'utf8');
  const section = doc.split('## Layers')[1].split('\n## ')[0];
  const layers = new Map<string, number>();
  for (const m of section.matchAll(/^\| (\d+) \| `([^`]+?)\/?` \|/gm)) layers.set(m[2], Number(m[1]));
  return layers;
}

function filesUnder(dir: string, keep: (f: string) => boolean): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p, keep) : keep(p) ? [p] : [];
  });
}

/** Relative imports of a source file: `from '...'`, `import('...')` and `new URL('...', import.meta.url)`. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|new URL\(\s*)'(\.{1,2}\/[^']+\.(?:ts|mjs))'/g)].map((m) => m[1]);
  return specs.map((s) => resolve(dirname(file), s));
}

const top = (file: string) => relative(SRC, file).split('/')[0];
const sources = filesUnder(SRC, (f) => /\.(ts|mjs)$/.test(f));

test('every src folder is in the layer table, and every import goes to its own folder or a lower layer', () => {
  const layers = layersFromDoc();
  assert.ok(layers.size >= 10, 'the layer table was not found in docs/architecture.md');
  const missing = [...new Set(sources.map(top))].filter((t) => !layers.has(t));
  assert.deepEqual(missing, [], 'folders of src/ missing from the layer table in docs/architecture.md');
  const upward: string[] = [];
  for (const file of sources) {
    for (const target of importsOf(file)) {
      const [from, to] = [top(file), top(target)];
      if (from !== to && layers.get(to)! >= layers.get(from)!) upward.push(`${relative(REPO, file)} → ${relative(REPO, target)} (layer ${layers.get(from)} → ${layers.get(to)})`);
    }
  }
  assert.deepEqual(upward, [], 'imports that do not go to a lower layer');
});

test('no import cycle between files of src/', () => {
  const graph = new Map(sources.map((f) => [f, importsOf(f).filter((t) => t.startsWith(SRC))]));
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const visit = (f: string, path: string[]) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      cycles.push([...path.slice(path.indexOf(f)), f].map((p) => relative(SRC, p)).join(' → '));
      return;
    }
    state.set(f, 'open');
    for (const t of graph.get(f) ?? []) visit(t, [...path, f]);
    state.set(f, 'done');
  };
  for (const f of sources) visit(f, []);
  assert.deepEqual(cycles, []);
});

test('nothing in the project reads the folder beside the repository', () => {
  const outside = ['..', 'shared'].join('/');
  const places = ['src', 'test', 'bench', 'scripts', 'pipelines', 'prompts', 'bin', '.ci'].map((d) => join(REPO, d));
  const files = [...places.flatMap((d) => filesUnder(d, (f) => !f.includes('/fixtures/'))), join(REPO, 'Makefile'), join(REPO, 'package.json')];
  const readers = files.filter((f) => readFileSync(f, 'utf8').includes(outside) || readFileSync(f, 'utf8').includes(['/work', 'shared'].join('/')));
  assert.deepEqual(readers.map((f) => relative(REPO, f)), []);
});
