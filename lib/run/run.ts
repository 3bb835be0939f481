// `run`: the whole product in one call — import the ONNX model, synthesize calibration
// images (SPDFQ by default), calibrate and reconstruct a low-bit model, evaluate full
// precision and quantized on labelled images, export the quantized ONNX and evaluate that
// file in onnxruntime — for a ViT or a Swin (architecture.ts holds what differs). Every
// stage's output is written as soon as it exists, so a failure or Ctrl-C later keeps what
// was already computed.

import * as fs from 'fs';
import * as path from 'path';
import { SpdfqError } from '../errors';
import { Preprocessing, readPreprocessing } from '../onnx/preprocess';
import { VitModel } from '../vit';
import { backendFor, Device } from './device';
import { synthesize, SynthesisResult } from '../synth/synthesize';
import { SynthesisOptions, SynthMethod, SYNTH_METHODS } from '../synth/options';
import { imageGridPng, readSynthesisResult, writeSynthesisOutputs } from '../synth/writers';
import { SynthesisStoppedError } from '../synth/errors';
import { classAttentionMaps } from '../synth/attention-maps';
import { quantize } from '../quant/quantize';
import { BitsPreset, BITS_PRESETS, normalizedPixelRange, QuantOptions, ReconstructionOptions } from '../quant/quant-config';
import { checkExportFormat, QuantExportFormat, QuantExportResult } from '../quant/export-onnx';
import {
  createModel, describeImport, exportRunQuantized, familyOf, importForRun, isSwinImport, logitsOf, RunImport, RunModel, RunQuantized, simulateRunExported,
  SWIN_NO_ATTENTION_MAPS, swinRunSettings,
} from './architecture';
import { evaluate, agreement, Evaluation } from '../eval/evaluate';
import { loadEvalSet } from '../data/eval-set';
import { bundledTestSubset } from '../data/bundled-datasets';
import { LabelledImages } from '../data/labelled-images';
import { ortForward, ortUnavailable } from '../eval/ort';
import { renderReport, HeatmapPair } from './report';
import { checkOutput } from '../io/output-path';
import { fileKey, keyOf, RunFolder } from '../io/run-folder';
import { loadQuantized, serializeQuantized } from '../quant/quantized-state';
import { displayPath, Stage, StageReporter, silentReporter } from './stages';

/** The bundled default model: the CIFAR-10 ViT (`npm run train:cifar10`), natural RGB images
 *  where calibration data matters (docs/results.md, "CIFAR-10 model"). */
export const DEFAULT_MODEL = path.resolve(__dirname, __dirname.includes(`${path.sep}dist${path.sep}`) ? '../../..' : '../..', 'models', 'cifar10-vit.onnx');

export interface RunOptions {
  /** ONNX model. Default: the bundled CIFAR-10 ViT. */
  model?: string;
  bits?: BitsPreset;
  method?: SynthMethod;
  /** Synthetic images: 32 [SPDFQ summary]. */
  images?: number;
  /** Synthesis iterations: 1000 [SPDFQ summary]. */
  iters?: number;
  /** Labelled evaluation images: an IDX folder/pair or an image folder (class subfolders).
   *  Default for the bundled model: its bundled test subset. */
  eval?: string;
  /** Evaluate at most this many labelled images. */
  evalLimit?: number;
  /** Real calibration images for --method real. */
  calib?: string;
  device?: Device;
  seed?: number;
  out?: string;
  threads?: number;
  /** Block reconstruction (iterations etc.); false to skip. */
  reconstruction?: ReconstructionOptions | false;
  /** Further quantization options (calibration order, the reconstruction's rounding,
   *  QDrop, stages, …); `reconstruction` above takes precedence where both set a field. */
  quant?: Omit<QuantOptions, 'bits' | 'reconstruction' | 'threads' | 'signal' | 'onProgress'> & { reconstruction?: ReconstructionOptions };
  exportFormat?: QuantExportFormat;
  /** The post-softmax quantizer: RepQ-ViT's 'log2' (default; exported as its exact
   *  formula in float ops) or 'uniform' (a pure QDQ graph). docs/quantization.md measures both. */
  softmaxQuantizer?: 'log2' | 'uniform';
  /** Extra synthesis options (ablation flags, α1, …), passed through. */
  synthesis?: SynthesisOptions;
  reporter?: StageReporter;
  signal?: AbortSignal;
  /** Into an `out` holding an earlier run: start over, removing only what run writes. */
  force?: boolean;
  /** Into an `out` holding an earlier run of this job: reuse its completed stages whose
   *  inputs and options are unchanged (synthetic images, the quantized model). */
  resume?: boolean;
  /** Name options as command-line flags in messages (`--out` rather than `out`). */
  cliFlags?: boolean;
}

