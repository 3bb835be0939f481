// Activation and weight quantizers of a quantization plan, on the calibration images:
//  - joint (RepQ-ViT's initialization): every activation site from one pass of the
//    full-precision model, then the LayerNorm reparameterization, then the weights;
//  - sequential, block by block: the sites of block l are calibrated on the model whose
//    earlier blocks are already quantized (activations and weights), as RepQ-ViT's code
//    does when its quantizers calibrate during the forward, so each site's range is that
//    of the inputs the quantized model will really give it.
// Written once for every model class with the native quantization hooks (VitModel,
// SwinModel: QuantizableModel).

import { SpdfqError } from '../errors';
import { isFloat32Array } from '../vit';
import { nativeAddon, ChannelQuantizer, NativeQuantHooks, SiteQuantizer, TensorQuantizer, WeightQuantizer, CalibrationRequest } from '../native';
import { QuantizeProgress, QuantPlan, SitePlan } from './quant-config';
import { reparameterizeLayerNorm } from './reparam';
import { uniformFromRange } from './rounding';

type Calibrated = { site: SitePlan; quantizer: TensorQuantizer | ChannelQuantizer }[];

/** What calibration needs of a model (VitModel and SwinModel have it). */
export interface QuantizableModel {
  readonly paramSpecs: { name: string; shape: number[] }[];
  nativeHandle(): NativeQuantHooks;
  exclusive<T>(job: () => Promise<T>): Promise<T>;
  setWeights(weights: Map<string, Float32Array>): Promise<void>;
}

/** One step of sequential calibration: the sites and the weights of one stage of the
 *  model (patch embedding, a block, a patch merging, the head), in data-flow order. */
export interface CalibrationStage {
  sites: (s: SitePlan) => boolean;
  weights: (name: string) => boolean;
}

/** Calibrates every planned activation site on the full-precision `model` (per tensor;
 *  per channel where the plan reparameterizes). */
export async function calibrateSites(model: QuantizableModel, images: Float32Array, n: number, plan: QuantPlan, only?: (s: SitePlan) => boolean, onQuantizedModel = false): Promise<Calibrated> {
  const native = model.nativeHandle();
  const active = plan.sites.filter((s) => s.spec !== null && (!only || only(s)));
  const requests: CalibrationRequest[] = active.map((s) => ({ site: s.site, block: s.block, perChannel: s.perChannelForReparam, ...s.spec! }));
  const calibrated = await model.exclusive(() => native.calibrate(images, n, Math.min(plan.calibrationBatch, n), requests, onQuantizedModel));
  return active.map((site, i) => ({ site, quantizer: calibrated[i] }));
}


/** The per-tensor quantizers of calibrated sites; per-channel ones (post-LayerNorm inputs)
 *  are folded into the LayerNorm and the next Linear (RepQ-ViT), changing `weights`. */
function foldSites(calibrated: Calibrated, weights: Map<string, Float32Array>, plan: QuantPlan): SiteQuantizer[] {
  const sites: SiteQuantizer[] = [];
  for (const { site: s, quantizer: q } of calibrated) {
    if (s.perChannelForReparam) {
      const { norm, linear: lin } = s.reparam!;
      const r = reparameterizeLayerNorm(q as ChannelQuantizer, weights.get(`${norm}.weight`)!, weights.get(`${norm}.bias`)!, weights.get(`${lin}.weight`)!, weights.get(`${lin}.bias`)!);
      weights.set(`${norm}.weight`, r.gamma);
      weights.set(`${norm}.bias`, r.beta);
      weights.set(`${lin}.weight`, r.weight);
      weights.set(`${lin}.bias`, r.bias);
      sites.push({ site: s.site, block: s.block, ...r.quantizer });
    } else if (s.site === 'patch_in' && plan.inputRange) {
      // The image quantizer covers the known pixel range rather than the calibration images'.
      const t = q as TensorQuantizer;
      sites.push({ site: s.site, block: s.block, ...t, ...uniformFromRange(plan.inputRange[0], plan.inputRange[1], t.bits, t.qmin < 0) });
    } else {
      sites.push({ site: s.site, block: s.block, ...(q as TensorQuantizer) });
    }
  }
  return sites;
}

