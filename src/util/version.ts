import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { name: string; version: string };

/** Recorded in run.json and every pair row: which code made the bytes. */
export const CODE_VERSION = `${pkg.name}@${pkg.version}`;