export interface RunResults {
  /** running while the run goes on; cancelled (Ctrl-C, SIGTERM, an AbortSignal), failed
   *  (error says why) or done at the end. results.json is rewritten at every stage. */
  status: 'running' | 'cancelled' | 'failed' | 'done';
  /** The stage reached (import, synthesize, quantize, evaluate, export, report). */
  stage: string;
  error: string | null;
  /** Stages taken from an earlier run of the same job (--resume). */
  resumed: string[];
  method: SynthMethod;
  bits: BitsPreset;
  model: string;
  /** The model's architecture: 'vit', or 'swin' (docs/swin.md, "Stage: run"). */
  architecture: 'vit' | 'swin';
  /** What this run did differently from the defaults, and why (a Swin's missing block
   *  reconstruction; the quantization plan's notes). */
  notes: string[];
  fp_top1: number | null;
  quant_top1: number | null;
  exported_top1: number | null;
  /** Our simulation of the quantizers exactly as exported (equal to quant_top1's model
   *  unless the export approximated a quantizer). */
  exported_sim_top1: number | null;
  /** Top-1 agreement between the exported model in onnxruntime and that simulation. */
  exported_agreement: number | null;
  eval_images: number;
  synthetic_images: number;
  synthesis_seconds: number;
  quantization_seconds: number;
  seconds: number;
  export_warnings: string[];
  outputs: string[];
}

/** What `run` writes into its folder (and all that --force removes). */
export const RUN_WRITES = ['synthetic', 'state', 'quantized.onnx', 'report.html', 'results.json'];

function pct(x: number | null): string {
  return x === null ? 'n/a' : `${(x * 100).toFixed(2)}%`;
}

function checkRunOptions(options: RunOptions): { bits: BitsPreset; method: SynthMethod } {
  if (options === null || typeof options !== 'object') throw new SpdfqError('E_CONFIG', `run options: expected an object, received ${String(options)}`);
  const bits = options.bits ?? 'w4a4';
  if (!(bits in BITS_PRESETS)) throw new SpdfqError('E_CONFIG', `bits: expected one of ${Object.keys(BITS_PRESETS).join(', ')}, received '${bits}'`);
  const method = options.method ?? 'spdfq';
  if (!SYNTH_METHODS.includes(method)) throw new SpdfqError('E_CONFIG', `method: expected one of ${SYNTH_METHODS.join(', ')}, received '${method}'`);
  if (options.exportFormat !== undefined) checkExportFormat('exportFormat', options.exportFormat);
  if (options.evalLimit !== undefined && !(Number.isInteger(options.evalLimit) && options.evalLimit >= 1)) {
    throw new SpdfqError('E_CONFIG', `evalLimit: expected a positive integer, received ${options.evalLimit}`);
  }
  return { bits, method };
}

/** The job's identity for resuming: the model's bytes and every option that changes the
 *  synthetic images (stage 'synthesize') or the quantized model (stage 'quantize'). */
function stageKeys(modelFileKey: string, options: RunOptions, method: SynthMethod, bits: BitsPreset, device: string) {
  const { signal: _s, onProgress: _p, ...synthesis } = options.synthesis ?? {};
  const synth = keyOf({ model: modelFileKey, method, images: options.images ?? null, iters: options.iters ?? null, seed: options.seed ?? null, calib: options.calib ?? null, synthesis, device, threads: options.threads ?? null });
  const quant = keyOf({ synth, bits, reconstruction: options.reconstruction ?? null, quant: options.quant ?? null, softmax: options.softmaxQuantizer ?? null, threads: options.threads ?? null });
  return { synth, quant };
}

