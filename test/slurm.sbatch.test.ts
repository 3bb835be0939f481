// `spdfq-native slurm compare`: the job-array script, the dependent merge job and the
// submit script, checked as text (test:slurm runs them on a real single-node cluster).

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { main } from '../lib/cli/main';
import { arrayScript, mergeScript, SbatchOptions, shellWord, submitScript } from '../lib/compare/sbatch';

const base: SbatchOptions = {
  tasks: 4, out: '/scratch/t1', compareArgs: ['--methods', 'spdfq,psaq', '--seeds', '3', '--synth-option', 'apa.loss=kl'],
  cwd: '/home/u/work', node: '/usr/bin/node', cli: '/opt/spdfq/bin/spdfq-native.js', device: 'cpu',
};

test('the array: one task per shard, resources, threads from the CPUs Slurm gives, the shared --out', () => {
  const s = arrayScript({ ...base, time: '04:00:00', mem: '16G', partition: 'gpu', cpusPerTask: 8, maxRunning: 2 });
  const lines = s.split('\n');
  expect(lines[0]).toBe('#!/bin/bash');
  expect(lines).toEqual(expect.arrayContaining([
    '#SBATCH --array=0-3%2', '#SBATCH --time=04:00:00', '#SBATCH --mem=16G', '#SBATCH --partition=gpu', '#SBATCH --cpus-per-task=8',
    '#SBATCH --chdir=/home/u/work', '#SBATCH --output=/scratch/t1/slurm/logs/spdfq-compare-%A_%a.log',
  ]));
  // No GPU asked for; the task's shard comes from its environment, not the script.
  expect(s).not.toMatch(/--gpus|--device|--shard/);
  expect(lines.at(-2)).toBe('exec /usr/bin/node /opt/spdfq/bin/spdfq-native.js compare --methods spdfq,psaq --seeds 3 --synth-option apa.loss=kl --threads "${SLURM_CPUS_PER_TASK:-1}" --out /scratch/t1');
});

test('--device cuda: one GPU per task, which the task sees as cuda:0; given --threads is kept', () => {
  const s = arrayScript({ ...base, device: 'cuda', compareArgs: ['--threads', '2'] });
  expect(s).toContain('#SBATCH --gpus=1\n');
  expect(s).toMatch(/compare --threads 2 --device cuda:0 --out \/scratch\/t1\n/);
  expect(arrayScript({ ...base, device: 'cuda', gpus: 2 })).toContain('#SBATCH --gpus=2\n');
});

test('the merge job takes the shards of this array only; submit chains it with afterok', () => {
  const m = mergeScript({ ...base, time: '00:30:00', cpusPerTask: 8, device: 'cuda' });
  expect(m).toContain('#SBATCH --time=00:30:00');
  expect(m).not.toMatch(/--gpus|--cpus-per-task/);
  expect(m).toMatch(/compare --merge \/scratch\/t1\/shards\/\*-of-4 --out \/scratch\/t1\n/);
  const sub = submitScript(base);
  expect(sub).toContain("array=$(sbatch --parsable /scratch/t1/slurm/compare.sbatch)");
  expect(sub).toContain('merge=$(sbatch --parsable --dependency=afterok:$array /scratch/t1/slurm/merge.sbatch)');
});

test('words with spaces or quotes are quoted for bash', () => {
  expect(shellWord('a b')).toBe("'a b'");
  expect(shellWord("it's")).toBe("'it'\\''s'");
  expect(shellWord('--lr=0.1')).toBe('--lr=0.1');
});

test('the command writes the three files, and refuses compare flags the jobs set', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'spdfq-slurm-'));
  const stdout = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  let stderr = '';
  const err = jest.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((stderr += c.toString()), true));
  try {
    expect(await main(['slurm', 'compare', '--tasks', '3', '--out', out, '--time', '1:00:00', '--', '--methods', 'noise', '--seeds', '2'])).toBe(0);
    expect(await main(['slurm', 'compare', '--tasks', '3', '--out', out, '--', '--shard', '0/3'])).toBe(1);
  } finally {
    stdout.mockRestore();
    err.mockRestore();
  }
  expect(stderr).toMatch(/--shard is set by the generated jobs/);
  const dir = path.join(out, 'slurm');
  expect(fs.readdirSync(dir).sort()).toEqual(['compare.sbatch', 'logs', 'merge.sbatch', 'submit.sh']);
  const array = fs.readFileSync(path.join(dir, 'compare.sbatch'), 'utf8');
  expect(array).toContain('#SBATCH --array=0-2\n');
  expect(array).toMatch(/bin\/spdfq-native\.js compare --methods noise --seeds 2 --threads/);
  expect(fs.existsSync(array.match(/ (\S+spdfq-native\.js) /)![1])).toBe(true);
  expect(fs.statSync(path.join(dir, 'submit.sh')).mode & 0o111).not.toBe(0);
});
