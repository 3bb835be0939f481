// `spdfq-native synth --model m.onnx --method spdfq --images 32 --iters 1000 --out dir`:
// synthesizes calibration images and writes them (images.npy, PNGs, grid, targets, losses).
// Progress bar on stderr; the first Ctrl-C stops cleanly and keeps the images reached so
// far (written, exit code 130), a second one exits at once. `--shard i/n` synthesizes a
// shard of the images into --out/shards/i-of-n; `--merge` joins the shards' folders into
// the unsplit run's outputs (docs/scale-out.md, "Synthesis shards").

import * as path from 'path';
import type { Argv, CommandModule } from 'yargs';
import { SpdfqError } from '../../errors';
import { isSwinOnnx, loadSwinOnnx } from '../../onnx/import-swin';
import { loadModel } from '../../onnx/load-model';
import { readOnnxSource } from '../../onnx/read-source';
import { readPreprocessing } from '../../onnx/preprocess';
import { SwinModel } from '../../swin';
import { createVit, VitModel, WeightMap } from '../../vit';
import { VitConfig, VitConfigInput } from '../../vit-config';
import { SynthesisStoppedError } from '../../synth/errors';
import { Preprocess, SYNTH_METHODS, SynthesisOptions, SynthMethod } from '../../synth/options';
import { formatDuration, formatNumber, ProgressBar } from '../progress-bar';
import { synthesize, SynthesisResult } from '../../synth/synthesize';
import { readSynthesisResult, writeSynthesisOutputs } from '../../synth/writers';
import { mergeShardResults } from '../../synth/shard-result';
import { resolveShard, Shard } from '../../shard';
import { checkOutput } from '../../io/output-path';
import { keyOf, RunFolder } from '../../io/run-folder';
import { intFlag } from '../flags';
import { mergeSynthesis, synthOptionFlags } from '../synthesis-flags';

export interface SynthArgs {
  model?: string;
  method: SynthMethod;
  images: number;
  iters?: number;
  out: string;
  seed: number;
  lr?: number;
  alpha?: number;
  apa?: boolean;
  msr?: boolean;
  sl?: boolean;
  real?: string;
  'real-labels'?: string;
  mean?: number[];
  std?: number[];
  threads?: number;
  'memory-budget-mb'?: number;
  pngs: boolean;
  progress: boolean;
  force?: boolean;
  'synth-option'?: string[];
  shard?: string;
  shards?: number;
  merge?: string[];
}

/** What synth writes into --out (and all that --force removes). */
export const SYNTH_WRITES = ['images.npy', 'images', 'grid.png', 'targets.json', 'losses.csv', 'losses.json', 'priors.npy', 'synthesis.json'];

/** What the command needs from a model loader: the engine model (or a ViT's config and
 *  weights to build one), the input normalization, and whether the command owns the model
 *  (disposes it at the end; default: when it built it). */
export interface LoadedModel {
  config?: VitConfig | VitConfigInput;
  weights?: WeightMap;
  model?: VitModel | SwinModel;
  ownsModel?: boolean;
  preprocess?: Preprocess;
}

export interface SynthDeps {
  loadModel: (file: string, options: { threads?: number }) => Promise<LoadedModel>;
  signal?: AbortSignal;
  stderr?: NodeJS.WriteStream;
}

/** The ONNX model and the input normalization its sidecar (or the defaults) records. A Swin
 *  is built here (SwinModel; docs/swin.md, "Stage: synthesis"), a ViT by the command. */
async function defaultLoadModel(file: string, options: { threads?: number }): Promise<LoadedModel> {
  const { bytes } = await readOnnxSource(file, 'synth');
  if (isSwinOnnx(bytes, file)) {
    const { imported, model } = await loadSwinOnnx(bytes, options.threads !== undefined ? { threads: options.threads } : {});
    const pre = readPreprocessing(file, imported.config);
    return { model, ownsModel: true, preprocess: { mean: pre.mean, std: pre.std } };
  }
  const loaded = await loadModel(file, options.threads !== undefined ? { threads: options.threads } : {});
  const pre = readPreprocessing(file, loaded.config);
  return { config: loaded.config, weights: loaded.weights, preprocess: { mean: pre.mean, std: pre.std } };
}

