// `spdfq-native slurm compare --tasks N --out OUT [resources] [--submit] -- <compare options>`:
// writes OUT/slurm/{compare.sbatch, merge.sbatch, submit.sh} (lib/compare/sbatch.ts) and,
// with --submit, submits them.

import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { Argv, CommandModule } from 'yargs';
import { SpdfqError } from '../../errors';
import { makeDir, writeFileAtomic } from '../../io/atomic';
import { arrayScript, mergeScript, SbatchOptions, submitScript } from '../../compare/sbatch';
import { intFlag } from '../flags';

interface SlurmArgs {
  job: string;
  tasks: number;
  out: string;
  device: string;
  time?: string;
  mem?: string;
  partition?: string;
  gpus?: number;
  'cpus-per-task'?: number;
  'max-running'?: number;
  'job-name'?: string;
  submit: boolean;
  '--'?: string[];
  _: (string | number)[];
}

/** This package's bin/spdfq-native.js (from lib/… in a checkout or dist/lib/… when built). */
function launcher(): string {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const bin = path.join(dir, 'bin', 'spdfq-native.js');
    if (fs.existsSync(bin)) return bin;
  }
  throw new SpdfqError('E_IO', `slurm: cannot find bin/spdfq-native.js above ${__dirname}`);
}

/** compare options that the generated jobs set themselves. */
const OWN_FLAGS = ['--out', '--shard', '--shards', '--merge', '--sweep', '--device'];

export const slurmCommand: CommandModule<object, SlurmArgs> = {
  command: 'slurm <job>',
  describe: 'Write (and with --submit, submit) a Slurm job array for a compare table and its dependent merge job; compare options follow --',
  builder: (y: Argv) =>
    y
      .positional('job', { type: 'string', choices: ['compare'], describe: 'the command to spread over the array' })
      .option('tasks', { type: 'number', demandOption: true, describe: 'array tasks (shards of the table)' })
      .option('out', { type: 'string', demandOption: true, describe: "compare's output folder; the scripts go to OUT/slurm" })
      .option('device', { choices: ['cpu', 'cuda'], default: 'cpu', describe: "cuda: each task synthesizes on the GPU Slurm gives it (seen as cuda:0); requests --gpus (default 1)" })
      .option('time', { type: 'string', describe: 'time limit per task (sbatch --time, e.g. 04:00:00)' })
      .option('mem', { type: 'string', describe: 'memory per task (sbatch --mem, e.g. 16G)' })
      .option('partition', { type: 'string', describe: 'sbatch --partition' })
      .option('gpus', { type: 'number', describe: 'GPUs per task (sbatch --gpus)' })
      .option('cpus-per-task', { type: 'number', describe: 'CPUs per task (sbatch --cpus-per-task; compare --threads follows it)' })
      .option('max-running', { type: 'number', describe: 'tasks running at once (the array\'s %N)' })
      .option('job-name', { type: 'string', describe: 'job name (default spdfq-compare)' })
      .option('submit', { type: 'boolean', default: false, describe: 'submit with sbatch after writing' })
      .parserConfiguration({ 'populate--': true }) as unknown as Argv<SlurmArgs>,
  handler: (a) => {
    intFlag('tasks', a.tasks, 1);
    intFlag('gpus', a.gpus, 0);
    intFlag('cpus-per-task', a['cpus-per-task'], 1);
    intFlag('max-running', a['max-running'], 1);
    const compareArgs = (a['--'] ?? []).map(String);
    const own = compareArgs.find((w) => OWN_FLAGS.includes(w.split('=')[0]));
    if (own) throw new SpdfqError('E_CONFIG', `slurm compare: ${own.split('=')[0]} is set by the generated jobs (each task's shard, the merge, --out and --device are options of slurm compare itself): remove it after --`);
    const out = path.resolve(a.out);
    const o: SbatchOptions = {
      tasks: a.tasks, out, compareArgs, cwd: process.cwd(), node: process.execPath, cli: launcher(),
      device: a.device as 'cpu' | 'cuda', time: a.time, mem: a.mem, partition: a.partition, gpus: a.gpus, cpusPerTask: a['cpus-per-task'], maxRunning: a['max-running'], jobName: a['job-name'],
    };
    const dir = path.join(out, 'slurm');
    makeDir(path.join(dir, 'logs'));
    writeFileAtomic(path.join(dir, 'compare.sbatch'), arrayScript(o));
    writeFileAtomic(path.join(dir, 'merge.sbatch'), mergeScript(o));
    writeFileAtomic(path.join(dir, 'submit.sh'), submitScript(o));
    fs.chmodSync(path.join(dir, 'submit.sh'), 0o755);
    process.stdout.write(`wrote ${dir}/compare.sbatch (${a.tasks} tasks), merge.sbatch and submit.sh\n`);
    if (a.submit) process.stdout.write(execFileSync('bash', [path.join(dir, 'submit.sh')], { encoding: 'utf8' }));
  },
};
