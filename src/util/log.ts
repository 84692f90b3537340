import cliProgress from 'cli-progress';

/**
 * One logger for the whole CLI: human lines on a terminal (stderr), JSON lines with --log-format json.
 * Progress bars appear only on a TTY in human mode; elsewhere progress is a plain line every few seconds.
 */
export type LogFormat = 'human' | 'json';

let format: LogFormat = 'human';
let quiet = false;

export function setLogFormat(f: LogFormat): void {
  format = f;
}
export function setQuiet(q: boolean): void {
  quiet = q;
}
export function logFormat(): LogFormat {
  return format;
}

function emit(level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void {
  if (quiet && level === 'info') return;
  if (format === 'json') {
    process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + '\n');
  } else {
    const prefix = level === 'info' ? '' : `${level}: `;
    const extra = fields && Object.keys(fields).length ? ' ' + Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ') : '';
    process.stderr.write(`${prefix}${msg}${extra}\n`);
  }
}

export const log = {
  info: (msg: string, fields?: Record<string, unknown>) => emit('info', msg, fields),
  warn: (msg: string, fields?: Record<string, unknown>) => emit('warn', msg, fields),
  error: (msg: string, fields?: Record<string, unknown>) => emit('error', msg, fields),
};

export interface Progress {
  update(done: number, fields?: Record<string, unknown>): void;
  stop(): void;
}

/** A progress display for `total` units of work named `what`. */
export function progress(what: string, total: number): Progress {
  if (format === 'human' && !quiet && process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: `${what} [{bar}] {value}/{total} {percentage}% | ETA {eta_formatted}`, stream: process.stderr, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0);
    return { update: (done) => bar.update(done), stop: () => bar.stop() };
  }
  let last = 0;
  return {
    update(done, fields) {
      const now = Date.now();
      if (now - last < 5000 && done < total) return;
      last = now;
      emit('info', `${what} ${done}/${total}`, { done, total, ...fields });
    },
    stop() {},
  };
}
