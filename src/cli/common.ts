import { Command, InvalidArgumentError } from 'commander';
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

/** A commander parser for a whole-number option: digits only, at least `min`, exactly representable. */
export function wholeNumber(name: string, min = 0) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v)) || Number(v) < min) throw new InvalidArgumentError(`${name} must be a whole number ≥ ${min} (below 2^53)`);
    return Number(v);
  };
}

/** Collect repeated `--set key.path=value` options. */
export function collectSet(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export type VerbRegistrar = (program: Command) => void;
