// quantize(swinModel, images, n, options) (docs/swin.md, "Stage: quantization"): the ViT's
// pipeline on a Swin — calibration (joint or sequential, calibration.ts), RepQ-ViT's
// reparameterization of the post-LayerNorm sites (qkv, fc1 and reduction inputs), per-
// channel weight quantizers, block reconstruction of every block and patch merging
// (reconstruction.ts; native/quant/reconstruct_swin.cc) — on a copy of the model,
// returning a QuantizedSwin that runs the fake-quantized simulation and knows every
// quantizer (for export).

import { SpdfqError } from '../errors';
import { writeFileAtomic } from '../io/atomic';
import { LabelledImages } from '../data/labelled-images';
import { evaluate, Evaluation, EvaluateOptions } from '../eval/evaluate';
import { SiteQuantizer, StageReport, WeightQuantizer } from '../native';
import { createSwin, SwinConfig, SwinModel } from '../swin';
import { calibrateJoint, calibrateSequential, checkCalibrationImages, checkFiniteWeights, nativeError } from './calibration';
import { QuantizeProgress, QuantOptions, QuantPlan } from './quant-config';
import { reconstructModel } from './reconstruction';
import { planSwinQuantization, swinCalibrationStages, swinMergePrefix } from './swin-quant-config';
import { exportQuantizedSwinOnnx } from './export-swin-onnx';
import { QuantExportOptions, QuantExportResult } from './export-onnx';

export interface SwinQuantizeOptions extends QuantOptions {
  threads?: number;
  onProgress?: (p: QuantizeProgress) => void;
  signal?: AbortSignal;
}

/** A quantized Swin: the engine running fake-quantized weights and activations. */
export class QuantizedSwin {
  constructor(
    readonly model: SwinModel,
    readonly plan: QuantPlan,
    readonly sites: SiteQuantizer[],
    readonly weightQuantizers: WeightQuantizer[],
    /** The full-precision weights behind the quantizers (after reparameterization and reconstruction). */
    private readonly weights: Map<string, Float32Array>,
    /** As a QuantizedVit's: the plan, each reconstruction stage's MSE before and after
     *  (stages 'features.0', 'features.1.0', 'features.2', …, 'head'; [] when none ran). */
    readonly report: { plan: QuantPlan; reconstruction: StageReport[]; seconds: number },
  ) {}

  get config(): SwinConfig {
    return this.model.config;
  }

  /** Logits of the quantized model (simulation: integer grids, float arithmetic). */
  forward(images: Float32Array, batch: number): Promise<Float32Array> {
    return this.model.forward(images, batch);
  }

  getWeights(): Map<string, Float32Array> {
    return new Map(this.weights);
  }

  /** Top-1 / top-5 of the quantized model on a labelled set. */
  async evaluate(set: LabelledImages, options: EvaluateOptions = {}): Promise<Evaluation> {
    return evaluate((x, b) => this.forward(x, b), set, this.config.numClasses, options);
  }

  /** Writes the quantized ONNX (export-swin-onnx.ts); returns the export's details. */
  async exportOnnx(file: string, options: QuantExportOptions = {}): Promise<QuantExportResult> {
    const res = exportQuantizedSwinOnnx(this, options);
    writeFileAtomic(file, res.bytes);
    return res;
  }

  async dispose(): Promise<void> {
    await this.model.dispose();
  }
}

export async function quantizeSwin(source: SwinModel, images: Float32Array, numImages: number, options: SwinQuantizeOptions = {}): Promise<QuantizedSwin> {
  const t0 = Date.now();
  const c0 = source.config;
  checkCalibrationImages(images, numImages, c0.channels * c0.imageHeight * c0.imageWidth);
  const plan = planSwinQuantization(c0, options);
  const progress = options.onProgress ?? (() => undefined);
  const weights = await source.getWeights();
  checkFiniteWeights(weights);
  // Reparameterization folds a bias into qkv and into each merge's reduction: zero biases
  // where the model has none (torchvision's reduction never has one).
  let config = c0;
  if (plan.reparameterize) {
    config = { ...config, qkvBias: true, reductionBias: true };
    let l = 0;
    c0.depths.forEach((depth, s) => {
      const D = c0.embedDim * 2 ** s;
      for (let i = 0; i < depth; i++, l++) {
        const name = `features.${2 * s + 1}.${i}.attn.qkv.bias`;
        if (!weights.has(name)) weights.set(name, new Float32Array(3 * D));
      }
      if (s + 1 < c0.depths.length) {
        const name = `${swinMergePrefix(s)}reduction.bias`;
        if (!weights.has(name)) weights.set(name, new Float32Array(2 * D));
      }
    });
  }
  const model = createSwin(config, weights, { threads: options.threads });
  const native = model.nativeHandle();
  const abort = () => native.cancel();
  options.signal?.addEventListener('abort', abort, { once: true });
  try {
    if (options.signal?.aborted) throw new SpdfqError('E_CANCELLED', 'quantization cancelled');
    const { sites, weightQuantizers } = plan.calibration === 'sequential'
      ? await calibrateSequential(model, swinCalibrationStages(config), weights, images, numImages, plan, progress)
      : await calibrateJoint(model, weights, images, numImages, plan, progress);
    await model.exclusive(async () => {
      native.setActQuant(sites);
      native.setWeightQuant(weightQuantizers);
    });
    // Block reconstruction: the fp weights change, and LSQ's steps with them.
    const { reconstruction, sites: finalSites } = await reconstructModel((job) => model.exclusive(job), native, plan, images, numImages, sites, progress);
    const finalWeights = reconstruction.length > 0 ? await model.getWeights() : weights;
    progress({ stage: 'done' });
    return new QuantizedSwin(model, plan, finalSites, weightQuantizers, finalWeights, { plan, reconstruction, seconds: (Date.now() - t0) / 1000 });
  } catch (err) {
    await model.dispose();
    throw nativeError(err);
  } finally {
    options.signal?.removeEventListener('abort', abort);
  }
}
