// quantize(model, images, options): calibrate → (RepQ-ViT reparameterization) → weight
// quantizers → block reconstruction, on a copy of the model, returning a QuantizedVit that
// runs the fake-quantized simulation and knows every quantizer (for export).

import { nativeAddon } from '../native';
import { SpdfqError } from '../errors';
import { writeFileAtomic } from '../io/atomic';
import { LabelledImages } from '../data/labelled-images';
import { evaluate, Evaluation, EvaluateOptions } from '../eval/evaluate';
import { exportQuantizedOnnx, QuantExportOptions, QuantExportResult } from './export-onnx';
import { roundHalfEven } from './rounding';
import { createVit, isFloat32Array, VitModel } from '../vit';
import { VitConfig } from '../vit-config';
import { ChannelQuantizer, CalibrationRequest, SiteQuantizer, StageReport, TensorQuantizer, WeightQuantizer } from '../native';
import { planQuantization, QuantizeProgress, QuantOptions, QuantPlan } from './quant-config';
export type { QuantizeProgress } from './quant-config';
export { uniformFromRange } from './rounding';
import { reconstructModel } from './reconstruction';
import { calibrateJoint, calibrateSequential, checkCalibrationImages, checkFiniteWeights, nativeError, vitCalibrationStages } from './calibration';
import { quantizeSwin, QuantizedSwin } from './quantize-swin';
import { SwinModel } from '../swin';
export { calibrateSites } from './calibration';


export interface QuantizeCallOptions extends QuantOptions {
  threads?: number;
  onProgress?: (p: QuantizeProgress) => void;
  signal?: AbortSignal;
}

export interface QuantizationReport {
  plan: QuantPlan;
  /** Per reconstruction stage (patch embedding, blocks, head): its output MSE vs the fp
   *  model before and after reconstruction, and the iteration whose weights it keeps. */
  reconstruction: StageReport[];
  seconds: number;
}

/** A quantized ViT: the engine running fake-quantized weights and activations. */
export class QuantizedVit {
  constructor(
    readonly model: VitModel,
    readonly plan: QuantPlan,
    readonly sites: SiteQuantizer[],
    readonly weightQuantizers: WeightQuantizer[],
    readonly report: QuantizationReport,
  ) {}

  get config(): VitConfig {
    return this.model.config;
  }

  /** Logits of the quantized model (simulation: integer grids, float arithmetic). */
  async forward(images: Float32Array, batch: number): Promise<Float32Array> {
    return (await this.model.forward(images, batch)).logits;
  }

  /**
   * Integer execution: the Linear layers (patch embedding, qkv, proj, fc1, fc2, head) run
   * on the int8 / 4-bit-weight kernels with int32 accumulation instead of the float
   * simulation; attention matmuls, LayerNorm, softmax and GELU stay in float. Inference only.
   */
  async setIntegerExecution(on: boolean): Promise<void> {
    const native = this.model.nativeHandle();
    await this.model.exclusive(async () => native.setIntegerMode(on));
  }

  /** The full-precision weights behind the quantizers (after reparameterization and reconstruction). */
  getWeights(): Map<string, Float32Array> {
    return this.model.getWeights();
  }

  /** Top-1 / top-5 of the quantized model on a labelled set (see lib/data/eval-set.ts). */
  async evaluate(set: LabelledImages, options: EvaluateOptions = {}): Promise<Evaluation> {
    return evaluate((x, b) => this.forward(x, b), set, this.config.numClasses, options);
  }

  /** Writes the quantized ONNX (see export-onnx.ts for the formats); returns the export's
   *  details (warnings, the quantizers as exported). */
  async exportOnnx(file: string, options: QuantExportOptions = {}): Promise<QuantExportResult> {
    const res = exportQuantizedOnnx(this, options);
    writeFileAtomic(file, res.bytes);
    return res;
  }

  async dispose(): Promise<void> {
    await this.model.dispose();
  }
}

/** The quantized model with the quantizers exactly as exported: the simulation the
 *  exported file's onnxruntime accuracy is compared with. */
export async function simulateExported(q: QuantizedVit, exported: QuantExportResult): Promise<QuantizedVit> {
  const model = await createVit(q.config, q.getWeights(), {});
  const native = model.nativeHandle();
  await model.exclusive(async () => {
    native.setActQuant(exported.sites);
    native.setWeightQuant(exported.weights);
  });
  return new QuantizedVit(model, q.plan, exported.sites, exported.weights, q.report);
}



/** Quantizes a ViT or a Swin (docs/quantization.md; a Swin: docs/swin.md, "Stage: quantization"). */
export async function quantize(source: VitModel, images: Float32Array, numImages: number, options?: QuantizeCallOptions): Promise<QuantizedVit>;
export async function quantize(source: SwinModel, images: Float32Array, numImages: number, options?: QuantizeCallOptions): Promise<QuantizedSwin>;
export async function quantize(source: VitModel | SwinModel, images: Float32Array, numImages: number, options?: QuantizeCallOptions): Promise<QuantizedVit | QuantizedSwin>;
export async function quantize(source: VitModel | SwinModel, images: Float32Array, numImages: number, options: QuantizeCallOptions = {}): Promise<QuantizedVit | QuantizedSwin> {
  if (source instanceof SwinModel) return quantizeSwin(source, images, numImages, options);
  return quantizeVit(source, images, numImages, options);
}

async function quantizeVit(
  source: VitModel,
  images: Float32Array,
  numImages: number,
  options: QuantizeCallOptions = {},
): Promise<QuantizedVit> {
  const t0 = Date.now();
  checkCalibrationImages(images, numImages, source.imageLength());
  const plan = planQuantization(source.config, options);
  const progress = options.onProgress ?? (() => undefined);
  const weights = source.getWeights();
  checkFiniteWeights(weights);
  // Reparameterization adds a bias to the qkv projection when the model has none.
  let config = source.config;
  if (plan.reparameterize && !config.qkvBias) {
    config = { ...config, qkvBias: true };
    for (let l = 0; l < config.depth; l++) weights.set(`blocks.${l}.attn.qkv.bias`, new Float32Array(3 * config.embedDim));
  }
  const model = await createVit(config, weights, { threads: options.threads });
  const native = model.nativeHandle();
  const abort = () => native.cancel();
  options.signal?.addEventListener('abort', abort, { once: true });
  try {
    if (options.signal?.aborted) throw new SpdfqError('E_CANCELLED', 'quantization cancelled');
    // 1–3. Activation quantizers (RepQ-ViT's LayerNorm reparameterization folded into the
    // weights), then per-channel weight quantizers on the reparameterized weights.
    const { sites, weightQuantizers } = plan.calibration === 'sequential'
      ? await calibrateSequential(model, vitCalibrationStages(config.depth), weights, images, numImages, plan, progress)
      : await calibrateJoint(model, weights, images, numImages, plan, progress);
    await model.exclusive(async () => {
      native.setActQuant(sites);
      native.setWeightQuant(weightQuantizers);
    });
    // 4. Block reconstruction on the calibration images (learned steps, LSQ, are already in
    // the engine's quantizers; the exported ones follow).
    const { reconstruction: recon, sites: finalSites } = await reconstructModel((job) => model.exclusive(job), native, plan, images, numImages, sites, progress);
    progress({ stage: 'done' });
    return new QuantizedVit(model, plan, finalSites, weightQuantizers, { plan, reconstruction: recon, seconds: (Date.now() - t0) / 1000 });
  } catch (err) {
    await model.dispose();
    throw nativeError(err);
  } finally {
    options.signal?.removeEventListener('abort', abort);
  }
}
