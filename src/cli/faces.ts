import type { Command } from 'commander';
import { notBuilt } from './not-built.ts';

export function registerFaces(program: Command): void {
  notBuilt(program, 'faces', 'detect, embed and compare faces', 'issue 4');
}
