// `compare --merge`: one table from several `compare` runs. A comparison is run as one
// process per row (and `--first-seed` adds seeds to a row later) because each row takes
// hours on a small machine; merging their results.json files, instead of copying numbers
// by hand, keeps the published table reproducible from the commands that made it.
//
// Runs merge only when they measured the same thing: the same model and evaluation set
// (equal full-precision top-1) and the same protocol (calibration images, iterations,
// reconstruction, synthesis overrides, preprocessing). Each cell keeps one value per seed;
// a seed measured twice must agree (runs are deterministic per seed), otherwise the runs
// were made with different code and the merge refuses. The shards of one table
// (`compare --shard i/n`) must all be there, once each, with every cell dealt to them.

import { SpdfqError } from '../errors';
import { BITS_PRESETS, BitsPreset, LEGACY_QUANTIZER_FORMS } from '../quant/quant-config';
import { SynthMethod } from '../synth/options';
import type { CompareOptions, CompareResult, ImageQuality } from './compare';
import { ABLATION_NAMES } from './ablation';
import { PROTOCOL_KEYS, protocolValue } from './protocol';
import { checkShardSets } from './cells';

export { PROTOCOL_KEYS, protocolValue } from './protocol';

/** A results.json written by `compare` (options without the callbacks). */
export interface CompareRecord {
  options: Omit<CompareOptions, 'log' | 'signal'>;
  result: CompareResult;
}

/** Row order of the paper's table (and of `compare`'s default --methods). */
const ROW_ORDER: readonly SynthMethod[] = ['noise', 'inversion', 'psaq', 'spdfq', 'real'];

/** Seeds at which a run measured each entry: the explicit lists of newer runs, else the run's seed list. */
function seedsOf(explicit: number[] | undefined, record: CompareRecord): number[] {
  return explicit ?? record.options.seeds;
}

/** value per seed, refusing a seed measured twice with different results. */
class PerSeed<T> {
  private readonly bySeed = new Map<number, { value: T; source: string }>();

  constructor(private readonly what: string, private readonly same: (a: T, b: T) => boolean) {}

  add(seed: number, value: T, source: string): void {
    const prev = this.bySeed.get(seed);
    if (prev && !this.same(prev.value, value)) {
      throw new SpdfqError('E_CONFIG', `compare --merge: ${this.what} at seed ${seed} differs between ${prev.source} and ${source} (${JSON.stringify(prev.value)} vs ${JSON.stringify(value)}); runs of one seed are deterministic, so these were made with different code or options`);
    }
    if (!prev) this.bySeed.set(seed, { value, source });
  }

  /** Seeds in increasing order and their values. */
  entries(): { seeds: number[]; values: T[] } {
    const seeds = [...this.bySeed.keys()].sort((a, b) => a - b);
    return { seeds, values: seeds.map((s) => this.bySeed.get(s)!.value) };
  }
}

const sameNumber = (a: number, b: number) => a === b || Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a));
const sameQuality = (a: ImageQuality, b: ImageQuality) =>
  (['featureCosine', 'frechet', 'clsAttentionEntropy', 'rangeError'] as const).every((k) => {
    // Absent (null: a Swin's attention entropy) and undefined (NaN, stored as null) match only each other.
    const x = a[k] ?? NaN;
    const y = b[k] ?? NaN;
    return (Number.isNaN(x) && Number.isNaN(y)) || Math.abs(x - y) <= 1e-6 * Math.max(1, Math.abs(x));
  });

function ordered<T extends string>(items: Iterable<string>, canonical: readonly T[]): T[] {
  const set = new Set(items);
  return [...canonical.filter((c) => set.has(c)), ...[...set].filter((s) => !(canonical as readonly string[]).includes(s)).sort()] as T[];
}

