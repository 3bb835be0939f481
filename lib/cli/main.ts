// Command-line entry: each sub-command lives in lib/cli/commands/<name>.ts and exports a
// yargs CommandModule; this file only wires them together and turns errors into exit codes.

import yargs from 'yargs';
import { SpdfqError } from '../errors';
import { rejectRepeatedFlags } from './flags';
import { CANCELLED_EXIT_CODE } from './signals';
import { inspectCommand } from './commands/inspect';
import { runCommand } from './commands/run';
import { compareCommand } from './commands/compare';
import { synthCommand } from './commands/synth';
import { quantizeCommand } from './commands/quantize';
import { slurmCommand } from './commands/slurm';

export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  try {
    await yargs(argv)
      .scriptName('spdfq-native')
      .command(runCommand)
      .command(inspectCommand)
      .command(synthCommand)
      .command(quantizeCommand)
      .command(compareCommand)
      .command(slurmCommand)
      .demandCommand(1, 'Name a command: run, inspect, synth, quantize, compare, slurm')
      // yargs passes itself to middleware (its typings omit it): the command's array flags
      .middleware(((argv: Record<string, unknown>, y: { getOptions(): { array: string[] } }) => rejectRepeatedFlags(argv, y.getOptions().array)) as unknown as (a: object) => void, true)
      .strict()
      .fail((msg, err) => {
        throw err ?? new SpdfqError('E_CONFIG', msg);
      })
      .help()
      .parseAsync();
  } catch (err) {
    const e = err as Error & { code?: string };
    process.stderr.write(`spdfq-native: ${e.message}\n`);
    exitCode = e instanceof SpdfqError && e.code === 'E_CANCELLED' ? CANCELLED_EXIT_CODE : 1;
  }
  return exitCode;
}