/** Per-channel weight quantizers of the planned weights whose names pass `only`. */
function weightQuantizersFor(model: QuantizableModel, weights: Map<string, Float32Array>, plan: QuantPlan, only: (name: string) => boolean = () => true): WeightQuantizer[] {
  const addon = nativeAddon();
  return plan.weights.filter((w) => only(w.name)).map((w) => {
    const rows = model.paramSpecs.find((p) => p.name === w.name)!.shape[0];
    const data = weights.get(w.name)!;
    return { name: w.name, ...addon.quantSearch(data, rows, data.length / rows, 0, w.spec) };
  });
}

type Progress = (p: QuantizeProgress) => void;

export async function calibrateJoint(model: QuantizableModel, weights: Map<string, Float32Array>, images: Float32Array, n: number, plan: QuantPlan, progress: Progress): Promise<{ sites: SiteQuantizer[]; weightQuantizers: WeightQuantizer[] }> {
  progress({ stage: 'calibrate' });
  const calibrated = await calibrateSites(model, images, n, plan);
  progress({ stage: 'reparameterize' });
  const sites = foldSites(calibrated, weights, plan);
  if (plan.reparameterize) await model.setWeights(weights);
  progress({ stage: 'weights' });
  return { sites, weightQuantizers: weightQuantizersFor(model, weights, plan) };
}

export async function calibrateSequential(model: QuantizableModel, stages: CalibrationStage[], weights: Map<string, Float32Array>, images: Float32Array, n: number, plan: QuantPlan, progress: Progress): Promise<{ sites: SiteQuantizer[]; weightQuantizers: WeightQuantizer[] }> {
  progress({ stage: 'calibrate' });
  const native = model.nativeHandle();
  const sites: SiteQuantizer[] = [];
  const weightQuantizers: WeightQuantizer[] = [];
  for (const stage of stages) {
    const calibrated = await calibrateSites(model, images, n, plan, stage.sites, true);
    sites.push(...foldSites(calibrated, weights, plan));
    if (plan.reparameterize) await model.setWeights(weights);
    weightQuantizers.push(...weightQuantizersFor(model, weights, plan, stage.weights));
    await model.exclusive(async () => {
      native.setActQuant(sites);
      native.setWeightQuant(weightQuantizers);
    });
  }
  return { sites, weightQuantizers };
}

/** A ViT's stages in the order data flows: the patch embedding, each block, the head. */
export function vitCalibrationStages(depth: number): CalibrationStage[] {
  return [
    { sites: (s) => s.site === 'patch_in', weights: (w) => w.startsWith('patch_embed.') },
    ...Array.from({ length: depth }, (_, l) => ({ sites: (s: SitePlan) => s.block === l && s.site !== 'reduce_in', weights: (w: string) => w.startsWith(`blocks.${l}.`) })),
    { sites: (s) => s.site === 'head_in', weights: (w) => w.startsWith('head') },
  ];
}

/** Refuses calibration images that are not `n` finite images of `imageLength` floats. */
/** The source model's weights, refused when one holds a NaN or infinity (a damaged file). */
export function checkFiniteWeights(weights: Map<string, Float32Array>): void {
  for (const [name, w] of weights) {
    const i = w.findIndex((v) => !Number.isFinite(v));
    if (i >= 0) throw new SpdfqError('E_NUMERIC', `the model's weight ${name} holds ${w[i]} at index ${i}; the model file is damaged (expected finite weights)`);
  }
}

export function checkCalibrationImages(images: Float32Array, n: number, imageLength: number): void {
  if (!Number.isInteger(n) || n < 1) throw new SpdfqError('E_CONFIG', `number of calibration images: expected a positive integer, received ${n}`);
  if (!isFloat32Array(images) || images.length !== n * imageLength) {
    throw new SpdfqError('E_TENSOR', `calibration images: expected a Float32Array of ${n} × ${imageLength} floats, received ${isFloat32Array(images) ? images.length : typeof images}`);
  }
  for (let i = 0; i < images.length; i++) {
    if (!Number.isFinite(images[i])) throw new SpdfqError('E_NUMERIC', `calibration images: value ${i} is ${images[i]}; expected finite numbers`);
  }
}

/** A native failure as a SpdfqError with its code (E_NATIVE when it has none). */
export function nativeError(err: unknown): SpdfqError {
  if (err instanceof SpdfqError) return err;
  const e = err as Error & { code?: string };
  return new SpdfqError((e.code?.startsWith('E_') ? e.code : 'E_NATIVE') as SpdfqError['code'], e.message, { cause: err });
}
