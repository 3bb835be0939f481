// `spdfq-native compare`: the method comparison table (lib/compare/compare.ts) on a model,
// written as Markdown and JSON.

import * as fs from 'fs';
import * as path from 'path';
import type { Argv, CommandModule } from 'yargs';
import { readPreprocessing } from '../../onnx/preprocess';
import { createModel, importForRun, isSwinImport, swinRunSettings } from '../../run/architecture';
import { loadEvalSet } from '../../data/eval-set';
import { compare, compareMarkdown, CompareOptions } from '../../compare/compare';
import { ABLATION_NAMES } from '../../compare/ablation';
import { CompareRecord, mergeCompareRecords } from '../../compare/merge';
import { sweepMarkdown, sweepTable } from '../../compare/sweep';
import { DEFAULT_MODEL } from '../../run/run';
import { backendFor } from '../../run/device';
import { bundledDataset, bundledTestSubset } from '../../data/bundled-datasets';
import { BITS_PRESETS, BitsPreset } from '../../quant/quant-config';
import { SYNTH_METHODS, SynthMethod } from '../../synth/options';
import { SpdfqError } from '../../errors';
import { apaAlphaFlag, mergeSynthesis, quantOptionFlags, synthOptionFlags } from '../synthesis-flags';
import { intFlag } from '../flags';
import { checkOutput } from '../../io/output-path';
import { makeDir, writeFileAtomic } from '../../io/atomic';
import { resolveShard, Shard } from '../../shard';
import { CellStore } from '../../compare/cell-store';
import { cellName, shardCells } from '../../compare/cells';


interface CompareArgs {
  model?: string;
  eval?: string;
  'eval-limit': number;
  real?: string;
  methods: string;
  bits: string;
  seeds: number;
  'first-seed': number;
  images: number;
  iters?: number;
  'recon-iters'?: number;
  ablation: boolean;
  'ablation-bits': string;
  'ablation-variants'?: string;
  out: string;
  threads?: number;
  'tv-weight'?: number;
  'tv-form'?: string;
  lr?: number;
  alpha?: number;
  'synth-option'?: string[];
  'quant-option'?: string[];
  cache?: string;
  merge?: string[];
  sweep?: string[];
  shard?: string;
  shards?: number;
  device: string;
}

/** The --tv-weight / --tv-form / --lr overrides, validated (expected vs received). */
function synthesisOverrides(a: CompareArgs): CompareOptions['synthesis'] {
  const out: NonNullable<CompareOptions['synthesis']> = {};
  const tv: { weight?: number; form?: 'l1' | 'l2' | 'none' } = {};
  if (a['tv-weight'] !== undefined) {
    if (!(a['tv-weight'] >= 0)) throw new SpdfqError('E_CONFIG', `--tv-weight: expected a number ≥ 0, received ${a['tv-weight']}`);
    tv.weight = a['tv-weight'];
  }
  if (a['tv-form'] !== undefined) {
    if (!['l1', 'l2', 'none'].includes(a['tv-form'])) throw new SpdfqError('E_CONFIG', `--tv-form: expected l1, l2 or none, received '${a['tv-form']}'`);
    tv.form = a['tv-form'] as 'l1' | 'l2' | 'none';
  }
  if (Object.keys(tv).length > 0) out.tv = tv;
  const alpha = apaAlphaFlag(a.alpha);
  if (alpha) out.apa = alpha.apa;
  if (a.lr !== undefined) {
    if (!(a.lr > 0)) throw new SpdfqError('E_CONFIG', `--lr: expected a number > 0, received ${a.lr}`);
    out.lr = a.lr;
  }
  return mergeSynthesis(out, synthOptionFlags(a['synth-option']));
}

