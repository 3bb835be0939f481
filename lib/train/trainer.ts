// Supervised training of a model of the native engine (a ViT or a Swin, anything that is a
// TrainableModel: forward, backward with weight gradients, flat parameter and gradient
// arenas) with AdamW in TypeScript: how the bundled models are made from real data.
// Recipe defaults follow DeiT's (Touvron et al. 2021: AdamW, cosine schedule with
// warm-up, weight decay 0.05, label smoothing 0.1), scaled to small grayscale datasets.

import { SpdfqError } from '../errors';
import { LabelledImages } from '../data/labelled-images';
import type { VitModel } from '../vit';
import { EpochRecord, TrainState } from './checkpoint';
import { decays, TrainableModel } from './trainable';

/** The recipe's defaults (sources beside each option below); the training script's model
 *  card reports the values it used from here. */
export const TRAIN_DEFAULTS = {
  epochs: 15,
  batch: 128,
  lr: 1e-3,
  weightDecay: 0.05,
  warmupEpochs: 1,
  labelSmoothing: 0.1,
  cropPadding: 2,
} as const;

export interface TrainOptions {
  epochs?: number; // default 15 (ours: enough for ~90% on Fashion-MNIST at this size)
  batch?: number; // default 128 (ours)
  lr?: number; // peak AdamW learning rate, default 1e-3 (DeiT: 5e-4 × batch/512, raised for small models)
  weightDecay?: number; // default 0.05 (DeiT)
  warmupEpochs?: number; // default 1 (ours; DeiT: 5 of 300)
  labelSmoothing?: number; // default 0.1 (DeiT)
  /** Random crop after padding by this many pixels (0: off). Default 2 (ours). */
  cropPadding?: number;
  /** The padding's value per channel, in normalized units (torchvision's RandomCrop pads
   *  black: (0 − mean)/std). Default: each image's own top-left pixel, which is the
   *  background of MNIST-like sets. */
  padFill?: number[];
  /** Random horizontal flips. Default false (digits are not mirror-symmetric). */
  hflip?: boolean;
  seed?: number;
  onStep?: (s: { epoch: number; step: number; steps: number; loss: number; lr: number }) => void;
  /** Called after every epoch with the state that continues the run (for checkpoints). */
  onEpoch?: (e: EpochRecord, state: TrainState) => Promise<void> | void;
  test?: LabelledImages;
  /** Continue a run from its checkpoint (same data, recipe and epochs). */
  resumeFrom?: TrainState;
}

export interface TrainResult {
  epochs: EpochRecord[];
}