/** Merges compare records (with the file each came from, for messages) into one record. */
export function mergeCompareRecords(inputs: { source: string; record: CompareRecord }[]): CompareRecord {
  if (inputs.length === 0) throw new SpdfqError('E_CONFIG', 'compare --merge: expected at least one results.json, received none');
  const first = inputs[0];
  checkShardSets(inputs);
  for (const { source, record } of inputs.slice(1)) {
    if (!sameNumber(record.result.fpTop1, first.record.result.fpTop1)) {
      throw new SpdfqError('E_CONFIG', `compare --merge: ${source} has full-precision top-1 ${record.result.fpTop1}, ${first.source} has ${first.record.result.fpTop1}: expected runs on the same model and evaluation images`);
    }
    for (const k of PROTOCOL_KEYS) {
      const a = protocolValue(first.record, k);
      const b = protocolValue(record, k);
      if (a !== b) throw new SpdfqError('E_CONFIG', `compare --merge: option ${k} is ${b} in ${source} but ${a} in ${first.source}: expected runs with the same protocol`);
    }
  }
  // The same bit width must have been quantized with the same forms in every run.
  const forms = new Map<string, { forms: string; source: string }>();
  for (const { source, record } of inputs) {
    const bitsUsed = new Set([...Object.values(record.result.cells).flatMap((c) => Object.keys(c)), ...(Object.keys(record.result.ablation).length ? [record.options.ablationBits] : [])]);
    for (const b of bitsUsed) {
      const f = record.options.quantizerForms?.[b] ?? LEGACY_QUANTIZER_FORMS;
      const prev = forms.get(b);
      if (prev && prev.forms !== f) throw new SpdfqError('E_CONFIG', `compare --merge: ${b} was quantized with ${f} in ${source} but ${prev.forms} in ${prev.source}: expected runs with the same quantizers`);
      if (!prev) forms.set(b, { forms: f, source });
    }
  }

  const cells = new Map<string, PerSeed<number>>();
  const quality = new Map<string, PerSeed<ImageQuality>>();
  const ablation = new Map<string, PerSeed<number>>();
  const methods: string[] = [];
  const bits: string[] = [];
  let seconds = 0;
  for (const { source, record } of inputs) {
    const r = record.result;
    seconds += r.seconds;
    // One table entry's values from this run, each with the seed it was measured at.
    const collect = <T>(into: Map<string, PerSeed<T>>, key: string, what: string, same: (a: T, b: T) => boolean, values: T[], seeds: number[] | undefined) => {
      const entry = into.get(key) ?? new PerSeed<T>(what, same);
      const at = seedsOf(seeds, record);
      values.forEach((v, i) => entry.add(at[i], v, source));
      into.set(key, entry);
    };
    for (const [m, byBits] of Object.entries(r.cells)) {
      methods.push(m);
      for (const [b, values] of Object.entries(byBits)) {
        bits.push(b);
        collect(cells, `${m}\u0000${b}`, `${m} ${b} top-1`, sameNumber, values, r.cellSeeds?.[m]?.[b]);
      }
    }
    for (const [m, qs] of Object.entries(r.quality)) collect(quality, m, `${m} image quality`, sameQuality, qs, r.qualitySeeds?.[m]);
    for (const [name, values] of Object.entries(r.ablation)) collect(ablation, name, `ablation ${name} top-1`, sameNumber, values, r.ablationSeeds?.[name]);
  }

  const result: CompareResult = {
    fpTop1: first.record.result.fpTop1,
    cells: {},
    cellSeeds: {},
    ablation: {},
    ablationSeeds: {},
    quality: {},
    qualitySeeds: {},
    realQualityReference: first.record.result.realQualityReference,
    seconds,
  };
  const allSeeds = new Set<number>();
  for (const [key, cell] of cells) {
    const [m, b] = key.split('\u0000');
    const { seeds, values } = cell.entries();
    (result.cells[m] ??= {})[b] = values;
    (result.cellSeeds![m] ??= {})[b] = seeds;
    seeds.forEach((s) => allSeeds.add(s));
  }
  for (const [m, q] of quality) {
    const { seeds, values } = q.entries();
    result.quality[m] = values;
    result.qualitySeeds![m] = seeds;
  }
  // Variants split over runs come back in the paper's table order, not the order of the runs.
  for (const name of ordered(ablation.keys(), ABLATION_NAMES)) {
    const { seeds, values } = ablation.get(name)!.entries();
    result.ablation[name] = values;
    result.ablationSeeds![name] = seeds;
    seeds.forEach((s) => allSeeds.add(s));
  }
  const options: CompareRecord['options'] = {
    ...first.record.options,
    methods: ordered<SynthMethod>(methods, ROW_ORDER),
    bits: ordered<BitsPreset>(bits, Object.keys(BITS_PRESETS) as BitsPreset[]),
    seeds: [...allSeeds].sort((a, b) => a - b),
    ablation: ablation.size > 0,
    // The merged table holds every variant the runs measured, whatever subset each ran.
    ablationVariants: undefined,
    // …and is no shard of anything.
    shard: undefined,
    quantizerForms: Object.fromEntries([...forms].map(([b, f]) => [b, f.forms])),
  };
  return { options, result };
}
