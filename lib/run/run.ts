// `run`: the whole product in one call — import the ONNX model, synthesize calibration
// images (SPDFQ by default), calibrate and reconstruct a low-bit model, evaluate full
// precision and quantized on labelled images, export the quantized ONNX and evaluate that
// file in onnxruntime. Every stage's output is written as soon as it exists, so a failure
// or Ctrl-C later keeps what was already computed.

import * as fs from 'fs';
import * as path from 'path';
import { SpdfqError } from '../errors';
import { importOnnx, ImportedModel } from '../onnx/import-onnx';
import { Preprocessing, readPreprocessing } from '../onnx/preprocess';
import { createVit, VitModel } from '../vit';
import { backendFor, Device } from './device';
import { synthesize, SynthesisResult } from '../synth/synthesize';
import { SynthesisOptions, SynthMethod, SYNTH_METHODS } from '../synth/options';
import { imageGridPng, writeSynthesisOutputs } from '../synth/writers';
import { SynthesisStoppedError } from '../synth/errors';
import { classAttentionMaps } from '../synth/attention-maps';
import { quantize, QuantizedVit, simulateExported } from '../quant/quantize';
import { BitsPreset, BITS_PRESETS, normalizedPixelRange, ReconstructionOptions } from '../quant/quant-config';
import { checkExportFormat, exportQuantizedOnnx, QuantExportFormat, QuantExportResult } from '../quant/export-onnx';
import { evaluate, agreement, Evaluation } from '../eval/evaluate';
import { loadEvalSet } from '../data/eval-set';
import { LabelledImages } from '../data/labelled-images';
import { ortForward, ortUnavailable } from '../eval/ort';
import { renderReport, HeatmapPair } from './report';
import { displayPath, Stage, StageReporter, silentReporter } from './stages';

/** The bundled default model (trained by `npm run train:default`). */
export const DEFAULT_MODEL = path.resolve(__dirname, __dirname.includes(`${path.sep}dist${path.sep}`) ? '../../..' : '../..', 'models', 'fashion-mnist-vit.onnx');

export interface RunOptions {
  /** ONNX model. Default: the bundled Fashion-MNIST ViT. */
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
  exportFormat?: QuantExportFormat;
  /** The post-softmax quantizer: RepQ-ViT's 'log2' (default; exported as its exact
   *  formula in float ops) or 'uniform' (a pure QDQ graph). docs/quantization.md measures both. */
  softmaxQuantizer?: 'log2' | 'uniform';
  /** Extra synthesis options (ablation flags, α1, …), passed through. */
  synthesis?: SynthesisOptions;
  reporter?: StageReporter;
  signal?: AbortSignal;
}