export async function run(options: RunOptions = {}): Promise<RunResults> {
  const t0 = Date.now();
  const rep = options.reporter ?? silentReporter;
  const { bits, method } = checkRunOptions(options);
  const modelPath = options.model ?? DEFAULT_MODEL;
  // Validated before any work (a CPU-only build or a machine without a usable GPU is a
  // clear error here). On CUDA, synthesis — the dominant cost — runs on a GPU copy of the
  // model; calibration and block reconstruction stay on the CPU engine (docs/cuda.md).
  const backend = backendFor(options.device ?? 'cpu');
  // A bundled model (a file of the package's models/ folder) evaluates on its bundled test
  // subset unless told otherwise; any other model only where `eval` names images.
  const bundled = path.dirname(path.resolve(modelPath)) === path.dirname(DEFAULT_MODEL);
  const evalPath = options.eval ?? (bundled ? bundledTestSubset(modelPath) ?? undefined : undefined);
  const flag = (name: string) => (options.cliFlags ? `--${name}` : name);
  const out = checkOutput(flag('out'), options.out ?? 'spdfq-out', [
    { flag: flag('model'), path: modelPath },
    { flag: `${flag('model')}'s preprocessing sidecar`, path: modelPath.replace(/\.onnx$/i, '') + '.preprocess.json' },
    { flag: flag('eval'), path: evalPath ?? '' },
    { flag: flag('calib'), path: options.calib ?? '' },
  ], { isFolder: true, writes: RUN_WRITES });
  if (!fs.existsSync(modelPath)) throw new SpdfqError('E_IO', `${flag('model')}: ${modelPath} does not exist (expected an ONNX file)`);
  const keys = stageKeys(fileKey(modelPath), options, method, bits, backend.kind);
  const folder = RunFolder.open(out, {
    command: 'run', key: keys.quant, writes: RUN_WRITES, force: options.force, resume: options.resume,
    flags: { out: flag('out'), force: flag('force'), resume: flag('resume') },
  });
  const outputs: string[] = [];
  const results: RunResults = {
    status: 'running', stage: 'import', error: null, resumed: [],
    method, bits, model: modelPath, architecture: 'vit', notes: [], fp_top1: null, quant_top1: null, exported_top1: null, exported_sim_top1: null, exported_agreement: null,
    eval_images: 0, synthetic_images: 0, synthesis_seconds: 0, quantization_seconds: 0, seconds: 0, export_warnings: [], outputs,
  };
  let started = false;
  // results.json is rewritten at every stage: whatever happens later, it says what was reached.
  const save = () => {
    if (!started) return;
    results.seconds = (Date.now() - t0) / 1000;
    folder.write('results.json', `${JSON.stringify(results, null, 2)}\n`);
  };
  const stage = (name: string) => {
    results.stage = name;
    save();
  };

  // 1. Import, and the labelled evaluation set (a bad folder fails before minutes of work).
  rep.start(Stage.Import, `importing ${modelPath}`);
  const imported = await importForRun(modelPath);
  // A Swin's unsupported options are refused here, before any work (architecture.ts).
  const reconstruction = isSwinImport(imported) ? swinRunSettings(options) : options.reconstruction;
  if (isSwinImport(imported)) results.architecture = 'swin';
  const pre = readPreprocessing(imported.path, imported.config);
  const evalSet = evalPath ? loadEvalSet(evalPath, imported.config, pre, { limit: options.evalLimit }) : null;
  results.eval_images = evalSet?.count ?? 0;
  const fp: RunModel = await createModel(imported, options.threads);
  let synthModel: RunModel = fp;
  rep.done(Stage.Import, describeImport(imported));
  let quant: RunQuantized | null = null;
  try {
    started = true;
    stage('synthesize');
    if (backend.kind === 'cuda') synthModel = await createModel(imported, options.threads, backend);

    // 2. Calibration images.
    const synth = await calibrationImages(synthModel, options, method, pre, folder, keys.synth, rep, outputs, results);
    stage('quantize');

    // 3. Quantize: calibrate, reparameterize, reconstruct.
    quant = await quantizedModel(fp, synth, { ...options, reconstruction }, bits, pre, folder, keys.quant, rep, results);
    stage('evaluate');

    // 4. Evaluate full precision and the quantized simulation.
    let qEval: Evaluation | null = null;
    if (evalSet) {
      rep.start(Stage.Evaluate, `${evalSet.count} labelled images`);
      const K = imported.config.numClasses;
      const fpEval = await evaluate(logitsOf(fp), evalSet, K, { signal: options.signal });
      qEval = await evaluate((x, b) => quant!.forward(x, b), evalSet, K, { signal: options.signal });
      results.fp_top1 = fpEval.top1;
      results.quant_top1 = qEval.top1;
      rep.done(Stage.Evaluate, `full precision ${pct(fpEval.top1)}, ${bits} ${pct(qEval.top1)}`);
    }
    stage('export');

    // 5. Export, and evaluate the exported file in onnxruntime.
    const exported = await exportAndMeasure(quant, imported, evalSet, qEval, options, folder, rep, outputs, results);
    stage('report');

    // 6. Report.
    const html = await renderRunReport(fp, synth, quant, exported, imported, modelPath, results, t0, pre.classes);
    outputs.push(folder.write('report.html', html), folder.file('results.json'));
    results.status = 'done';
    save();
    return results;
  } catch (err) {
    const e = err as SpdfqError;
    results.status = e?.code === 'E_CANCELLED' || options.signal?.aborted ? 'cancelled' : 'failed';
    results.error = e?.message ?? String(err);
    try {
      save();
    } catch {
      // the original error is the one to report
    }
    throw err;
  } finally {
    await quant?.dispose();
    if (synthModel !== fp) await synthModel.dispose();
    await fp.dispose();
  }
}

