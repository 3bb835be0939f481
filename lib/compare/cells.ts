// The cells of a comparison table, the unit `compare --shard i/n` deals over processes and
// resumes by: one method at one seed (its images, their image statistics, and every bit
// width quantized from them; the images are made once per cell), or one ablation variant
// at one seed. Dealt round-robin in table order so that each shard gets a mix of cheap
// (noise, real) and expensive (synthesized) cells.

import { SpdfqError } from '../errors';
import { dealtTo, Shard } from '../shard';
import type { SynthMethod } from '../synth/options';
import { ABLATION, AblationName } from './ablation';

export type TableCell = { kind: 'row'; method: SynthMethod; seed: number } | { kind: 'ablation'; variant: AblationName; seed: number };

/** The options that set a table's cells (CompareOptions' fields; compare.ts imports this file). */
interface TableOptions {
  methods: SynthMethod[];
  seeds: number[];
  ablation: boolean;
  ablationVariants?: AblationName[];
}

/** The seeds at which a result measured each entry (CompareResult's fields). */
interface MeasuredSeeds {
  cellSeeds?: Record<string, Record<string, number[]>>;
  ablationSeeds?: Record<string, number[]>;
}

/** Every cell of the table, in table order (rows, then the ablation). */
export function tableCells(o: TableOptions): TableCell[] {
  const rows = o.methods.flatMap((method) => o.seeds.map((seed): TableCell => ({ kind: 'row', method, seed })));
  const variants = o.ablation ? ABLATION.filter((v) => !o.ablationVariants || o.ablationVariants.includes(v.name)) : [];
  return [...rows, ...variants.flatMap((v) => o.seeds.map((seed): TableCell => ({ kind: 'ablation', variant: v.name, seed })))];
}

/** The cells a shard computes (all of them without a shard). */
export function shardCells(o: TableOptions & { shard?: Shard }): TableCell[] {
  return tableCells(o).filter((_, k) => !o.shard || dealtTo(k, o.shard));
}

/** A file-name-safe name of a cell: `spdfq-seed0`, `ablation-APA+MSR-seed1`. */
export function cellName(c: TableCell): string {
  return c.kind === 'row' ? `${c.method}-seed${c.seed}` : `ablation-${c.variant}-seed${c.seed}`;
}

/** Whether a result holds a cell (every bit width of a row). */
function holds(r: MeasuredSeeds, bits: string[], c: TableCell): boolean {
  if (c.kind === 'ablation') return (r.ablationSeeds?.[c.variant] ?? []).includes(c.seed);
  return bits.every((b) => (r.cellSeeds?.[c.method]?.[b] ?? []).includes(c.seed));
}

type ShardRecord = { source: string; record: { options: TableOptions & { bits: string[]; shard?: Shard }; result: MeasuredSeeds } };

/** `compare --merge` of shards: the shards of each table (same cells, same count) must all
 *  be there, once each, and each must hold every cell dealt to it. */
export function checkShardSets(inputs: ShardRecord[]): void {
  const tables = new Map<string, ShardRecord[]>();
  for (const x of inputs) {
    const o = x.record.options;
    if (!o.shard) continue;
    const key = JSON.stringify({ methods: o.methods, bits: o.bits, seeds: o.seeds, ablation: o.ablation, variants: o.ablationVariants ?? null, count: o.shard.count });
    tables.set(key, [...(tables.get(key) ?? []), x]);
  }
  for (const group of tables.values()) {
    const n = group[0].record.options.shard!.count;
    const seen = new Map<number, string>();
    for (const { source, record } of group) {
      const i = record.options.shard!.index;
      if (seen.has(i)) throw new SpdfqError('E_CONFIG', `compare --merge: shard ${i}/${n} given twice (${seen.get(i)} and ${source})`);
      seen.set(i, source);
      const lacking = shardCells(record.options).filter((c) => !holds(record.result, record.options.bits, c));
      if (lacking.length) throw new SpdfqError('E_CONFIG', `compare --merge: ${source} (shard ${i}/${n}) lacks its cell${lacking.length > 1 ? 's' : ''} ${lacking.map(cellName).join(', ')}`);
    }
    const missing = Array.from({ length: n }, (_, i) => i).filter((i) => !seen.has(i));
    if (missing.length) {
      throw new SpdfqError('E_CONFIG', `compare --merge: missing shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i}/${n}`).join(', ')} of ${group[0].source}'s table (${n} shards)`);
    }
  }
}
