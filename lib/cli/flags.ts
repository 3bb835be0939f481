// Checks on command-line flags, in the flags' own names, made before any data is read:
// a repeated scalar flag (yargs would pass an array on), and numbers that must be
// positive integers (yargs passes NaN or -3 through).

import { SpdfqError } from '../errors';

const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** yargs middleware: a scalar flag given twice is an error naming it. `arrayFlags`: the
 *  flags the command declares `type: 'array'` (yargs' getOptions().array), which
 *  legitimately take several values. */
export function rejectRepeatedFlags(argv: Record<string, unknown>, arrayFlags: readonly string[]): void {
  const arrays = new Set(arrayFlags.map(kebab));
  for (const [k, v] of Object.entries(argv)) {
    // '--': the words after `--` (slurm passes them on to the jobs' command).
    if (k === '_' || k === '$0' || k === '--' || !Array.isArray(v)) continue;
    const flag = kebab(k);
    if (arrays.has(flag)) continue;
    throw new SpdfqError('E_CONFIG', `--${flag}: given more than once (${v.map((x) => JSON.stringify(x)).join(', ')}); expected one value`);
  }
}

/** A flag that, when given, must be an integer ≥ min. */
export function intFlag(flag: string, v: number | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new SpdfqError('E_CONFIG', `--${flag}: expected an integer ≥ ${min}, received ${Number.isNaN(v) ? 'something that is not a number' : String(v)}`);
  }
  return v;
}
