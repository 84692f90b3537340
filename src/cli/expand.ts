import type { Command } from 'commander';
import { notBuilt } from './not-built.ts';

export function registerExpand(program: Command): void {
  notBuilt(program, 'expand', 'expand a prompt set into a prompt table', 'issue 2');
}
