import type { Command } from 'commander';
import { notBuilt } from './not-built.ts';

export function registerIdentity(program: Command): void {
  notBuilt(program, 'identity', 'calibrate the identity filter', 'issue 4');
}
