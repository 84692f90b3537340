import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { swapIn } from '../../src/reference/index.ts';

// The last step of building the reference teacher, when several processes build it at once (test files
// in parallel on a fresh clone): one of them must never delete a folder another is already reading.
function build(dir: string, stamp: string, marker: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'stamp.json'), JSON.stringify({ stamp }));
  writeFileSync(join(dir, 'model_index.json'), marker);
}

test('swapIn: into an empty place; beside an equal build it keeps the one in place; a stale one is replaced', async () => {
  const base = mkdtempSync(join(tmpdir(), 'pairgen-swap-'));
  const root = join(base, 'reference-teacher');

  build(join(base, 'tmp-1'), 'a', 'first');
  await swapIn(join(base, 'tmp-1'), root, 'a');
  assert.equal(readFileSync(join(root, 'model_index.json'), 'utf8'), 'first');
  assert.ok(!existsSync(join(base, 'tmp-1')));

  // A second process finished the same build later: the folder in use stays, its own build is dropped.
  build(join(base, 'tmp-2'), 'a', 'second');
  await swapIn(join(base, 'tmp-2'), root, 'a');
  assert.equal(readFileSync(join(root, 'model_index.json'), 'utf8'), 'first');
  assert.ok(!existsSync(join(base, 'tmp-2')));

  // A build of another stamp replaces a stale folder, and leaves nothing aside.
  build(join(base, 'tmp-3'), 'b', 'third');
  await swapIn(join(base, 'tmp-3'), root, 'b');
  assert.equal(readFileSync(join(root, 'model_index.json'), 'utf8'), 'third');
  assert.deepEqual(readdirSync(base), ['reference-teacher']);
});
