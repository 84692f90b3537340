/** The pairgen command line: global options, then one verb per file (verbs.ts lists them); parsing and printing only. */
import { Command, CommanderError } from 'commander';
import { setLogFormat, setQuiet, type LogFormat } from '../util/log.ts';
import { VERBS } from './verbs.ts';

const program = new Command();
program
  .name('pairgen')
  .description('Generate synthetic paired portrait-editing datasets: prompts → teacher → identity filter → sharded Parquet.')
  .option('--log-format <format>', 'human (default) or json lines on stderr', 'human')
  .option('-q, --quiet', 'only warnings and errors')
  // A usage error is one line, like every user error (exit 2); the usage is one --help away.
  .configureOutput({ outputError: (text, write) => write(`${text.trimEnd()} (see --help)\n`) })
  .hook('preAction', (cmd) => {
    const opts = cmd.opts();
    if (opts.logFormat !== 'human' && opts.logFormat !== 'json') {
      program.error(`--log-format must be "human" or "json", got "${opts.logFormat}"`, { exitCode: 2 });
    }
    setLogFormat(opts.logFormat as LogFormat);
    setQuiet(Boolean(opts.quiet));
  })
  .exitOverride();

for (const register of VERBS) register(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // commander already printed the message; usage errors are user errors (exit 2), help/version exit 0.
    process.exitCode = e.exitCode === 0 ? 0 : 2;
  } else {
    throw e;
  }
}
