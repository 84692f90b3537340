import type { Command } from 'commander';
import { log } from '../util/log.ts';

/** A verb whose capability is not built yet: it says so and exits non-zero, never pretends. */
export function notBuilt(program: Command, name: string, summary: string, issue: string): void {
  program
    .command(name)
    .description(`${summary} (not built yet: ${issue})`)
    .allowUnknownOption()
    .allowExcessArguments()
    .action(() => {
      log.error(`pairgen ${name} is not built yet (${issue})`);
      process.exitCode = 1;
    });
}
