// Command-line entry: each sub-command lives in lib/commands/<name>.ts and exports a
// yargs CommandModule; this file only wires them together and turns errors into exit codes.

import yargs from 'yargs';
import { SpdfqError } from './errors';
import { inspectCommand } from './commands/inspect';

export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  try {
    await yargs(argv)
      .scriptName('spdfq-native')
      .command(inspectCommand)
      .demandCommand(1, 'Name a command: inspect')
      .strict()
      .fail((msg, err) => {
        throw err ?? new SpdfqError('E_CONFIG', msg);
      })
      .help()
      .parseAsync();
  } catch (err) {
    const e = err as Error & { code?: string };
    process.stderr.write(`spdfq-native: ${e.message}\n`);
    exitCode = e instanceof SpdfqError && e.code === 'E_CANCELLED' ? 130 : 1;
  }
  return exitCode;
}
