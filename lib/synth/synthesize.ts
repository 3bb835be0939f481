// synthesize(model, options): calibration images for data-free quantization. SPDFQ, PSAQ-ViT
// and the plain inversion run as one native loop (native/synth) off the event loop, with
// progress and cancellation; Gaussian noise and real images are the references below and
// above every synthesis method. All methods return the same result shape. The model is a
// ViT (VitModel, CPU or CUDA) or a Swin (SwinModel, CPU; docs/swin.md, "Stage: synthesis").

import { SpdfqError } from '../errors';
import { SwinModel } from '../swin';
import { VitModel } from '../vit';
import { SynthModelShape, synthModelShape } from './model-shape';
import { rethrowNative, SynthesisStoppedError } from './errors';
import { nativeAddon, NativeSynthPlan, NativeSynthResult } from '../native';
import {
  clampRange,
  nativeSynthConfig,
  Preprocess,
  ResolvedSynthesisOptions,
  resolveSynthesisOptions,
  SynthesisOptions,
  SynthesisProgress,
  SynthMethod,
} from './options';
import { gaussian, mulberry32 } from './random';
import { loadRealImages } from './real-images';
import type { StepLossRecord, SynthesisResult } from './result';
import { sliceShard } from './shard-result';

export type { StepLossRecord, SynthesisResult } from './result';

/** Synthesizes (or loads) calibration images for `model`. Rejects with SynthesisStoppedError
 *  (E_CANCELLED / E_NUMERIC, with `partial`) when stopped early. */