export function synthOptionsFromArgs(a: SynthArgs, preprocess: Preprocess | undefined): SynthesisOptions {
  const o: SynthesisOptions = { method: a.method, images: a.images, seed: a.seed };
  if (a.iters !== undefined) o.iters = a.iters;
  if (a.lr !== undefined) o.lr = a.lr;
  if (a.apa !== undefined || a.alpha !== undefined) o.apa = { enabled: a.apa ?? a.method === 'spdfq', ...(a.alpha !== undefined ? { alpha: a.alpha } : {}) };
  if (a.msr !== undefined) o.msr = a.msr;
  if (a.sl !== undefined) o.sl = a.sl;
  if (a.mean !== undefined || a.std !== undefined) {
    if (!a.mean || !a.std) throw new SpdfqError('E_CONFIG', '--mean and --std: expected both (one value per channel), received only one');
    o.preprocess = { mean: a.mean, std: a.std };
  } else if (preprocess) {
    o.preprocess = preprocess;
  }
  if (a.method === 'real') {
    if (!a.real) throw new SpdfqError('E_CONFIG', "--real: expected a folder of PNG images or an IDX file for --method real");
    o.real = { path: a.real, ...(a['real-labels'] ? { labels: a['real-labels'] } : {}) };
  }
  if (a['memory-budget-mb'] !== undefined) o.memoryBudgetBytes = a['memory-budget-mb'] * 2 ** 20;
  // --synth-option paths last: they refine what the flags above set (apa.loss beside --alpha).
  return mergeSynthesis(o, synthOptionFlags(a['synth-option'])) as SynthesisOptions;
}

/** Where shard i of n writes (`synth --merge OUT/shards/*-of-n` joins them): the same
 *  command line runs in every task of an array job, so the shard picks its own folder. */
export function synthShardOut(out: string, s: Shard): string {
  return path.join(out, 'shards', `${s.index}-of-${s.count}`);
}

/** `synth --merge dir…`: the shards' outputs as the unsplit run's, in --out. */
function mergeSynthCommand(a: SynthArgs, err: NodeJS.WritableStream): SynthesisResult {
  const out = checkOutput('--out', a.out, a.merge!.map((d) => ({ flag: '--merge', path: d })), { isFolder: true, writes: SYNTH_WRITES });
  const parts = a.merge!.map((dir) => {
    const result = readSynthesisResult(dir);
    if (!result) throw new SpdfqError('E_IO', `synth --merge: ${dir} holds no finished synth output (images.npy, targets.json, losses.json and synthesis.json of a run that was not stopped)`);
    return { source: dir, result };
  });
  const merged = mergeShardResults(parts);
  const folder = RunFolder.open(out, { command: 'synth', key: keyOf({ merge: a.merge }), writes: SYNTH_WRITES, beside: ['shards'], force: a.force });
  const files = writeSynthesisOutputs(merged, folder.subfolder(''), { pngs: a.pngs });
  err.write(`spdfq-native: ${merged.shape[0]} ${merged.method} images from ${parts.length} shards → ${path.resolve(a.out)} (${files.length} files)\n`);
  return merged;
}