export interface RunResults {
  method: SynthMethod;
  bits: BitsPreset;
  model: string;
  fp_top1: number | null;
  quant_top1: number | null;
  exported_top1: number | null;
  /** Our simulation of the quantizers exactly as exported (log√2 → nearest uniform). */
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

function pct(x: number | null): string {
  return x === null ? 'n/a' : `${(x * 100).toFixed(2)}%`;
}

export async function run(options: RunOptions = {}): Promise<RunResults> {
  const t0 = Date.now();
  const rep = options.reporter ?? silentReporter;
  const modelPath = options.model ?? DEFAULT_MODEL;
  const bits = options.bits ?? 'w4a4';
  if (!(bits in BITS_PRESETS)) throw new SpdfqError('E_CONFIG', `bits: expected one of ${Object.keys(BITS_PRESETS).join(', ')}, received '${bits}'`);
  const method = options.method ?? 'spdfq';
  if (!SYNTH_METHODS.includes(method)) throw new SpdfqError('E_CONFIG', `method: expected one of ${SYNTH_METHODS.join(', ')}, received '${method}'`);
  if (options.exportFormat !== undefined) checkExportFormat('exportFormat', options.exportFormat);
  const out = path.resolve(options.out ?? 'spdfq-out');
  // Validated before any work (a CPU-only build or a machine without a usable GPU is a
  // clear error here). On CUDA, synthesis — the dominant cost — runs on a GPU copy of the
  // model; calibration and block reconstruction stay on the CPU engine (native/quant takes
  // a CpuVit; docs/cuda.md).
  const backend = backendFor(options.device ?? 'cpu');
  fs.mkdirSync(out, { recursive: true });
  const outputs: string[] = [];
  const results: RunResults = {
    method, bits, model: modelPath, fp_top1: null, quant_top1: null, exported_top1: null, exported_sim_top1: null, exported_agreement: null,
    eval_images: 0, synthetic_images: 0, synthesis_seconds: 0, quantization_seconds: 0, seconds: 0, export_warnings: [], outputs,
  };
  // results.json is rewritten after every stage: whatever happens later, it says what was reached.
  const save = () => {
    results.seconds = (Date.now() - t0) / 1000;
    fs.writeFileSync(path.join(out, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  };

  // 1. Import.
  rep.start(Stage.Import, `importing ${modelPath}`);
  const imported = await importOnnx(modelPath);
  const pre = readPreprocessing(imported.path, imported.config);
  const fp: VitModel = await createVit(imported.config, imported.weights, { threads: options.threads });
  let synthModel: VitModel = fp;
  rep.done(Stage.Import, `${imported.family}: depth ${imported.config.depth}, dim ${imported.config.embedDim}, ${imported.config.numHeads} heads, ${imported.config.imageHeight}×${imported.config.imageWidth}`);
  let quant: QuantizedVit | null = null;
  try {
    if (backend.kind === 'cuda') synthModel = await createVit(imported.config, imported.weights, { device: `cuda:${backend.index}` });
    // 2. Labelled evaluation set (loaded early: a bad folder fails before minutes of work).
    const evalPath = options.eval ?? (options.model === undefined ? DEFAULT_MODEL.replace(/\.onnx$/, '-test') : undefined);
    const evalSet = evalPath ? loadEvalSet(evalPath, imported.config, pre, { limit: options.evalLimit }) : null;
    results.eval_images = evalSet?.count ?? 0;

    // 3. Calibration images.
    const synth = await calibrationImages(synthModel, options, method, pre, out, rep, outputs, results);
    save();

    // 4. Quantize: calibrate, reparameterize, reconstruct.
    rep.start(Stage.Quantize, `${bits}, RepQ-ViT quantizers`);
    quant = await quantize(fp, synth.images, synth.shape[0], {
      bits,
      inputRange: normalizedPixelRange(pre),
      threads: options.threads,
      reconstruction: options.reconstruction,
      probs: options.softmaxQuantizer,
      signal: options.signal,
      onProgress: (p) => {
        if (p.reconstruct) {
          const r = p.reconstruct;
          rep.progress(Stage.Quantize, r.block * r.iters + r.iter, r.blocks * r.iters, `block ${r.block + 1}/${r.blocks}  mse ${r.loss.toExponential(3)}`);
        }
      },
    });
    results.quantization_seconds = quant.report.seconds;
    save();
    rep.done(Stage.Quantize, `in ${quant.report.seconds.toFixed(1)} s`);

    // 5. Evaluate full precision and the quantized simulation.
    let fpEval: Evaluation | null = null;
    let qEval: Evaluation | null = null;
    if (evalSet) {
      rep.start(Stage.Evaluate, `${evalSet.count} labelled images`);
      const K = imported.config.numClasses;
      fpEval = await evaluate(async (x, b) => (await fp.forward(x, b)).logits, evalSet, K, { signal: options.signal });
      qEval = await evaluate((x, b) => quant!.forward(x, b), evalSet, K, { signal: options.signal });
      results.fp_top1 = fpEval.top1;
      results.quant_top1 = qEval.top1;
      save();
      rep.done(Stage.Evaluate, `full precision ${pct(fpEval.top1)}, ${bits} ${pct(qEval.top1)}`);
    }

    // 6. Export, and evaluate the exported file in onnxruntime.
    const exported = await exportAndMeasure(quant, imported, evalSet, qEval, options, out, rep, outputs, results, save);

    // 7. Report.
    const html = await renderRunReport(fp, synth, quant, exported, imported, modelPath, results, t0);
    const reportPath = path.join(out, 'report.html');
    fs.writeFileSync(reportPath, html);
    outputs.push(reportPath, path.join(out, 'results.json'));
    save();
    return results;
  } finally {
    save();
    await quant?.dispose();
    if (synthModel !== fp) await synthModel.dispose();
    await fp.dispose();
  }
}

/** Synthesizes (or loads) the calibration images; written to out/synthetic as soon as they
 *  exist, and the last good images too when synthesis is stopped. */
async function calibrationImages(
  model: VitModel, options: RunOptions, method: SynthMethod, pre: Preprocessing, out: string, rep: StageReporter, outputs: string[], results: RunResults,
): Promise<SynthesisResult> {
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
        rep.progress(Stage.Synthesize, p.step, p.totalSteps, `loss ${p.losses.total.toPrecision(4)}  apa ${p.losses.apa.toPrecision(3)}  ce ${p.losses.cls.toPrecision(3)}  tv ${p.losses.tv.toPrecision(3)}  p(target) ${p.losses.targetProb.toFixed(3)}  ${p.imagesPerSecond.toFixed(1)} img/s`),
    } as SynthesisOptions);
  } catch (err) {
    // Stopped (Ctrl-C, NaN): keep the last good images before giving up.
    if (err instanceof SynthesisStoppedError) {
      outputs.push(...writeSynthesisOutputs(err.partial, path.join(out, 'synthetic')));
      results.synthetic_images = err.partial.shape[0];
    }
    throw err;
  }
  results.synthetic_images = synth.shape[0];
  results.synthesis_seconds = synth.seconds;
  outputs.push(...writeSynthesisOutputs(synth, path.join(out, 'synthetic')));
  rep.done(Stage.Synthesize, `${synth.shape[0]} images in ${synth.seconds.toFixed(1)} s`);
  return synth;
}

