// `spdfq-native slurm compare`: a comparison table as a Slurm job array (one task per
// shard, `compare --shard` reading its index from SLURM_ARRAY_TASK_ID) and a merge job that
// runs when every task has succeeded (sbatch --dependency=afterok on the array). The text is
// generated here and only written and submitted by the command, so tests check it as text.

export interface SbatchOptions {
  /** Array tasks (shards of the table). */
  tasks: number;
  /** compare's --out: the shards' results, the finished cells and the merged table. */
  out: string;
  /** compare's other options, passed through. */
  compareArgs: string[];
  /** Where the jobs run (relative paths in compareArgs are relative to it). */
  cwd: string;
  /** The node binary and the spdfq-native launcher, as absolute paths. */
  node: string;
  cli: string;
  /** Synthesis on the task's GPU ('cuda') or the CPU. */
  device: 'cpu' | 'cuda';
  time?: string;
  mem?: string;
  partition?: string;
  /** GPUs per task (default 1 with --device cuda). */
  gpus?: number;
  cpusPerTask?: number;
  /** Tasks running at once (the array's %N). */
  maxRunning?: number;
  jobName?: string;
}

/** A word for bash: single-quoted unless it is plainly safe. */
export function shellWord(w: string): string {
  return /^[A-Za-z0-9_./:=,+@%-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

function resources(o: SbatchOptions): string[] {
  const gpus = o.gpus ?? (o.device === 'cuda' ? 1 : 0);
  return [
    ...(o.partition ? [`#SBATCH --partition=${o.partition}`] : []),
    ...(o.time ? [`#SBATCH --time=${o.time}`] : []),
    ...(o.mem ? [`#SBATCH --mem=${o.mem}`] : []),
    ...(o.cpusPerTask ? [`#SBATCH --cpus-per-task=${o.cpusPerTask}`] : []),
    ...(gpus > 0 ? [`#SBATCH --gpus=${gpus}`] : []),
  ];
}

/** The array job: task i computes shard i of the table. */
export function arrayScript(o: SbatchOptions): string {
  const name = o.jobName ?? 'spdfq-compare';
  const args = [...o.compareArgs];
  if (!args.includes('--threads')) args.push('--threads', '${SLURM_CPUS_PER_TASK:-1}');
  // Slurm exports CUDA_VISIBLE_DEVICES with only the GPU it gave the task, which the task
  // then sees as device 0.
  if (o.device === 'cuda') args.push('--device', 'cuda:0');
  const words = args.map((w) => (w === '${SLURM_CPUS_PER_TASK:-1}' ? `"${w}"` : shellWord(w)));
  return [
    '#!/bin/bash',
    `#SBATCH --job-name=${name}`,
    `#SBATCH --array=0-${o.tasks - 1}${o.maxRunning ? `%${o.maxRunning}` : ''}`,
    ...resources(o),
    `#SBATCH --chdir=${o.cwd}`,
    `#SBATCH --output=${o.out}/slurm/logs/${name}-%A_%a.log`,
    '# Written by `spdfq-native slurm compare` (docs/scale-out.md). Each task takes its shard',
    '# from SLURM_ARRAY_TASK_ID; cells finished by an earlier submission are read from',
    `# ${o.out}/cells, so resubmitting this array recomputes only what is missing.`,
    'set -euo pipefail',
    `exec ${shellWord(o.node)} ${shellWord(o.cli)} compare ${words.join(' ')} --out ${shellWord(o.out)}`,
    '',
  ].join('\n');
}

/** The merge job: the shards' results.json files into one table in --out. */
export function mergeScript(o: SbatchOptions): string {
  const name = `${o.jobName ?? 'spdfq-compare'}-merge`;
  return [
    '#!/bin/bash',
    `#SBATCH --job-name=${name}`,
    ...resources({ ...o, gpus: 0, device: 'cpu', cpusPerTask: undefined }),
    `#SBATCH --chdir=${o.cwd}`,
    `#SBATCH --output=${o.out}/slurm/logs/${name}-%j.log`,
    '# Runs after every task of the array succeeded (submit.sh: --dependency=afterok).',
    'set -euo pipefail',
    `exec ${shellWord(o.node)} ${shellWord(o.cli)} compare --merge ${shellWord(o.out)}/shards/*-of-${o.tasks} --out ${shellWord(o.out)}`,
    '',
  ].join('\n');
}

/** Submits the array, then the merge job depending on it; prints both job ids. */
export function submitScript(o: SbatchOptions): string {
  const dir = `${o.out}/slurm`;
  return [
    '#!/bin/bash',
    '# Submits the comparison array and its merge job (docs/scale-out.md). Run it again after',
    '# a failure or a time limit: finished cells are not recomputed.',
    'set -euo pipefail',
    `array=$(sbatch --parsable ${shellWord(`${dir}/compare.sbatch`)})`,
    // --parsable prints "jobid[;cluster]".
    'array=${array%%;*}',
    `merge=$(sbatch --parsable --dependency=afterok:$array ${shellWord(`${dir}/merge.sbatch`)})`,
    'merge=${merge%%;*}',
    'echo "array job $array (' + o.tasks + ' tasks), merge job $merge"',
    '',
  ].join('\n');
}
