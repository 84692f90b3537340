import { Command } from 'commander';
import { isUserError } from '../errors.ts';
import { log } from '../util/log.ts';

/** Wrap a verb's action: user errors print one line and exit 2; bugs print their stack and exit 1. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      if (isUserError(e)) {
        log.error(e.message);
        process.exitCode = 2;
      } else {
        console.error(e);
        process.exitCode = 1;
      }
    }
  };
}

/** Collect repeated `--set key.path=value` options. */
export function collectSet(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export type VerbRegistrar = (program: Command) => void;