/** Writes the quantized ONNX and, with an evaluation set, measures it in onnxruntime beside
 *  our simulation of the quantizers exactly as exported. */
async function exportAndMeasure(
  quant: QuantizedVit, imported: ImportedModel, evalSet: LabelledImages | null, qEval: Evaluation | null, options: RunOptions, out: string, rep: StageReporter, outputs: string[], results: RunResults, save: () => void,
): Promise<QuantExportResult> {
  rep.start(Stage.Export, 'quantized ONNX');
  const exported = exportQuantizedOnnx(quant, { format: options.exportFormat, inputName: imported.inputName, outputName: imported.outputName });
  const onnxPath = path.join(out, 'quantized.onnx');
  fs.writeFileSync(onnxPath, exported.bytes);
  outputs.push(onnxPath);
  results.export_warnings = exported.warnings;
  for (const w of exported.warnings) rep.warn(w);
  save();
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
        const sim = await simulateExported(quant, exported);
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
  save();
  rep.done(Stage.Export, `${displayPath(onnxPath)}${results.exported_top1 !== null ? `, onnxruntime top-1 ${pct(results.exported_top1)}` : ''}`);
  return exported;
}

/** Class-token attention against its prior, averaged over heads, for the first images at
 *  the last aligned block (SPDFQ's APA); none for methods without priors. */
async function attentionHeatmaps(fp: VitModel, synth: SynthesisResult): Promise<HeatmapPair[]> {
  const heatmaps: HeatmapPair[] = [];
  if (!synth.priors) return heatmaps;
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
    heatmaps.push({ caption: `image ${b} (class ${synth.targets[b]}), block ${lastBlock}`, attention: att, prior, gridH: gh, gridW: gw });
  }
  return heatmaps;
}

async function renderRunReport(
  fp: VitModel, synth: SynthesisResult, quant: QuantizedVit, exported: QuantExportResult, imported: ImportedModel, modelPath: string, results: RunResults, t0: number,
): Promise<string> {
  const { bits, method } = results;
  return renderReport({
    title: `spdfq-native: ${path.basename(modelPath)} at ${bits.toUpperCase()} with ${method}`,
    summary: [
      { label: 'model', value: `${modelPath} (${imported.family})` },
      { label: 'calibration', value: `${results.synthetic_images} ${method} images, ${synth.stepsDone} steps, ${results.synthesis_seconds.toFixed(1)} s` },
      { label: 'full precision top-1', value: pct(results.fp_top1) },
      { label: `${bits} top-1 (simulation)`, value: pct(results.quant_top1) },
      { label: 'exported ONNX top-1 (onnxruntime)', value: pct(results.exported_top1) },
      { label: 'simulation of the exported quantizers', value: `${pct(results.exported_sim_top1)} (prediction agreement with onnxruntime ${pct(results.exported_agreement)})` },
      { label: 'evaluation images', value: String(results.eval_images) },
      { label: 'total time', value: `${((Date.now() - t0) / 1000).toFixed(1)} s` },
    ],
    gridPng: imageGridPng(synth.images, synth.shape, synth.preprocess),
    gridCaption: `Synthetic images with their target classes: ${Array.from(synth.targets).join(', ')}`,
    heatmaps: await attentionHeatmaps(fp, synth),
    losses: synth.losses.length
      ? [
          { name: 'total', values: synth.losses.map((l) => l.total) },
          { name: 'APA', values: synth.losses.map((l) => l.apa) },
          { name: 'CE/SL', values: synth.losses.map((l) => l.cls) },
          { name: 'TV', values: synth.losses.map((l) => l.tv) },
          { name: 'PSE', values: synth.losses.map((l) => Math.abs(l.pse)) },
        ]
      : [],
    blockErrors: quant.report.reconstruction,
    notes: exported.warnings,
  });
}
