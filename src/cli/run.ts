import type { Command } from 'commander';
import { notBuilt } from './not-built.ts';

export function registerRunVerbs(program: Command): void {
  notBuilt(program, 'plan', 'plan a run', 'issue 2');
  notBuilt(program, 'work', 'process shards of a run', 'issue 2');
  notBuilt(program, 'run', 'plan, work and finalize a run locally', 'issue 2');
  notBuilt(program, 'status', 'show a run\'s progress', 'issue 2');
  notBuilt(program, 'finalize', 'write manifest, stats and dataset card', 'issue 2');
}