function readRecord(p: string): { source: string; record: CompareRecord } {
  const file = fs.existsSync(p) && fs.statSync(p).isDirectory() ? path.join(p, 'results.json') : p;
  let record: CompareRecord;
  try {
    record = JSON.parse(fs.readFileSync(file, 'utf8')) as CompareRecord;
  } catch (err) {
    throw new SpdfqError('E_IO', `compare --merge: cannot read ${file} (expected the results.json of a compare run): ${(err as Error).message}`);
  }
  if (!record?.options?.seeds || !record?.result?.cells) throw new SpdfqError('E_IO', `compare --merge: ${file} is not the results.json of a compare run (expected options.seeds and result.cells)`);
  return { source: file, record };
}

/** Where shard i of n writes its results.json (`compare --merge OUT/shards/*-of-n` joins them). */
export function shardOut(out: string, s: Shard): string {
  return path.join(out, 'shards', `${s.index}-of-${s.count}`);
}

/** results.md and results.json in `out`, and the tables on stdout. */
function writeTables(out: string, record: CompareRecord): void {
  makeDir(out);
  const md = compareMarkdown(record.result, record.options);
  writeFileAtomic(path.join(out, 'results.md'), `${md}\n`);
  writeFileAtomic(path.join(out, 'results.json'), `${JSON.stringify(record, null, 2)}\n`);
  process.stdout.write(`${md}\n\n(${record.result.seconds.toFixed(0)} s of runs; written to ${out})\n`);
}

function list<T extends string>(flag: string, raw: string, allowed: readonly T[]): T[] {
  const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const i of items) if (!allowed.includes(i as T)) throw new SpdfqError('E_CONFIG', `--${flag}: '${i}' is not one of ${allowed.join(', ')}`);
  return items as T[];
}

function oneBits(flag: string, raw: string): BitsPreset {
  const items = list(flag, raw, Object.keys(BITS_PRESETS) as BitsPreset[]);
  if (items.length !== 1) throw new SpdfqError('E_CONFIG', `--${flag}: expected one bit width, received '${raw}'`);
  return items[0];
}