export async function synthesize(model: VitModel | SwinModel, options: SynthesisOptions = {}): Promise<SynthesisResult> {
  const caller = new Error();
  const shape = synthModelShape(model.config);
  const o = resolveSynthesisOptions(shape, options);
  // A shard of noise or real images is the slice of the whole batch's (drawn or read in one
  // sequence, cheap next to synthesis).
  if (o.method === 'noise') return sliceShard(noiseImages(shape, o));
  if (o.method === 'real') return sliceShard(await loadRealImages(shape, o, options.signal));
  const cfg = nativeSynthConfig(shape, o);
  const signal = options.signal;
  const onProgress = options.onProgress;
  // exclusive: queued after the model's earlier calls, and later calls wait for the loop.
  return model.exclusive(async () => {
    if (signal?.aborted) throw new SpdfqError('E_CANCELLED', 'synthesis cancelled before it started');
    const addon = nativeAddon();
    let job: ReturnType<typeof addon.synthesize>;
    const progress = onProgress
      ? (p: Parameters<NonNullable<Parameters<typeof addon.synthesize>[2]>>[0]) => {
          // Steps done, counting the finished part of a step under way.
          const done = p.step + p.stepFraction;
          onProgress({ ...p, etaSeconds: done > 0 ? (p.seconds / done) * (p.totalSteps - done) : 0 } as SynthesisProgress);
        }
      : undefined;
    try {
      job = addon.synthesize(model.nativeHandle(), cfg, progress);
    } catch (err) {
      rethrowNative(err, caller);
    }
    const onAbort = () => job.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    let raw: NativeSynthResult;
    try {
      raw = await job.promise;
    } catch (err) {
      rethrowNative(err, caller);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    // The native loop returns the whole batch (a shard's other images as initialized).
    const result = sliceShard(fromNative(shape, model instanceof SwinModel ? model.config.depths : null, o, raw));
    if (raw.stop) throw new SynthesisStoppedError(raw.stop.code, raw.stop.message, result, raw.stop.step, raw.stop.part);
    return result;
  });
}

/** swinDepths: the Swin's blocks per stage, null for a ViT. */
function fromNative(c: SynthModelShape, swinDepths: number[] | null, o: ResolvedSynthesisOptions, raw: NativeSynthResult): SynthesisResult {
  const perRound = Math.floor(o.iters / o.rounds);
  const h = raw.history;
  const losses: StepLossRecord[] = Array.from({ length: raw.stepsDone }, (_, i) => ({
    step: i,
    round: Math.min(o.rounds - 1, perRound > 0 ? Math.floor(i / perRound) : 0),
    lr: h.lr[i],
    total: h.total[i],
    apa: h.apa[i],
    cls: h.cls[i],
    tv: h.tv[i],
    pse: h.pse[i],
    targetProb: h.targetProb[i],
  }));
  const p = raw.priors[0];
  return {
    method: o.method,
    images: raw.images,
    shape: [o.images, c.channels, c.imageHeight, c.imageWidth],
    targets: raw.targets,
    regionClasses: o.msr.enabled && o.msr.regionClasses === 'fixed' ? raw.cellClasses : null,
    softLogits: o.sl.enabled ? { own: raw.targetLogits, cells: o.msr.enabled ? raw.cellLogits : null } : null,
    priors: o.apa.enabled && !swinDepths
      ? { maps: p.maps, shape: [p.images, p.sets, p.heads, p.gridH, p.gridW], blocks: o.apa.blocks, query: o.apa.query }
      : null,
    ...(swinDepths ? { windowPriors: o.apa.enabled ? raw.priors.map((t) => windowPriorTable(t, o.apa.blocks, swinDepths)) : null } : {}),
    losses,
    alpha: o.apa.enabled ? raw.alpha : null,
    stepsDone: raw.stepsDone,
    totalSteps: o.iters,
    seconds: raw.seconds,
    plan: raw.plan,
    preprocess: o.preprocess,
    sources: null,
    options: o,
  };
}

/** One aligned Swin stage's window priors, with the aligned blocks (1-based, stage-major)
 *  that lie in that stage: the table's group is the stage. */
function windowPriorTable(t: NativeSynthResult['priors'][number], blocks: number[], depths: number[]): NonNullable<SynthesisResult['windowPriors']>[number] {
  const stageOf = depths.flatMap((d, s) => Array<number>(d).fill(s));
  return {
    stage: t.group,
    maps: t.maps,
    shape: [t.images, t.sets, t.heads, t.gridH, t.gridW],
    window: [t.windowH, t.windowW],
    blocks: blocks.filter((b) => stageOf[b - 1] === t.group),
  };
}

/** Gaussian noise in normalized space, clamped to the valid range: the floor every synthesis
 *  method must beat (PSAQ-ViT's and SPDFQ's "noise" row). */
export function noiseImages(c: SynthModelShape, o: ResolvedSynthesisOptions): SynthesisResult {
  const t0 = process.hrtime.bigint();
  const L = c.channels * c.imageHeight * c.imageWidth;
  const plane = c.imageHeight * c.imageWidth;
  const images = gaussian(o.images * L, mulberry32(o.seed), o.initStd);
  const { lo, hi } = clampRange(o.preprocess);
  for (let b = 0; b < o.images; b++)
    for (let ch = 0; ch < c.channels; ch++) {
      const base = b * L + ch * plane;
      for (let i = 0; i < plane; i++) images[base + i] = Math.min(hi[ch], Math.max(lo[ch], images[base + i]));
    }
  return {
    method: 'noise',
    images,
    shape: [o.images, c.channels, c.imageHeight, c.imageWidth],
    targets: new Int32Array(o.images).fill(-1),
    regionClasses: null,
    softLogits: null,
    priors: null,
    losses: [],
    alpha: null,
    stepsDone: 0,
    totalSteps: 0,
    seconds: Number(process.hrtime.bigint() - t0) / 1e9,
    plan: null,
    preprocess: o.preprocess,
    sources: null,
    options: o,
  };
}

/** The loss parts (and d total/d images) at `images` with the randomness of global step
 *  `step` — exactly what the loop optimizes there. For gradient checks and diagnostics. */
export async function synthesisObjective(
  model: VitModel | SwinModel,
  options: SynthesisOptions,
  images: Float32Array,
  step: number,
  alpha: number,
  wantGrad = true,
): Promise<{ losses: Omit<StepLossRecord, 'step' | 'round' | 'lr'>; grad: Float32Array | null }> {
  const caller = new Error();
  const shape = synthModelShape(model.config);
  const o = resolveSynthesisOptions(shape, options);
  if (o.method === 'noise' || o.method === 'real') {
    throw new SpdfqError('E_CONFIG', `synthesisObjective: expected an optimizing method (spdfq, psaq, inversion), received '${o.method}'`);
  }
  const L = shape.channels * shape.imageHeight * shape.imageWidth;
  if (!(images instanceof Float32Array) || images.length !== o.images * L) {
    throw new SpdfqError('E_TENSOR', `images: expected a Float32Array of ${o.images * L} floats (${o.images} images), received ${images instanceof Float32Array ? images.length : typeof images}`);
  }
  const cfg = nativeSynthConfig(shape, o);
  return model.exclusive(async () => {
    try {
      return await nativeAddon().synthObjective(model.nativeHandle(), cfg, images, step, alpha, wantGrad);
    } catch (err) {
      rethrowNative(err, caller);
    }
  });
}

/** The micro-batching the loop would use under the options' memory budget (validates the
 *  options natively too; runs nothing). */
export async function synthesisPlan(model: VitModel | SwinModel, options: SynthesisOptions = {}): Promise<NativeSynthPlan> {
  const caller = new Error();
  const shape = synthModelShape(model.config);
  const o = resolveSynthesisOptions(shape, options);
  const cfg = nativeSynthConfig(shape, o);
  return model.exclusive(async () => {
    try {
      return nativeAddon().synthPlan(model.nativeHandle(), cfg);
    } catch (err) {
      rethrowNative(err, caller);
    }
  });
}
