/**
 * A real worker process for the spine's kill tests: `pairgen work` with the test-only teacher and scorer
 * injected (the CLI can never reach them).
 *
 *   node --import tsx work-process.ts <run-uri> [delayMs] [--index I --count N] [--retry-failed]
 *
 * delayMs slows every teacher batch so a test can kill the process in the middle of a shard. It prints
 * one JSON line per shard event, then {"done":true,...}, and exits like `pairgen work`: 0 when every
 * shard of its share is committed, 3 when some failed or were held back.
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { workRun } from '../../src/run/work.ts';
import { TestScorer, TestTeacher } from '../helpers/test-teacher.ts';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { index: { type: 'string' }, count: { type: 'string' }, 'retry-failed': { type: 'boolean' } },
});
const [runUri, delay = '0'] = positionals;
const delayMs = Number(delay);

class SlowTeacher extends TestTeacher {
  override async generate(...args: Parameters<TestTeacher['generate']>) {
    await new Promise((r) => setTimeout(r, delayMs));
    return super.generate(...args);
  }
}

// PAIRGEN_TEST_BARRIER=<file>: say "ready" and wait for the file, so a test can start several workers at
// the same instant whatever their start-up time.
const barrier = process.env.PAIRGEN_TEST_BARRIER;
if (barrier) {
  process.stdout.write(JSON.stringify({ ready: true }) + '\n');
  while (!existsSync(barrier)) await new Promise((r) => setTimeout(r, 10));
}

const summary = await workRun(runUri, {
  share: values.count !== undefined ? { index: Number(values.index ?? 0), count: Number(values.count) } : undefined,
  retryFailed: values['retry-failed'],
  teacherFactory: async () => new SlowTeacher(),
  scorerFactory: async () => new TestScorer(),
  onShard: (e) => process.stdout.write(JSON.stringify(e) + '\n'),
});
process.stdout.write(JSON.stringify({ done: true, committed: summary.committed.length, failed: summary.failed, held: summary.held }) + '\n');
if (summary.failed.length || summary.held.length) process.exitCode = 3;
