// Activation and weight quantizers of a quantization plan, on the calibration images:
//  - joint (RepQ-ViT's initialization): every activation site from one pass of the
//    full-precision model, then the LayerNorm reparameterization, then the weights;
//  - sequential, block by block: the sites of block l are calibrated on the model whose
//    earlier blocks are already quantized (activations and weights), as RepQ-ViT's code
//    does when its quantizers calibrate during the forward, so each site's range is that
//    of the inputs the quantized model will really give it.

import { VitModel } from '../vit';
import { nativeAddon, ChannelQuantizer, SiteQuantizer, TensorQuantizer, WeightQuantizer, CalibrationRequest } from '../native';
import { QuantizeProgress, QuantPlan, SitePlan } from './quant-config';
import { reparameterizeLayerNorm } from './reparam';
import { uniformFromRange } from './rounding';

type Calibrated = { site: SitePlan; quantizer: TensorQuantizer | ChannelQuantizer }[];

/** Calibrates every planned activation site on the full-precision `model` (per tensor;
 *  per channel where the plan reparameterizes). */
export async function calibrateSites(model: VitModel, images: Float32Array, n: number, plan: QuantPlan, only?: (s: SitePlan) => boolean, onQuantizedModel = false): Promise<Calibrated> {
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
      const l = s.block!;
      const [norm, lin] = s.site === 'qkv_in' ? ['norm1', 'attn.qkv'] : ['norm2', 'mlp.fc1'];
      const p = `blocks.${l}.`;
      const r = reparameterizeLayerNorm(q as ChannelQuantizer, weights.get(`${p}${norm}.weight`)!, weights.get(`${p}${norm}.bias`)!, weights.get(`${p}${lin}.weight`)!, weights.get(`${p}${lin}.bias`)!);
      weights.set(`${p}${norm}.weight`, r.gamma);
      weights.set(`${p}${norm}.bias`, r.beta);
      weights.set(`${p}${lin}.weight`, r.weight);
      weights.set(`${p}${lin}.bias`, r.bias);
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
function weightQuantizersFor(model: VitModel, weights: Map<string, Float32Array>, plan: QuantPlan, only: (name: string) => boolean = () => true): WeightQuantizer[] {
  const addon = nativeAddon();
  return plan.weights.filter((w) => only(w.name)).map((w) => {
    const rows = model.paramSpecs.find((p) => p.name === w.name)!.shape[0];
    const data = weights.get(w.name)!;
    return { name: w.name, ...addon.quantSearch(data, rows, data.length / rows, 0, w.spec) };
  });
}

type Progress = (p: QuantizeProgress) => void;

export async function calibrateJoint(model: VitModel, weights: Map<string, Float32Array>, images: Float32Array, n: number, plan: QuantPlan, progress: Progress): Promise<{ sites: SiteQuantizer[]; weightQuantizers: WeightQuantizer[] }> {
  progress({ stage: 'calibrate' });
  const calibrated = await calibrateSites(model, images, n, plan);
  progress({ stage: 'reparameterize' });
  const sites = foldSites(calibrated, weights, plan);
  if (plan.reparameterize) await model.setWeights(weights);
  progress({ stage: 'weights' });
  return { sites, weightQuantizers: weightQuantizersFor(model, weights, plan) };
}

export async function calibrateSequential(model: VitModel, weights: Map<string, Float32Array>, images: Float32Array, n: number, plan: QuantPlan, progress: Progress): Promise<{ sites: SiteQuantizer[]; weightQuantizers: WeightQuantizer[] }> {
  progress({ stage: 'calibrate' });
  const native = model.nativeHandle();
  const sites: SiteQuantizer[] = [];
  const weightQuantizers: WeightQuantizer[] = [];
  // Stages in the order data flows: the patch embedding, each block, the head.
  const stages: { sites: (s: SitePlan) => boolean; weights: (name: string) => boolean }[] = [
    { sites: (s) => s.site === 'patch_in', weights: (w) => w.startsWith('patch_embed.') },
    ...Array.from({ length: model.config.depth }, (_, l) => ({ sites: (s: SitePlan) => s.block === l, weights: (w: string) => w.startsWith(`blocks.${l}.`) })),
    { sites: (s) => s.site === 'head_in', weights: (w) => w.startsWith('head') },
  ];
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
