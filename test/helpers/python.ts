/**
 * Run a Python script with the reader virtualenv that `make pyenv` builds (scripts/pyenv.sh): the input
 * goes to the script as JSON on stdin, the script prints one JSON value on stdout. A missing or stale
 * venv fails the test with what to run: tests that need Python never skip, in CI neither.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { REPO } from './run-fixture.ts';

const PYENV = process.env.PAIRGEN_CACHE ? join(resolve(process.env.PAIRGEN_CACHE), 'pyenv') : join(REPO, '.cache', 'pyenv');
const REQUIREMENTS = join(REPO, 'test/readers/requirements.txt');
/** Written last by scripts/pyenv.sh: the sha256 of the requirements the venv holds. */
const STAMP = join(PYENV, 'requirements.sha256');

function checkVenv(): string {
  const python = join(PYENV, 'bin', 'python');
  if (!existsSync(STAMP) || !existsSync(python)) throw new Error(`the Python readers are not installed in ${PYENV}: run \`make pyenv\` (needs python3 >= 3.10)`);
  const want = createHash('sha256').update(readFileSync(REQUIREMENTS)).digest('hex');
  if (readFileSync(STAMP, 'utf8').trim() !== want) throw new Error(`${PYENV} was built from an older test/readers/requirements.txt: run \`make pyenv\``);
  return python;
}

/** Run `script` (a path) with the venv's Python; `env` is added to this process's environment. */
export function runPython<T = unknown>(script: string, input: unknown, env: Record<string, string> = {}): T {
  const python = checkVenv();
  const r = spawnSync(python, [script], {
    input: JSON.stringify(input),
    env: { ...process.env, ...env },
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    timeout: 300_000,
  });
  if (r.error) throw new Error(`${script}: ${r.error.message}\n${r.stderr ?? ''}`);
  if (r.status !== 0) throw new Error(`${script} failed (${r.signal ?? `exit ${r.status}`}):\n${r.stderr}`);
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`${script} printed no JSON on stdout: ${JSON.stringify(r.stdout.slice(0, 500))}\n${r.stderr}`);
  }
}