/** Synthesizes the calibration images, or reuses an earlier run's (resume); written to
 *  out/synthetic as soon as they exist, and the last good images too when stopped. */
async function calibrationImages(
  model: RunModel, options: RunOptions, method: SynthMethod, pre: Preprocessing, folder: RunFolder, key: string, rep: StageReporter, outputs: string[], results: RunResults,
): Promise<SynthesisResult> {
  const dir = folder.file('synthetic');
  if (folder.completed('synthesize', key)) {
    const reused = readSynthesisResult(dir);
    if (reused) {
      results.resumed.push('synthesize');
      results.synthetic_images = reused.shape[0];
      results.synthesis_seconds = reused.seconds;
      rep.start(Stage.Synthesize, `${method}: reusing the ${reused.shape[0]} images of the earlier run`);
      rep.done(Stage.Synthesize, `${reused.shape[0]} images from ${displayPath(dir)}`);
      return reused;
    }
  }
  // A new synthesis makes every later stage of an earlier run stale.
  folder.invalidate('synthesize');
  folder.invalidate('quantize');
  rep.start(Stage.Synthesize, `${method}: ${options.images ?? 32} images`);
  let synth: SynthesisResult;
  try {
    synth = await synthesize(model, {
      ...options.synthesis,
      method,
      images: options.images ?? options.synthesis?.images,
      iters: options.iters ?? options.synthesis?.iters,
      seed: options.seed ?? options.synthesis?.seed,
      preprocess: { mean: pre.mean, std: pre.std },
      real: method === 'real' ? { ...options.synthesis?.real, path: options.calib ?? options.synthesis?.real?.path ?? '' } : options.synthesis?.real,
      signal: options.signal,
      onProgress: (p) =>
        rep.progress(Stage.Synthesize, p.step + p.stepFraction, p.totalSteps, p.stepFraction < 1
          ? `step ${p.step + 1}: ${Math.round(p.stepFraction * 100)} % of its images`
          : `loss ${p.losses.total.toPrecision(4)}  apa ${p.losses.apa.toPrecision(3)}  ce ${p.losses.cls.toPrecision(3)}  tv ${p.losses.tv.toPrecision(3)}  p(target) ${p.losses.targetProb.toFixed(3)}  ${p.imagesPerSecond.toFixed(1)} img/s`),
    } as SynthesisOptions);
  } catch (err) {
    // Stopped (Ctrl-C, NaN): keep the last good images before giving up.
    if (err instanceof SynthesisStoppedError) {
      outputs.push(...writeSynthesisOutputs(err.partial, folder.subfolder('synthetic'), { stopped: { code: err.code, step: err.step, part: err.part, message: err.message } }));
      results.synthetic_images = err.partial.shape[0];
    }
    throw err;
  }
  results.synthetic_images = synth.shape[0];
  results.synthesis_seconds = synth.seconds;
  const files = writeSynthesisOutputs(synth, folder.subfolder('synthetic'));
  outputs.push(...files);
  folder.markDone('synthesize', key, files);
  rep.done(Stage.Synthesize, `${synth.shape[0]} images in ${synth.seconds.toFixed(1)} s`);
  return synth;
}

/** Calibrates, reparameterizes and reconstructs the quantized model, or loads an earlier
 *  run's (resume); saved under out/state for a later resume. */
