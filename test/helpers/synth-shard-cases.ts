// The synthesis runs that pin the unsplit loop (test/synth.unsplit-pin.test.ts) and that the
// shard tests split (test/synth.shard.test.ts): every native method's loss parts on, off and
// micro-batched, on a tiny ViT and a tiny Swin. One list, so the pins and the shard checks
// cover the same runs.

import { createHash } from 'crypto';
import { createSwin, SwinConfigInput, SwinModel } from '../../lib/swin';
import { SynthesisOptions } from '../../lib/synth/options';
import { SynthesisResult } from '../../lib/synth/synthesize';
import { createVit, VitModel } from '../../lib/vit';
import { VitConfigInput } from '../../lib/vit-config';
import { sizableSwinWeights, sizableWeights } from './synth-model';

export const VIT_CFG: VitConfigInput = { imageSize: 12, channels: 3, patchSize: 3, embedDim: 16, depth: 4, numHeads: 2, mlpDim: 24, numClasses: 6 };
export const VIT_PRE = { mean: [0.5, 0.4, 0.3], std: [0.25, 0.25, 0.3] };
export const SWIN_CFG: SwinConfigInput = {
  imageSize: 10, channels: 2, patchSize: 2, embedDim: 4, depths: [2, 2], numHeads: [2, 2], windowSize: 3, mlpRatio: 2, numClasses: 3,
};
export const SWIN_PRE = { mean: [0.5, 0.5], std: [0.5, 0.5] };

/** The tiny ViT of the loop tests, on 2 threads (the SIMD GEMM, rows split across threads). */
export const tinyVit = (): Promise<VitModel> => createVit(VIT_CFG, sizableWeights(VIT_CFG, 33), { threads: 2 });
/** A tiny Swin with shifted, padded windows, on the SIMD GEMM. */
export const tinySwin = (): SwinModel => createSwin(SWIN_CFG, sizableSwinWeights(SWIN_CFG, 7), { threads: 2 });

// Budgets that force a few images per pass on the tiny ViT (the plans are recorded in the
// pins and checked to be micro-batched): at 300 KiB SPDFQ passes 2 images and 2 regions,
// inversion 3 images (7 = 3 + 3 + 1); at 500 KiB SPDFQ passes 5 images and 5 regions.
const SMALL_BUDGET = 300 * 1024;
const MID_BUDGET = 500 * 1024;

export interface SynthCase {
  name: string;
  model: 'vit' | 'swin';
  options: SynthesisOptions;
  /** Refused in a shard (the reason is checked by the shard test). */
  unshardable?: boolean;
  microBatched?: boolean;
}

const base: SynthesisOptions = { images: 7, iters: 4, seed: 5, preprocess: VIT_PRE };
const spdfqAll: SynthesisOptions = { ...base, method: 'spdfq', apa: { enabled: true }, msr: { enabled: true }, sl: true };
const spdfqNone: SynthesisOptions = { ...base, method: 'spdfq', apa: false, msr: false, sl: false };
const spdfqAuto: SynthesisOptions = { ...base, method: 'spdfq', seed: 2, apa: { alpha: 'auto', loss: 'mse' }, msr: { enabled: true, regionClasses: 'resample' } };

export const SYNTH_CASES: SynthCase[] = [
  { name: 'spdfq APA+MSR+SL', model: 'vit', options: spdfqAll },
  { name: 'spdfq APA+MSR+SL micro-batched', model: 'vit', options: { ...spdfqAll, memoryBudgetBytes: SMALL_BUDGET }, microBatched: true },
  { name: 'spdfq APA+MSR+SL 5 per pass', model: 'vit', options: { ...spdfqAll, memoryBudgetBytes: MID_BUDGET }, microBatched: true },
  { name: 'spdfq APA, MSR, SL off', model: 'vit', options: spdfqNone },
  { name: 'spdfq APA, MSR, SL off micro-batched', model: 'vit', options: { ...spdfqNone, memoryBudgetBytes: SMALL_BUDGET }, microBatched: true },
  { name: 'spdfq auto α1, resampled MSR classes, hard labels', model: 'vit', options: spdfqAuto },
  { name: 'spdfq auto α1 micro-batched', model: 'vit', options: { ...spdfqAuto, memoryBudgetBytes: SMALL_BUDGET }, microBatched: true },
  { name: 'inversion', model: 'vit', options: { ...base, method: 'inversion' } },
  { name: 'inversion micro-batched', model: 'vit', options: { ...base, method: 'inversion', memoryBudgetBytes: SMALL_BUDGET }, microBatched: true },
  { name: 'noise', model: 'vit', options: { ...base, method: 'noise' } },
  { name: 'psaq', model: 'vit', options: { ...base, method: 'psaq', iters: 4 }, unshardable: true },
  { name: 'psaq micro-batched', model: 'vit', options: { ...base, method: 'psaq', iters: 4, memoryBudgetBytes: SMALL_BUDGET }, unshardable: true, microBatched: true },
  { name: 'swin spdfq APA+MSR+SL', model: 'swin', options: { ...spdfqAll, preprocess: SWIN_PRE } },
  { name: 'swin inversion', model: 'swin', options: { ...base, method: 'inversion', preprocess: SWIN_PRE } },
];

const sha = (a: ArrayBufferView): string => createHash('sha256').update(Buffer.from(a.buffer, a.byteOffset, a.byteLength)).digest('hex');

/** What a pin records of a run: the images' bytes, the draws, α1 and every loss, exactly. */
export function runDigest(r: SynthesisResult): Record<string, unknown> {
  return {
    images: sha(r.images),
    targets: Array.from(r.targets),
    alpha: r.alpha,
    plan: r.plan ? { chunkImages: r.plan.chunkImages, regionBatch: r.plan.regionBatch } : null,
    // Losses as the shortest round-trip decimal of each double: equal strings, equal bits.
    losses: sha(new Float64Array(r.losses.flatMap((l) => [l.total, l.apa, l.cls, l.tv, l.pse, l.targetProb]))),
  };
}
