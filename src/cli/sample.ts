import type { Command } from 'commander';
import { notBuilt } from './not-built.ts';

export function registerSample(program: Command): void {
  notBuilt(program, 'sample', 'render one image with a teacher model', 'issue 3');
}