/** mulberry32, with its state readable so that a checkpoint can continue the stream. */
class Mulberry {
  constructor(public state: number) {
    this.state >>>= 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}

/** Top-1 accuracy (fraction) of `model` on a labelled set, in batches. */
export async function top1(model: TrainableModel, set: LabelledImages, batch = 256): Promise<number> {
  const c = model.config;
  const per = c.channels * c.imageHeight * c.imageWidth;
  const K = c.numClasses;
  let correct = 0;
  for (let s = 0; s < set.count; s += batch) {
    const b = Math.min(batch, set.count - s);
    const logits = await model.forwardLogits(set.images.subarray(s * per, (s + b) * per), b);
    for (let i = 0; i < b; i++) {
      let best = 0;
      for (let k = 1; k < K; k++) if (logits[i * K + k] > logits[i * K + best]) best = k;
      if (best === set.labels[s + i]) correct++;
    }
  }
  return correct / set.count;
}

/** The ViT name of trainModel, kept for its callers (the checkpoint test, the benchmark). */
export function trainVit(model: VitModel, data: LabelledImages, options: TrainOptions = {}): Promise<TrainResult> {
  return trainModel(model, data, options);
}

export async function trainModel(model: TrainableModel, data: LabelledImages, options: TrainOptions = {}): Promise<TrainResult> {
  const epochs = options.epochs ?? TRAIN_DEFAULTS.epochs;
  const batch = options.batch ?? TRAIN_DEFAULTS.batch;
  const peakLr = options.lr ?? TRAIN_DEFAULTS.lr;
  const wd = options.weightDecay ?? TRAIN_DEFAULTS.weightDecay;
  const warmup = options.warmupEpochs ?? TRAIN_DEFAULTS.warmupEpochs;
  const smoothing = options.labelSmoothing ?? TRAIN_DEFAULTS.labelSmoothing;
  const pad = options.cropPadding ?? TRAIN_DEFAULTS.cropPadding;
  const rng = new Mulberry(options.seed ?? 1);
  const rand = () => rng.next();
  const c = model.config;
  if (data.channels !== c.channels || data.height !== c.imageHeight || data.width !== c.imageWidth) {
    throw new SpdfqError('E_CONFIG', `training data is ${data.channels}×${data.height}×${data.width}, the model takes ${c.channels}×${c.imageHeight}×${c.imageWidth}`);
  }
  const native = model.nativeHandle();
  const resume = options.resumeFrom;
  const params = await model.exclusive(async () => native.getParams());
  if (resume && resume.params.length !== params.length) {
    throw new SpdfqError('E_CONFIG', `checkpoint holds ${resume.params.length} parameters, the model has ${params.length}`);
  }
  if (resume && resume.order.length !== data.count) {
    throw new SpdfqError('E_CONFIG', `checkpoint was trained on ${resume.order.length} images, this training set has ${data.count}`);
  }
  const m = resume ? resume.adamM.slice() : new Float32Array(params.length);
  const v = resume ? resume.adamV.slice() : new Float32Array(params.length);
  if (resume) {
    params.set(resume.params);
    await model.exclusive(async () => native.setParams(params));
    rng.state = resume.rngState;
  }
  const decay = decayMask(model.paramSpecs, params.length);
  const H = c.imageHeight;
  const W = c.imageWidth;
  const C = c.channels;
  if (options.padFill && (options.padFill.length !== C || options.padFill.some((f) => !Number.isFinite(f)))) {
    throw new SpdfqError('E_CONFIG', `padFill: expected ${C} finite numbers (one per channel), received ${JSON.stringify(options.padFill)}`);
  }
  const per = C * H * W;
  const K = c.numClasses;
  const stepsPerEpoch = Math.floor(data.count / batch);
  const total = epochs * stepsPerEpoch;
  const x = new Float32Array(batch * per);
  const dlogits = new Float32Array(batch * K);
  const order = resume ? resume.order.slice() : Int32Array.from({ length: data.count }, (_, i) => i);
  const result: TrainResult = { epochs: resume ? resume.history.slice() : [] };
  let t = resume ? resume.step : 0;
  for (let epoch = resume ? resume.epoch : 0; epoch < epochs; epoch++) {
    const t0 = Date.now();
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    let lossSum = 0;
    for (let step = 0; step < stepsPerEpoch; step++, t++) {
      augmentBatch(x, data, order, step * batch, batch, { pad, padFill: options.padFill, hflip: !!options.hflip }, rand);
      const logits = await model.forwardLogits(x, batch);
      const loss = smoothedCrossEntropy(dlogits, logits, data.labels, order, step * batch, batch, K, smoothing);
      if (!Number.isFinite(loss)) throw new SpdfqError('E_NUMERIC', `training loss became ${loss} at epoch ${epoch + 1}, step ${step}`);
      lossSum += loss;
      // The flat gradient arena, no per-tensor unpacking.
      await model.backwardWeights(dlogits);
      const lr = t < warmup * stepsPerEpoch ? (peakLr * (t + 1)) / (warmup * stepsPerEpoch) : 0.5 * peakLr * (1 + Math.cos((Math.PI * (t - warmup * stepsPerEpoch)) / Math.max(1, total - warmup * stepsPerEpoch)));
      await model.exclusive(async () => {
        adamwStep(params, native.getGrads(), m, v, decay, t, lr, wd);
        native.setParams(params);
      });
      options.onStep?.({ epoch, step, steps: stepsPerEpoch, loss, lr });
    }
    const rec: EpochRecord = { epoch: epoch + 1, loss: lossSum / stepsPerEpoch, seconds: (Date.now() - t0) / 1000 };
    if (options.test) rec.testTop1 = await top1(model, options.test);
    result.epochs.push(rec);
    await options.onEpoch?.(rec, { epoch: epoch + 1, step: t, rngState: rng.state, order, params, adamM: m, adamV: v, history: result.epochs });
  }
  return result;
}

/** 1 where AdamW decays the parameter (decays(): matrices other than embeddings, tokens
 *  and bias tables), over the flat arena in paramSpecs order. */
export function decayMask(specs: TrainableModel['paramSpecs'], length: number): Uint8Array {
  const mask = new Uint8Array(length);
  let off = 0;
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (decays(s)) mask.fill(1, off, off + n);
    off += n;
  }
  if (off !== length) throw new SpdfqError('E_CONFIG', `the parameter specs cover ${off} floats, the model's arena holds ${length}`);
  return mask;
}

