// The architectures of the models we train with our own engine (scripts/train-model.ts),
// shared with the benchmarks that time them.

import { VitConfigInput } from '../vit-config';

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
