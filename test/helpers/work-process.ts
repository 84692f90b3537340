/**
 * A real worker process for the spine's kill tests: `pairgen work` with the test-only teacher and scorer
 * injected (the CLI can never reach them). Usage: node --import tsx work-process.ts <run-uri> [delayMs]
 * delayMs slows every teacher batch so a test can kill the process in the middle of a shard.
 */
import { workRun } from '../../src/run/work.ts';
import { TestScorer, TestTeacher } from './test-teacher.ts';

const [runUri, delay = '0'] = process.argv.slice(2);
const delayMs = Number(delay);

class SlowTeacher extends TestTeacher {
  override async generate(...args: Parameters<TestTeacher['generate']>) {
    await new Promise((r) => setTimeout(r, delayMs));
    return super.generate(...args);
  }
}

const summary = await workRun(runUri, {
  teacherFactory: async () => new SlowTeacher(),
  scorerFactory: async () => new TestScorer(),
  onShard: (e) => process.stdout.write(JSON.stringify(e) + '\n'),
});
process.stdout.write(JSON.stringify({ done: true, committed: summary.committed.length }) + '\n');