/** Fills x with `count` augmented images, those at order[first …]: a random crop of the
 *  image padded by `pad` pixels (padFill per channel, or each image's corner value), then
 *  an optional horizontal flip. */
function augmentBatch(x: Float32Array, data: LabelledImages, order: Int32Array, first: number, count: number, aug: { pad: number; padFill?: number[]; hflip: boolean }, rand: () => number): void {
  const { channels: C, height: H, width: W } = data;
  const per = C * H * W;
  const pad = aug.pad;
  for (let b = 0; b < count; b++) {
    const src = order[first + b];
    const dy = pad ? Math.floor(rand() * (2 * pad + 1)) - pad : 0;
    const dx = pad ? Math.floor(rand() * (2 * pad + 1)) - pad : 0;
    const flip = aug.hflip && rand() < 0.5;
    for (let ch = 0; ch < C; ch++) {
      const base = src * per + ch * H * W;
      const fill = aug.padFill ? aug.padFill[ch] : data.images[base];
      for (let yy = 0; yy < H; yy++) {
        for (let xx = 0; xx < W; xx++) {
          const sy = yy + dy;
          const sx0 = xx + dx;
          const sx = flip ? W - 1 - sx0 : sx0;
          x[b * per + ch * H * W + yy * W + xx] = sy >= 0 && sy < H && sx >= 0 && sx < W ? data.images[base + sy * W + sx] : fill;
        }
      }
    }
  }
}

/** Cross-entropy with label smoothing, mean over the batch; writes d loss / d logits. */
function smoothedCrossEntropy(dlogits: Float32Array, logits: Float32Array, labels: Int32Array, order: Int32Array, first: number, count: number, K: number, smoothing: number): number {
  let loss = 0;
  for (let b = 0; b < count; b++) {
    const y = labels[order[first + b]];
    let mx = -Infinity;
    for (let k = 0; k < K; k++) mx = Math.max(mx, logits[b * K + k]);
    let se = 0;
    for (let k = 0; k < K; k++) se += Math.exp(logits[b * K + k] - mx);
    const lse = mx + Math.log(se);
    for (let k = 0; k < K; k++) {
      const target = (k === y ? 1 - smoothing : 0) + smoothing / K;
      const p = Math.exp(logits[b * K + k] - lse);
      loss -= target * (logits[b * K + k] - lse);
      dlogits[b * K + k] = (p - target) / count;
    }
  }
  return loss / count;
}

/** One AdamW step (β 0.9/0.999, decoupled weight decay where decay[i]) at step t (0-based). */
function adamwStep(params: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, decay: Uint8Array, t: number, lr: number, wd: number): void {
  const beta1 = 0.9;
  const beta2 = 0.999;
  const bc1 = 1 - beta1 ** (t + 1);
  const bc2 = 1 - beta2 ** (t + 1);
  for (let i = 0; i < params.length; i++) {
    const gi = g[i];
    m[i] = beta1 * m[i] + (1 - beta1) * gi;
    v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
    if (decay[i]) params[i] -= lr * wd * params[i];
    params[i] -= (lr * (m[i] / bc1)) / (Math.sqrt(v[i] / bc2) + 1e-8);
  }
}