async function quantizedModel(
  fp: RunModel, synth: SynthesisResult, options: RunOptions, bits: BitsPreset, pre: Preprocessing, folder: RunFolder, key: string, rep: StageReporter, results: RunResults,
): Promise<RunQuantized> {
  // A Swin state saved before Swin reconstruction existed has no reconstruction report: a
  // run that reconstructs quantizes again rather than reuse it (its key is the same).
  const stale = (q: RunQuantized) => !('reconstruction' in q.report) && options.reconstruction !== false;
  const saved = folder.completed('quantize', key) ? await loadQuantized(folder.file('state'), options.threads) : null;
  if (saved && stale(saved)) await saved.dispose();
  if (saved && !stale(saved)) {
    const q = saved;
    results.resumed.push('quantize');
    rep.start(Stage.Quantize, `${bits}: reusing the quantized model of the earlier run`);
    results.quantization_seconds = q.report.seconds;
    results.notes.push(...q.plan.notes.filter((n) => !results.notes.includes(n)));
    rep.done(Stage.Quantize, `loaded from ${displayPath(folder.file('state'))}`);
    return q;
  }
  folder.invalidate('quantize');
  rep.start(Stage.Quantize, `${bits}, RepQ-ViT quantizers`);
  const quant = await quantize(fp, synth.images, synth.shape[0], {
    ...options.quant,
    bits,
    inputRange: normalizedPixelRange(pre),
    threads: options.threads,
    reconstruction: options.reconstruction === false ? false : options.quant?.reconstruction || options.reconstruction ? { ...options.quant?.reconstruction, ...options.reconstruction } : undefined,
    probs: options.softmaxQuantizer,
    signal: options.signal,
    onProgress: (p) => {
      if (p.reconstruct) {
        const r = p.reconstruct;
        rep.progress(Stage.Quantize, r.block * r.iters + r.iter, r.blocks * r.iters, `${r.stage} (${r.block + 1}/${r.blocks})  mse ${r.loss.toExponential(3)}`);
      }
    },
  });
  results.quantization_seconds = quant.report.seconds;
  for (const note of quant.plan.notes) rep.warn(note);
  results.notes.push(...quant.plan.notes.filter((n) => !results.notes.includes(n)));
  const state = serializeQuantized(quant);
  const files = [folder.write('state/quantized.json', state.json), folder.write('state/quantized-weights.bin', state.weights)];
  folder.markDone('quantize', key, files);
  rep.done(Stage.Quantize, `in ${quant.report.seconds.toFixed(1)} s`);
  return quant;
}

/** Writes the quantized ONNX and, with an evaluation set, measures it in onnxruntime beside
 *  our simulation of the quantizers exactly as exported. */
async function exportAndMeasure(
  quant: RunQuantized, imported: RunImport, evalSet: LabelledImages | null, qEval: Evaluation | null, options: RunOptions, folder: RunFolder, rep: StageReporter, outputs: string[], results: RunResults,
): Promise<QuantExportResult> {
  rep.start(Stage.Export, 'quantized ONNX');
  const exported = exportRunQuantized(quant, { format: options.exportFormat, inputName: imported.inputName, outputName: imported.outputName });
  const onnxPath = folder.write('quantized.onnx', exported.bytes);
  outputs.push(onnxPath);
  results.export_warnings = exported.warnings;
  for (const w of exported.warnings) rep.warn(w);
  const missing = evalSet ? await ortUnavailable() : null;
  if (missing) {
    // The export is written; only its measurement needs the runtime.
    const note = `the exported model was not evaluated: ${missing}`;
    results.export_warnings.push(note);
    rep.warn(note);
  } else if (evalSet) {
    const ort = await ortForward(exported.bytes, imported.config, options.threads);
    try {
      const K = imported.config.numClasses;
      const ortEval = await evaluate(ort.forward, evalSet, K, { signal: options.signal });
      results.exported_top1 = ortEval.top1;
      if (exported.exact && qEval) {
        // The exported quantizers are the model's own: the evaluated model is the simulation.
        results.exported_sim_top1 = qEval.top1;
        results.exported_agreement = agreement(ortEval.predictions, qEval.predictions);
      } else {
        const sim = await simulateRunExported(quant, exported);
        try {
          const simEval = await evaluate((x, b) => sim.forward(x, b), evalSet, K, { signal: options.signal });
          results.exported_sim_top1 = simEval.top1;
          results.exported_agreement = agreement(ortEval.predictions, simEval.predictions);
        } finally {
          await sim.dispose();
        }
      }
    } finally {
      await ort.release();
    }
  }
  rep.done(Stage.Export, `${displayPath(onnxPath)}${results.exported_top1 !== null ? `, onnxruntime top-1 ${pct(results.exported_top1)}` : ''}`);
  return exported;
}

