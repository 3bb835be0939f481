// The architectures of the models we train with our own engine (scripts/train-model.ts),
// shared with the benchmarks that time them.

import { VitConfigInput } from '../vit-config';
import type { SwinConfigInput } from '../swin';

/** The bundled architecture: DeiT-style (class token, pre-norm), 7×7 patch grid. Sized so
 *  that the default `run` (SPDFQ synthesis, calibration, reconstruction, evaluation)
 *  finishes in about three minutes on 2 cores. */
export const BUNDLED_ARCH: VitConfigInput = {
  imageSize: 28, channels: 1, patchSize: 4, embedDim: 64, depth: 6, numHeads: 4, mlpDim: 128, numClasses: 10,
  classToken: true, pooling: 'token', normPlacement: 'pre', layerNormEps: 1e-6, activation: 'gelu',
};

/** The MNIST model: patch 2 on 28×28 gives a 14×14 token grid, the grid of ImageNet ViTs
 *  (224 / 16), where attention priors have ImageNet-like structure to act on. Four blocks
 *  keep its 197-token passes affordable on 2 cores. */
export const GRID14_ARCH: VitConfigInput = {
  imageSize: 28, channels: 1, patchSize: 2, embedDim: 64, depth: 4, numHeads: 4, mlpDim: 128, numClasses: 10,
  classToken: true, pooling: 'token', normPlacement: 'pre', layerNormEps: 1e-6, activation: 'gelu',
};

/** The CIFAR-10 model: DeiT-style on 32×32 RGB, patch 4 (8×8 token grid). Width 128 and
 *  six blocks (0.81 M parameters) train at ~2 min an epoch on one core of the development
 *  machine; a third-party 0.8 M-parameter CIFAR-10 ViT reports 73.7 %. */
export const CIFAR_ARCH: VitConfigInput = {
  imageSize: 32, channels: 3, patchSize: 4, embedDim: 128, depth: 6, numHeads: 4, mlpDim: 256, numClasses: 10,
  classToken: true, pooling: 'token', normPlacement: 'pre', layerNormEps: 1e-6, activation: 'gelu',
};

/** Swin candidates for CIFAR-10 (32×32 RGB): patch 2 gives a 16×16 token grid, window 4
 *  gives 16-token windows (4×4 of them), and each stage halves the grid (16 → 8 → 4; the
 *  last stage's window covers its whole grid, so its shift is off). The Swin-T width
 *  ratios (heads double with the width, head dimension fixed) scaled down to CIFAR size.
 *  bench/train-swin-bench.ts times them; SWIN_CIFAR_ARCH below is the one we train. */
export const SWIN_CIFAR_CANDIDATES: Record<string, SwinConfigInput> = {
  // 48 wide, head dim 16, MLP ratio 2: the cheapest.
  'e48-222-m2': {
    imageSize: 32, channels: 3, patchSize: 2, windowSize: 4, embedDim: 48, depths: [2, 2, 2], numHeads: [3, 6, 12], mlpRatio: 2, numClasses: 10,
  },
  // 64 wide, head dim 32, MLP ratio 2.
  'e64-222-m2': {
    imageSize: 32, channels: 3, patchSize: 2, windowSize: 4, embedDim: 64, depths: [2, 2, 2], numHeads: [2, 4, 8], mlpRatio: 2, numClasses: 10,
  },
  // 48 wide with Swin-T's MLP ratio 4 and a deeper last stage (Swin-T's depth pattern, short).
  'e48-226-m4': {
    imageSize: 32, channels: 3, patchSize: 2, windowSize: 4, embedDim: 48, depths: [2, 2, 6], numHeads: [3, 6, 12], mlpRatio: 4, numClasses: 10,
  },
};

/** The CIFAR-10 Swin we train (scripts/train-model.ts --dataset cifar10-swin). */
export const SWIN_CIFAR_ARCH: SwinConfigInput = SWIN_CIFAR_CANDIDATES['e48-222-m2'];

/** Its epochs and warm-up: 30 epochs with 2 warm-up epochs (the Swin paper's 20 of 300 on
 *  ImageNet-1K, scaled). A first 80-epoch run of this recipe (5 warm-up epochs) passed 75 %
 *  test top-1 at epoch 31 (learning rate at 73 % of its peak) and reached 80.35 % by epoch 56
 *  (23 %); its checkpoint was lost with the machine before it finished. 30 epochs (about
 *  75 min on one core) finish the cosine inside one working session; the card records
 *  what they reach. */
export const SWIN_CIFAR_RECIPE = { epochs: 30, warmupEpochs: 2 } as const;

/** Why SWIN_CIFAR_ARCH, for its model card (measured by bench/train-swin-bench.ts). */
export const SWIN_CIFAR_WHY =
  'the cheapest of three measured candidates and the quickest to 75 %. On one core of the development machine (CPU seconds, ' +
  'bench/train-swin-bench.ts) embed 48 / depths [2, 2, 2] / heads [3, 6, 12] / MLP ratio 2 (0.88 M parameters) trains at 334 images/s, ' +
  'embed 64 / [2, 2, 2] / MLP 2 (1.56 M) at 246 and embed 48 / [2, 2, 6] / MLP 4 (3.05 M) at 184: 80 epochs take about 3.5 h, 4.8 h and 6.4 h. ' +
  'Its size matches the 0.81 M-parameter CIFAR-10 ViT (models/cifar10-vit.md, 78 % after 60 epochs of the same recipe), and windowed ' +
  'attention with a 16×16 token grid gives it the locality prior that ViT lacks, so we expect 75 % by the middle of the cosine; we do not ' +
  'expect this recipe (crop + flip only, no mixup or stochastic depth) to use the wider candidates\' extra capacity. Patch 2 and window 4 ' +
  'are the CIFAR adaptation of Swin-T\'s patch 4 / window 7 on 224 px: a 16×16 grid of 4×4 windows halving to 8×8 and 4×4 (the last stage ' +
  'is one window, unshifted); heads keep Swin-T\'s head dimension ratio (16 here, 32 there) and double with the width.';
