import type { Command } from 'commander';
import { UserError } from '../errors.ts';
import { log } from '../util/log.ts';
import { action, wholeNumber } from './common.ts';

/** `pairgen serve <run>`: the web app and JSON API over a run (docs/serve.md), until SIGINT or SIGTERM. */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('a local web app over a run, running or finished: progress, acceptance and scores, a pair browser, what-if thresholds; plus its JSON API under /api/ (read-only)')
    .argument('<run-uri>', 'a run folder or s3://bucket/prefix')
    .option('--port <n>', 'port to listen on (0: any free port)', wholeNumber('--port', 0), 8787)
    .option('--host <address>', 'address to listen on (loopback by default; anything else exposes the run to the network)', '127.0.0.1')
    .action(
      action(async (runUri: string, opts: { port: number; host: string }) => {
        if (opts.port > 65535) throw new UserError(`--port ${opts.port}: expected a port from 0 to 65535`);
        const { startServer } = await import('../serve/server.ts');
        const server = await startServer(runUri, { port: opts.port, host: opts.host });
        // One plain line on stderr, whatever the log format: scripts and tests read the port from it.
        process.stderr.write(`serving ${runUri} at ${server.url}\n`);
        await new Promise<void>((resolve) => {
          const stop = () => resolve();
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
        await server.close();
        log.info('stopped serving');
      }),
    );
}