/** A class by name where the model's sidecar names its classes, else by index. */
function className(index: number, classes: string[] | undefined): string {
  return classes?.[index] ?? `class ${index}`;
}

/** Class-token attention against its prior, averaged over heads, for the first images at
 *  the last aligned block (SPDFQ's APA); none for methods without priors. */
async function attentionHeatmaps(fp: RunModel, synth: SynthesisResult, classes: string[] | undefined): Promise<HeatmapPair[]> {
  const heatmaps: HeatmapPair[] = [];
  if (!synth.priors || !(fp instanceof VitModel)) return heatmaps;
  const [, sets, heads, gh, gw] = synth.priors.shape;
  const lastBlock = synth.priors.blocks[synth.priors.blocks.length - 1];
  const show = Math.min(4, synth.shape[0]);
  const maps = await classAttentionMaps(fp, synth.images.subarray(0, show * fp.imageLength()), show, [lastBlock], synth.priors.query);
  for (let b = 0; b < show; b++) {
    const att = new Float32Array(gh * gw);
    const prior = new Float32Array(gh * gw);
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < gh * gw; i++) {
        att[i] += maps[0][(b * heads + h) * gh * gw + i] / heads;
        // the last prior set belongs to the last aligned block
        prior[i] += synth.priors.maps[(((b * sets + (sets - 1)) * heads + h) * gh * gw) + i] / heads;
      }
    }
    heatmaps.push({ caption: `image ${b} (${className(synth.targets[b], classes)}), block ${lastBlock}`, attention: att, prior, gridH: gh, gridW: gw });
  }
  return heatmaps;
}

async function renderRunReport(
  fp: RunModel, synth: SynthesisResult, quant: RunQuantized, exported: QuantExportResult, imported: RunImport, modelPath: string, results: RunResults, t0: number,
  classes: string[] | undefined,
): Promise<string> {
  const { bits, method } = results;
  return renderReport({
    title: `spdfq-native: ${path.basename(modelPath)} at ${bits.toUpperCase()} with ${method}`,
    summary: [
      { label: 'model', value: `${modelPath} (${familyOf(imported)})` },
      { label: 'calibration', value: `${results.synthetic_images} ${method} images, ${synth.stepsDone} steps, ${results.synthesis_seconds.toFixed(1)} s` },
      { label: 'full precision top-1', value: pct(results.fp_top1) },
      { label: `${bits} top-1 (simulation)`, value: pct(results.quant_top1) },
      { label: 'exported ONNX top-1 (onnxruntime)', value: pct(results.exported_top1) },
      { label: 'simulation of the exported quantizers', value: `${pct(results.exported_sim_top1)} (prediction agreement with onnxruntime ${pct(results.exported_agreement)})` },
      { label: 'evaluation images', value: String(results.eval_images) },
      { label: 'total time', value: `${((Date.now() - t0) / 1000).toFixed(1)} s` },
    ],
    gridPng: imageGridPng(synth.images, synth.shape, synth.preprocess),
    gridCaption: `Synthetic images with their target classes: ${Array.from(synth.targets, (t) => className(t, classes)).join(', ')}`,
    heatmaps: await attentionHeatmaps(fp, synth, classes),
    losses: synth.losses.length
      ? [
          { name: 'total', values: synth.losses.map((l) => l.total) },
          { name: 'APA', values: synth.losses.map((l) => l.apa) },
          { name: 'CE/SL', values: synth.losses.map((l) => l.cls) },
          { name: 'TV', values: synth.losses.map((l) => l.tv) },
          { name: 'PSE', values: synth.losses.map((l) => Math.abs(l.pse)) },
        ]
      : [],
    blockErrors: 'reconstruction' in quant.report ? quant.report.reconstruction : [],
    notes: [...results.notes, ...(fp instanceof VitModel ? [] : [SWIN_NO_ATTENTION_MAPS]), ...exported.warnings],
  });
}
