import { createHash } from 'node:crypto';
import { UserError } from '../errors.ts';

/**
 * Dataset splits by a hash of pair_id, so a pair keeps its split as the dataset grows (more pairs,
 * more shards, a refiltered or merged run) and no pair is in two splits:
 *   u = first 32 bits (big-endian) of sha256("pairgen-split-v1\0{pair_id}") / 2^32      (uniform in [0, 1))
 *   split = the first split, in the order train, validation, test, whose cumulative fraction exceeds u.
 * Changing the fractions moves only the pairs whose u falls between the old and the new boundaries.
 */
export const SPLIT_NAMES = ['train', 'validation', 'test'] as const;
export type SplitName = (typeof SPLIT_NAMES)[number];
export type SplitFractions = Record<SplitName, number>;

export const DEFAULT_SPLITS: SplitFractions = { train: 0.98, validation: 0.01, test: 0.01 };

export function splitPosition(pairId: string): number {
  return createHash('sha256').update(`pairgen-split-v1\0${pairId}`).digest().readUInt32BE(0) / 2 ** 32;
}

export function splitOf(pairId: string, fractions: SplitFractions = DEFAULT_SPLITS): SplitName {
  const u = splitPosition(pairId);
  let edge = 0;
  for (const name of SPLIT_NAMES) {
    edge += fractions[name];
    if (u < edge) return name;
  }
  return 'test'; // rounding: the fractions sum to 1 within 1e-9
}

/** Check fractions (from run.json or --splits): names among the three (missing = 0), each in [0, 1], summing to 1. */
export function checkSplits(value: unknown, where: string): SplitFractions {
  if (value === undefined || value === null) return DEFAULT_SPLITS;
  const v = value as Record<string, unknown>;
  const keys = typeof v === 'object' && !Array.isArray(v) ? Object.keys(v) : [];
  const unknown = keys.filter((k) => !(SPLIT_NAMES as readonly string[]).includes(k));
  if (typeof v !== 'object' || Array.isArray(v) || unknown.length) {
    throw new UserError(`${where}: expected fractions of ${SPLIT_NAMES.join(', ')}${unknown.length ? `; unknown split "${unknown[0]}"` : ''}`);
  }
  const out: Record<string, unknown> = Object.fromEntries(SPLIT_NAMES.map((n) => [n, n in v ? v[n] : 0]));
  for (const n of SPLIT_NAMES) {
    const x = out[n];
    if (typeof x !== 'number' || !Number.isFinite(x) || x < 0 || x > 1) throw new UserError(`${where}: ${n} must be a number from 0 to 1, got ${JSON.stringify(x)}`);
  }
  const sum = SPLIT_NAMES.reduce((a, n) => a + (out[n] as number), 0);
  if (Math.abs(sum - 1) > 1e-9) throw new UserError(`${where}: the fractions must sum to 1, got ${SPLIT_NAMES.map((n) => `${n} ${out[n]}`).join(' + ')} = ${sum}`);
  return out as SplitFractions;
}

/** "train=0.9,validation=0.05,test=0.05" → fractions (names left out are 0; the sum must be 1). */
export function parseSplits(text: string): SplitFractions {
  const obj: Record<string, number> = {};
  for (const part of text.split(',')) {
    const m = /^\s*([a-z]+)\s*=\s*([0-9.eE+-]+)\s*$/.exec(part);
    if (!m) throw new UserError(`--splits ${text}: expected name=fraction,... e.g. train=0.9,validation=0.05,test=0.05`);
    obj[m[1]] = Number(m[2]);
  }
  return checkSplits(obj, `--splits ${text}`);
}
