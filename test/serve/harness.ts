/**
 * What the browser test and scripts/screenshots.ts share: the CLI as a child process, `pairgen serve`
 * started through it (its URL read from the line it prints on stderr), and Debian's chromium driven by
 * playwright-core (`make browser` installs it; playwright's own browser download cannot work here).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import type { Browser } from 'playwright-core';

export const BIN = new URL('../../bin/pairgen.js', import.meta.url).pathname;
export const DEMO = new URL('../../pipelines/demo.yaml', import.meta.url).pathname;
export const CHROMIUM = '/usr/bin/chromium';

const run = promisify(execFile);

/** `pairgen <args>` to its end; rejects with its stderr when it fails. */
export function pairgen(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [BIN, ...args], { maxBuffer: 1 << 24 });
}

/** `pairgen <args>` in the background, its stderr collected. */
export function pairgenChild(...args: string[]): { child: ChildProcess; stderr: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let text = '';
  child.stderr!.on('data', (d: Buffer) => (text += d.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stderr: () => text, exited };
}

export interface Served {
  url: string;
  stop: () => Promise<void>;
}

/** `pairgen serve <run> --port 0` in a child process, once it said where it listens. */
export async function serve(runUri: string): Promise<Served> {
  const p = pairgenChild('serve', runUri, '--port', '0');
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pairgen serve said nothing in 60 s: ${p.stderr()}`)), 60_000);
    p.child.stderr!.on('data', () => {
      const m = /serving .* at (http:\/\/[^\s]+\/)/.exec(p.stderr());
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    void p.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`pairgen serve exited ${code}: ${p.stderr()}`));
    });
  });
  return {
    url,
    stop: async () => {
      if (p.child.exitCode === null) p.child.kill('SIGTERM');
      await p.exited;
    },
  };
}

/** Why no browser can run here (a message for a skipped test), or null when chromium is there. */
export function browserMissing(): string | null {
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} is not installed (\`make browser\` installs Debian's chromium as root)`;
  return null;
}

/** Headless chromium; the flags keep it off the network (this machine's is closed) and out of a sandbox it cannot make as root. */
export async function launchBrowser(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