/** The command's work, with its dependencies injectable (tests pass a tiny model). */
export async function runSynthCommand(a: SynthArgs, deps: SynthDeps = { loadModel: defaultLoadModel }): Promise<SynthesisResult> {
  const err = deps.stderr ?? process.stderr;
  if (a.merge !== undefined) return mergeSynthCommand(a, err);
  if (!a.model) throw new SpdfqError('E_CONFIG', '--model: expected an ONNX model file (or --merge with the output folders of shards)');
  const modelFile = a.model;
  intFlag('images', a.images, 1);
  intFlag('iters', a.iters, 0);
  intFlag('seed', a.seed, 0);
  intFlag('threads', a.threads, 1);
  const shard = resolveShard(a.shard, process.env, a.shards);
  const outArg = shard ? synthShardOut(a.out, shard) : a.out;
  const out = checkOutput('--out', outArg, [
    { flag: '--model', path: a.model },
    { flag: '--real', path: a.real ?? '' },
    { flag: '--real-labels', path: a['real-labels'] ?? '' },
  ], { isFolder: true, writes: SYNTH_WRITES });
  const folder = RunFolder.open(out, { command: 'synth', key: keyOf({ model: a.model, args: a, shard }), writes: SYNTH_WRITES, force: a.force });
  if (shard) err.write(`spdfq-native: synth shard ${shard.index}/${shard.count} → ${out}\n`);
  const loaded = await deps.loadModel(modelFile, { threads: a.threads });
  const model = loaded.model ?? (loaded.weights && loaded.config ? await createVit(loaded.config, loaded.weights, { threads: a.threads }) : null);
  if (!model) throw new SpdfqError('E_ONNX', `${a.model}: the loader returned neither a model nor weights`);
  const ownModel = loaded.ownsModel ?? !loaded.model;
  const options = synthOptionsFromArgs(a, loaded.preprocess);
  if (shard) options.shard = shard;
  const bar = a.progress ? new ProgressBar({ stream: err }) : null;
  const ac = new AbortController();
  const onOuterAbort = () => ac.abort();
  deps.signal?.addEventListener('abort', onOuterAbort, { once: true });
  // SIGINT (Ctrl-C) and SIGTERM (timeout, Slurm, Kubernetes): stop after the current step
  // and keep the images reached; a second signal exits at once.
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupts++;
    if (interrupts === 1) {
      err.write(`\nspdfq-native: ${sig}: stopping after the current step (again to quit at once)…\n`);
      ac.abort();
    } else {
      process.exit(sig === 'SIGINT' ? 130 : 143);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  options.signal = ac.signal;
  options.onProgress = (p) => {
    if (!bar) return;
    if (p.stepFraction < 1) {
      bar.update(p.step + p.stepFraction, p.totalSteps, `synth ${options.method}`, `step ${p.step + 1}: ${Math.round(p.stepFraction * 100)} % of its images  ETA ${formatDuration(p.etaSeconds)}`);
      return;
    }
    const l = p.losses;
    const parts = [
      options.method === 'psaq' ? `pse ${formatNumber(l.pse)}` : `apa ${formatNumber(l.apa)}`,
      `${a.sl === false || options.method !== 'spdfq' ? 'ce' : 'sl'} ${formatNumber(l.cls)}`,
      `tv ${formatNumber(l.tv)}`,
      `p(target) ${l.targetProb.toFixed(3)}`,
      `${p.imagesPerSecond.toFixed(1)} img/s`,
      `ETA ${formatDuration(p.etaSeconds)}`,
    ];
    bar.update(p.step + p.stepFraction, p.totalSteps, `synth ${options.method}`, parts.join('  '));
  };
  try {
    const result = await synthesize(model, options);
    bar?.done();
    const files = writeSynthesisOutputs(result, folder.subfolder(''), { pngs: a.pngs });
    err.write(`spdfq-native: ${result.shape[0]} ${result.method} images (${result.stepsDone} steps, ${formatDuration(result.seconds)}${result.alpha !== null ? `, α1 = ${formatNumber(result.alpha)}` : ''}) → ${out} (${files.length} files)\n`);
    return result;
  } catch (e) {
    bar?.done();
    if (e instanceof SynthesisStoppedError) {
      // Keep what was reached: the images of the last good step, their targets and losses.
      writeSynthesisOutputs(e.partial, folder.subfolder(''), { pngs: a.pngs, stopped: { code: e.code, step: e.step, part: e.part, message: e.message } });
      err.write(`spdfq-native: wrote the images of ${e.partial.stepsDone} completed steps to ${out}\n`);
    }
    throw e;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    deps.signal?.removeEventListener('abort', onOuterAbort);
    if (ownModel) await model.dispose();
  }
}

export const synthCommand: CommandModule<object, SynthArgs> = {
  command: 'synth',
  describe: 'Synthesize data-free calibration images from a model (SPDFQ, PSAQ-ViT, inversion, noise, real)',
  builder: (y: Argv<object>) =>
    y
      .option('model', { type: 'string', describe: 'ONNX model file (required unless --merge)' })
      .option('method', { choices: SYNTH_METHODS as SynthMethod[], default: 'spdfq' as SynthMethod, describe: 'synthesis method' })
      .option('images', { type: 'number', default: 32, describe: 'number of images [summary: 32]' })
      .option('iters', { type: 'number', describe: 'iterations over all rounds [summary: 1000; psaq 2×500]' })
      .option('out', { type: 'string', demandOption: true, describe: 'output folder' })
      .option('seed', { type: 'number', default: 0, describe: 'seed of every random draw' })
      .option('lr', { type: 'number', describe: 'Adam learning rate [spdfq 0.25, psaq 0.20]' })
      .option('alpha', { type: 'number', describe: "APA weight α1 (default 0.01 with the KL form; --synth-option apa.alpha=auto for the automatic weight)" })
      .option('apa', { type: 'boolean', describe: 'attention priors alignment (default on: docs/results.md, "SPDFQ\'s defaults"; --no-apa to ablate)' })
      .option('msr', { type: 'boolean', describe: 'multi-semantic reinforcement (--no-msr to ablate)' })
      .option('sl', { type: 'boolean', describe: 'soft-label learning (default off, hard labels: docs/results.md, "SPDFQ\'s defaults"; --sl switches it on)' })
      .option('real', { type: 'string', describe: "--method real: a folder of PNG images or an IDX images file" })
      .option('real-labels', { type: 'string', describe: 'IDX labels file for --real' })
      .option('mean', { type: 'number', array: true, describe: 'input normalization mean per channel' })
      .option('std', { type: 'number', array: true, describe: 'input normalization std per channel' })
      .option('threads', { type: 'number', describe: 'worker threads (default: all cores)' })
      .option('memory-budget-mb', { type: 'number', describe: 'working memory bound in MiB [4096]' })
      .option('pngs', { type: 'boolean', default: true, describe: 'write one PNG per image (--no-pngs: only the grid)' })
      .option('progress', { type: 'boolean', default: true, describe: 'progress bar on stderr' })
      .option('force', { type: 'boolean', default: false, describe: 'into an --out folder holding earlier images: replace them (removes only what synth writes)' })
      .option('synth-option', { type: 'array', string: true, describe: 'any synthesis option by its API path (repeatable): e.g. apa.loss=kl, apa.alpha=0.01, tv.form=l2 (docs/synthesis.md lists them)' })
      .option('shard', { type: 'string', describe: "synthesize shard i/n of the images (0-based) into --out/shards/i-of-n; merged with --merge they are the unsplit run's images bit for bit; default in a Slurm array or Kubernetes Indexed Job: the task's (docs/scale-out.md); 'none' for all images. Not with PSAQ-ViT's entropy, its TV target or the l2 TV prior" })
      .option('shards', { type: 'number', describe: 'number of shards in a Kubernetes Indexed Job (its completions; or $SPDFQ_SHARDS)' })
      .option('merge', { type: 'array', string: true, describe: "run nothing: join the folders of a run's shards (OUT/shards/*-of-n) into --out as the unsplit run's outputs; refuses missing, duplicate or mismatched shards" }) as unknown as Argv<SynthArgs>,
  handler: async (argv) => {
    await runSynthCommand(argv);
  },
};