export const compareCommand: CommandModule<object, CompareArgs> = {
  command: 'compare',
  describe: 'Compare calibration methods (noise, CE+TV inversion, PSAQ-ViT, SPDFQ, real images) across bit widths and seeds, with image-quality statistics and the SPDFQ ablation',
  builder: (y: Argv) =>
    y
      .option('model', { type: 'string', describe: 'ONNX model (default: the bundled CIFAR-10 ViT)' })
      .option('eval', { type: 'string', describe: "labelled evaluation images (IDX or image folder); default for a bundled model: its dataset's full test set where installed, else its bundled test subset" })
      .option('eval-limit', { type: 'number', default: 2000, describe: 'evaluation images used' })
      .option('real', { type: 'string', describe: "real calibration images (a different set from --eval); default for a bundled model: its dataset's training set where installed (Debian's dataset-fashion-mnist; CIFAR-10 at $SPDFQ_CIFAR10_DIR)" })
      .option('methods', { type: 'string', default: 'noise,inversion,psaq,spdfq,real', describe: 'rows' })
      .option('bits', { type: 'string', default: 'w8a8,w6a6,w4a4,w3a3', describe: 'columns' })
      .option('seeds', { type: 'number', default: 3, describe: 'seeds per cell (mean ± std)' })
      .option('first-seed', { type: 'number', default: 0, describe: 'first seed (seeds run first-seed … first-seed + seeds − 1): extends an earlier table with new seeds' })
      .option('images', { type: 'number', default: 32, describe: 'calibration images per run (SPDFQ paper: 32)' })
      .option('iters', { type: 'number', describe: 'synthesis iterations (default: each method’s own)' })
      .option('recon-iters', { type: 'number', describe: 'reconstruction iterations per block (0 = off; default I&S-ViT’s)' })
      .option('ablation', { type: 'boolean', default: true, describe: 'also run the SPDFQ APA/MSR/SL ablation (at --ablation-bits)' })
      .option('ablation-bits', { type: 'string', default: 'w4a4', describe: 'bit width of the ablation (default: the paper’s table, W4A4)' })
      .option('ablation-variants', { type: 'string', describe: `ablation variants to run, comma-separated, of ${ABLATION_NAMES.join(', ')} (default: all); split a table over processes and join it with --merge` })
      .option('out', { type: 'string', default: 'compare-out', describe: 'output folder (results.md, results.json)' })
      .option('tv-weight', { type: 'number', describe: 'TV prior weight for every synthesized row (default: each method’s own: SPDFQ 0.5, PSAQ-ViT and inversion 0.05)' })
      .option('tv-form', { type: 'string', describe: "TV prior form for every synthesized row: l1, l2 or none (default: each method’s own)" })
      .option('alpha', { type: 'number', describe: 'SPDFQ APA weight α1 for every SPDFQ row and APA ablation variant (default 0.01 with the KL form)' })
      .option('lr', { type: 'number', describe: 'Adam learning rate on pixels for every synthesized row (default: each method’s own)' })
      .option('synth-option', { type: 'array', string: true, describe: 'any synthesis option by its API path, for every synthesized row where the method uses that part (repeatable): e.g. apa.loss=kl, apa.alpha=1, tv.form=l2' })
      .option('quant-option', { type: 'array', string: true, describe: 'any quantization option by its API path, for every cell (repeatable): e.g. calibration=sequential, reconstruction.rounding=adaround, reconstruction.qdrop=0.5' })
      .option('cache', { type: 'string', describe: 'keep synthesized images in this folder and reuse them for the same model, method, seed and options' })
      .option('threads', { type: 'number' })
      .option('device', { type: 'string', default: 'cpu', describe: 'cpu or cuda[:N]: where synthesis runs (quantization and evaluation stay on the CPU engine, as in run; docs/cuda.md)' })
      .option('shard', { type: 'string', describe: "compute only shard i/n of the table's cells (0-based), into --out/shards/i-of-n, resumably (finished cells are kept in --out/cells); default in a Slurm array or Kubernetes Indexed Job: the task's (docs/scale-out.md); 'none' for the whole table. Join the shards with --merge" })
      .option('shards', { type: 'number', describe: 'number of shards in a Kubernetes Indexed Job (its completions; or $SPDFQ_SHARDS)' })
      .option('sweep', { type: 'array', string: true, describe: 'run nothing: one table over the results.json files (or folders) of runs with different settings, one row per setting and method' })
      .option('merge', { type: 'array', string: true, describe: 'run nothing: merge the results.json files (or folders holding one) of earlier runs into one table in --out' }) as unknown as Argv<CompareArgs>,
  handler: async (a) => {
    const inputs = [...(a.merge ?? []), ...(a.sweep ?? [])].map((p) => ({ flag: a.merge ? '--merge' : '--sweep', path: fs.existsSync(p) && fs.statSync(p).isDirectory() ? path.join(p, 'results.json') : p }));
    const out = checkOutput('--out', a.out, inputs, { isFolder: true, writes: ['results.md', 'results.json', 'sweep.md'] });
    if (a.merge !== undefined) {
      writeTables(out, mergeCompareRecords(a.merge.map(readRecord)));
      return;
    }
    if (a.sweep !== undefined) {
      const md = sweepMarkdown(sweepTable(a.sweep.map(readRecord)));
      makeDir(out);
      writeFileAtomic(path.join(out, 'sweep.md'), `${md}\n`);
      process.stdout.write(`${md}\n`);
      return;
    }
    // Every flag is checked before any data is read.
    intFlag('first-seed', a['first-seed'], 0);
    intFlag('seeds', a.seeds, 1);
    intFlag('images', a.images, 1);
    intFlag('eval-limit', a['eval-limit'], 1);
    intFlag('iters', a.iters, 0);
    intFlag('recon-iters', a['recon-iters'], 0);
    intFlag('threads', a.threads, 1);
    const methods = list('methods', a.methods, SYNTH_METHODS);
    const bits = list('bits', a.bits, Object.keys(BITS_PRESETS) as BitsPreset[]);
    const ablationBits = oneBits('ablation-bits', a['ablation-bits']);
    const ablationVariants = a['ablation-variants'] === undefined ? undefined : list('ablation-variants', a['ablation-variants'], ABLATION_NAMES);
    const synthesis = synthesisOverrides(a);
    const modelPath = a.model ?? DEFAULT_MODEL;
    // A bundled model's own dataset where it is installed (docs/results.md's tables), else
    // its bundled test subset for evaluation; any other model names its data.
    const data = bundledDataset(modelPath);
    const evalPath = a.eval ?? (data ? data.eval ?? bundledTestSubset(modelPath) ?? undefined : undefined);
    if (a.eval === undefined && evalPath) process.stderr.write(`evaluation images: ${evalPath}\n`);
    if (!evalPath) throw new SpdfqError('E_CONFIG', '--eval: expected labelled evaluation images (IDX or image folder) for --model ' + modelPath);
    const need = 'compare needs real labelled images (not the evaluation images) for the real-image row and as the reference of the image statistics';
    const realPath = a.real ?? data?.real;
    if (!realPath) throw new SpdfqError('E_CONFIG', `--real: ${need}: pass --real <IDX or image folder>${data ? `, or ${data.install}` : ''}`);
    if (!fs.existsSync(realPath)) throw new SpdfqError('E_CONFIG', `--real: ${realPath} does not exist; ${need}: pass --real <IDX or image folder>`);
    // A ViT or a Swin, told apart by the graph as `run` does; both are reconstructed by
    // default (a Swin's options it cannot take are refused before any data is read).
    const imported = await importForRun(modelPath, 'compare');
    const reconIters = a['recon-iters'];
    const quant = quantOptionFlags(a['quant-option']) as CompareOptions['quant'];
    if (isSwinImport(imported)) swinRunSettings({ device: a.device, cliFlags: true });
    const reconstruction = reconIters === 0 ? false : reconIters !== undefined ? { iters: reconIters } : {};
    const pre = readPreprocessing(imported.path, imported.config);
    const evalSet = loadEvalSet(evalPath, imported.config, pre, { limit: a['eval-limit'] });
    const real = loadEvalSet(realPath, imported.config, pre, { limit: Math.max(a.images * (a['first-seed'] + a.seeds), 256) });
    const fp = await createModel(imported, a.threads);
    // Synthesis, the dominant cost, on a GPU copy of the model when asked (as run does).
    const backend = backendFor(a.device);
    const synthModel = backend.kind === 'cuda' ? await createModel(imported, a.threads, backend) : fp;
    const options: CompareOptions = {
      methods,
      bits,
      seeds: Array.from({ length: a.seeds }, (_, i) => a['first-seed'] + i),
      images: a.images,
      iters: a.iters,
      reconstruction,
      ablation: a.ablation,
      ablationBits,
      ablationVariants,
      synthesis,
      realPath,
      preprocess: { mean: pre.mean, std: pre.std },
      threads: a.threads,
      cacheDir: a.cache,
      quant,
      ...(a.device !== 'cpu' ? { device: a.device } : {}),
      log: (l) => process.stderr.write(`${l}\n`),
    };
    // A shard writes its own results beside the other shards', and keeps each finished cell
    // so that a resubmitted array recomputes only what is missing.
    const shard = resolveShard(a.shard, process.env, a.shards);
    if (shard) {
      options.shard = shard;
      process.stderr.write(`shard ${shard.index}/${shard.count}: cells ${shardCells(options).map(cellName).join(', ') || '(none)'}\n`);
    }
    const store = shard ? new CellStore(path.join(out, 'cells')) : undefined;
    const ac = new AbortController();
    process.once('SIGINT', () => ac.abort());
    process.once('SIGTERM', () => ac.abort());
    options.signal = ac.signal;
    try {
      const res = await compare(fp, evalSet, real, options, store, synthModel);
      const { log: _log, signal: _signal, ...recorded } = options;
      writeTables(shard ? shardOut(out, shard) : out, { options: recorded, result: res });
    } finally {
      await fp.dispose();
      if (synthModel !== fp) await synthModel.dispose();
    }
  },
};
