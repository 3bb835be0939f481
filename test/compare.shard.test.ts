// `compare --shard i/n`: the table's cells dealt over n processes, each shard's results
// merged by `compare --merge` into the table one process computes; finished cells are not
// recomputed when a shard runs again; the shard index comes from Slurm's or Kubernetes'
// environment where the flag is not given.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { cli } from './helpers/cli';
import { cellName, shardCells, tableCells } from '../lib/compare/cells';
import { parseShard, resolveShard, shardFromEnv, shardRange } from '../lib/shard';
import { writeTinyTable } from '../scripts/fixtures/tiny-table';

describe('shards from flags and schedulers', () => {
  test('--shard i/n, and the refusals', () => {
    expect(parseShard('--shard', '2/5')).toEqual({ index: 2, count: 5 });
    expect(() => parseShard('--shard', '5/5')).toThrow(/expected a shard index in \[0, 5\), received 5/);
    expect(() => parseShard('--shard', '1-3')).toThrow(/expected i\/n/);
    expect(resolveShard('none', { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '3' })).toBeNull();
    expect(resolveShard(undefined, {})).toBeNull();
  });

  test('Slurm: the index counts from the array\'s first task id, in its steps', () => {
    expect(shardFromEnv({ SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_COUNT: '3', SLURM_ARRAY_TASK_MIN: '0' })).toEqual({ index: 0, count: 3 });
    // --array=1-3
    expect(shardFromEnv({ SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_COUNT: '3', SLURM_ARRAY_TASK_MIN: '1' })).toEqual({ index: 2, count: 3 });
    // --array=10-14:2 (tasks 10, 12, 14)
    expect(shardFromEnv({ SLURM_ARRAY_TASK_ID: '12', SLURM_ARRAY_TASK_COUNT: '3', SLURM_ARRAY_TASK_MIN: '10', SLURM_ARRAY_TASK_STEP: '2' })).toEqual({ index: 1, count: 3 });
    expect(() => shardFromEnv({ SLURM_ARRAY_TASK_ID: '8', SLURM_ARRAY_TASK_COUNT: '3', SLURM_ARRAY_TASK_MIN: '5' })).toThrow(/expected a shard index in \[0, 3\), received 3/);
    expect(() => shardFromEnv({ SLURM_ARRAY_TASK_ID: '11', SLURM_ARRAY_TASK_COUNT: '3', SLURM_ARRAY_TASK_MIN: '10', SLURM_ARRAY_TASK_STEP: '2' })).toThrow(/not on the array's grid/);
    expect(() => shardFromEnv({ SLURM_ARRAY_TASK_ID: '1' })).toThrow(/SLURM_ARRAY_TASK_COUNT is not/);
  });

  test('Kubernetes Indexed Jobs: JOB_COMPLETION_INDEX of --shards or $SPDFQ_SHARDS', () => {
    expect(shardFromEnv({ JOB_COMPLETION_INDEX: '2' }, 4)).toEqual({ index: 2, count: 4 });
    expect(shardFromEnv({ JOB_COMPLETION_INDEX: '0', SPDFQ_SHARDS: '2' })).toEqual({ index: 0, count: 2 });
    expect(() => shardFromEnv({ JOB_COMPLETION_INDEX: '0' })).toThrow(/pass --shards <completions> or set \$SPDFQ_SHARDS/);
    expect(() => shardFromEnv({ JOB_COMPLETION_INDEX: '4' }, 4)).toThrow(/received 4/);
  });

  test('image ranges cover the batch once, sizes within one; cells are dealt round-robin', () => {
    const ranges = [0, 1, 2].map((index) => shardRange(7, { index, count: 3 }));
    expect(ranges).toEqual([{ begin: 0, end: 2 }, { begin: 2, end: 4 }, { begin: 4, end: 7 }]);
    const o = { methods: ['noise', 'spdfq'] as const, seeds: [0, 1], ablation: true, ablationVariants: ['none' as const] };
    const all = tableCells({ ...o, methods: [...o.methods] }).map(cellName);
    expect(all).toEqual(['noise-seed0', 'noise-seed1', 'spdfq-seed0', 'spdfq-seed1', 'ablation-none-seed0', 'ablation-none-seed1']);
    const dealt = [0, 1, 2].map((index) => shardCells({ ...o, methods: [...o.methods], shard: { index, count: 3 } }).map(cellName));
    expect(dealt).toEqual([['noise-seed0', 'spdfq-seed1'], ['noise-seed1', 'ablation-none-seed0'], ['spdfq-seed0', 'ablation-none-seed1']]);
  });
});


describe('a table split over shards', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'spdfq-cshard-'));
  const data = writeTinyTable(path.join(root, 'data'));
  // 3 methods × 2 seeds + 2 ablation variants × 2 seeds: 10 cells.
  const tableOf = (methods: string, variants: string) => [...data, '--methods', methods, '--bits', 'w8a8,w4a4', '--seeds', '2', '--images', '4', '--iters', '3',
    '--recon-iters', '0', '--ablation-variants', variants, '--threads', '1', '--eval-limit', '24'];
  const table = tableOf('noise,inversion,spdfq', 'none,APA');
  const json = (p: string) => JSON.parse(fs.readFileSync(p, 'utf8'));

  test('three shards merged give the single-process table; a shard run again recomputes nothing', async () => {
    expect((await cli(['compare', ...table, '--out', path.join(root, 'one')])).code).toBe(0);
    const out = path.join(root, 'split');
    for (let i = 0; i < 3; i++) {
      const r = await cli(['compare', ...table, '--shard', `${i}/3`, '--out', out]);
      expect(r.stderr).toContain(`shard ${i}/3: cells `);
      expect(r.code).toBe(0);
    }
    expect(fs.readdirSync(path.join(out, 'cells'))).toHaveLength(10);
    expect((await cli(['compare', '--merge', ...[2, 0, 1].map((i) => path.join(out, 'shards', `${i}-of-3`)), '--out', out])).code).toBe(0);
    const one = json(path.join(root, 'one', 'results.json'));
    const merged = json(path.join(out, 'results.json'));
    for (const k of ['fpTop1', 'cells', 'cellSeeds', 'ablation', 'ablationSeeds', 'quality', 'qualitySeeds']) expect(merged.result[k]).toEqual(one.result[k]);
    expect(fs.readFileSync(path.join(out, 'results.md'), 'utf8')).toBe(fs.readFileSync(path.join(root, 'one', 'results.md'), 'utf8'));

    // Resubmitted (a time limit, a preemption): every cell of the shard is read back.
    const again = await cli(['compare', ...table, '--shard', '1/3', '--out', out]);
    expect(again.code).toBe(0);
    expect(again.stderr.match(/finished earlier/g)).toHaveLength(3);
    expect(again.stderr).not.toMatch(/seed \d w8a8: /);
    // The same folder with another protocol: its finished cells are refused, not mixed in.
    const other = await cli(['compare', ...table.map((x) => (x === '3' ? '2' : x)), '--shard', '1/3', '--out', out]);
    expect(other.code).not.toBe(0);
    expect(other.stderr).toMatch(/was measured on another model, evaluation set or protocol/);
  }, 300_000);

  test('the shard index defaults to the Slurm array task\'s; merge refuses missing and duplicate shards', async () => {
    const out = path.join(root, 'slurm');
    const saved = { ...process.env };
    try {
      Object.assign(process.env, { SLURM_ARRAY_TASK_ID: '5', SLURM_ARRAY_TASK_MIN: '4', SLURM_ARRAY_TASK_COUNT: '4' });
      const r = await cli(['compare', ...tableOf('noise', 'none'), '--out', out]);
      expect(r.stderr).toContain('shard 1/4: cells noise-seed1');
      expect(r.code).toBe(0);
    } finally {
      for (const k of ['SLURM_ARRAY_TASK_ID', 'SLURM_ARRAY_TASK_MIN', 'SLURM_ARRAY_TASK_COUNT']) if (saved[k] === undefined) delete process.env[k];
    }
    const s1 = path.join(out, 'shards', '1-of-4');
    const missing = await cli(['compare', '--merge', s1, '--out', path.join(root, 'm')]);
    expect(missing.stderr).toMatch(/missing shards 0\/4, 2\/4, 3\/4/);
    const twice = await cli(['compare', '--merge', s1, s1, '--out', path.join(root, 'm')]);
    expect(twice.stderr).toMatch(/shard 1\/4 given twice/);
  }, 300_000);
});
