// One process's share of a job split over n processes (`--shard i/n`): a Slurm job-array
// task or a Kubernetes Indexed Job pod. Both schedulers number their tasks in the
// environment, so the same command line runs in every task and each finds its own index.

import { SpdfqError } from './errors';

export interface Shard {
  /** 0-based, < count. */
  index: number;
  count: number;
}

function shardInts(what: string, index: number, count: number): Shard {
  if (!Number.isInteger(count) || count < 1) throw new SpdfqError('E_CONFIG', `${what}: expected a shard count ≥ 1, received ${count}`);
  if (!Number.isInteger(index) || index < 0 || index >= count) throw new SpdfqError('E_CONFIG', `${what}: expected a shard index in [0, ${count}), received ${index}`);
  return { index, count };
}

/** `i/n` as a Shard. */
export function parseShard(flag: string, raw: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(raw);
  if (!m) throw new SpdfqError('E_CONFIG', `${flag}: expected i/n (shard i of n, 0-based), received '${raw}'`);
  return shardInts(flag, Number(m[1]), Number(m[2]));
}

const envInt = (env: NodeJS.ProcessEnv, name: string): number | undefined => {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new SpdfqError('E_CONFIG', `$${name}: expected an integer, found '${v}'`);
  return n;
};

/** The shard the scheduler gave this process, or null outside an array job.
 *  Slurm: task ids need not start at 0 (`--array=1-8`) nor be consecutive (`--array=0-14:2`),
 *  so the index is (SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP of
 *  SLURM_ARRAY_TASK_COUNT tasks. Kubernetes: JOB_COMPLETION_INDEX (0-based) of `count`
 *  (Indexed Jobs do not export their completions: the --shards flag or SPDFQ_SHARDS). */
export function shardFromEnv(env: NodeJS.ProcessEnv, count?: number): Shard | null {
  const id = envInt(env, 'SLURM_ARRAY_TASK_ID');
  if (id !== undefined) {
    const n = envInt(env, 'SLURM_ARRAY_TASK_COUNT');
    if (n === undefined) throw new SpdfqError('E_CONFIG', '$SLURM_ARRAY_TASK_ID is set but $SLURM_ARRAY_TASK_COUNT is not: expected both (Slurm ≥ 17.02 exports them in array jobs)');
    const min = envInt(env, 'SLURM_ARRAY_TASK_MIN') ?? 0;
    const step = envInt(env, 'SLURM_ARRAY_TASK_STEP') ?? 1;
    if ((id - min) % step !== 0) throw new SpdfqError('E_CONFIG', `Slurm array task ${id} is not on the array's grid (min ${min}, step ${step})`);
    return shardInts(`Slurm array task ${id} (min ${min}, step ${step}, count ${n})`, (id - min) / step, n);
  }
  const k = envInt(env, 'JOB_COMPLETION_INDEX');
  if (k !== undefined) {
    const n = count ?? envInt(env, 'SPDFQ_SHARDS');
    if (n === undefined) throw new SpdfqError('E_CONFIG', '$JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job) but not the number of shards: pass --shards <completions> or set $SPDFQ_SHARDS');
    return shardInts(`Kubernetes completion index ${k} of ${n}`, k, n);
  }
  return null;
}

/** --shard when given (`none` for the whole job even inside an array job), else the
 *  scheduler's; null for the whole job. */
export function resolveShard(flag: string | undefined, env: NodeJS.ProcessEnv, count?: number): Shard | null {
  if (flag === 'none') return null;
  if (flag !== undefined) return parseShard('--shard', flag);
  return shardFromEnv(env, count);
}

/** The contiguous items [begin, end) of `total` that shard i of n takes (sizes differ by
 *  at most one). */
export function shardRange(total: number, s: Shard): { begin: number; end: number } {
  const at = (i: number) => Math.floor((i * total) / s.count);
  return { begin: at(s.index), end: at(s.index + 1) };
}

/** Whether work item k (of a fixed, ordered list) is this shard's: items dealt round-robin,
 *  so a table's expensive rows spread over the shards instead of landing on one. */
export function dealtTo(k: number, s: Shard): boolean {
  return k % s.count === s.index;
}
