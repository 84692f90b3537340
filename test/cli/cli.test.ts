import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/pairgen.js', import.meta.url));

function pairgen(...args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
}

test('--help lists the verbs and exits 0', () => {
  const r = pairgen('--help');
  assert.equal(r.status, 0);
  for (const verb of ['expand', 'plan', 'work', 'run', 'status', 'finalize']) assert.match(r.stdout, new RegExp(`\\b${verb}\\b`));
});

test('an unknown verb is a usage error: exit 2', () => {
  const r = pairgen('frobnicate');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command/);
});

test('a bad --log-format is a usage error: exit 2', () => {
  const r = pairgen('--log-format', 'xml', 'status', 'x');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--log-format/);
});
