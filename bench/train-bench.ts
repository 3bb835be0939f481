// Cost of one training step (lib/train/trainer.ts: augmentation, forward, label-smoothed
// cross-entropy, backward with weight gradients, AdamW) beside the engine's own forward +
// backward-with-weight-gradients of the same batch, on the CIFAR-10 model's shape (batch
// 128): the trainer's overhead as a ratio, its images/s, and the GFLOP/s it reaches
// (training counted as 3× the forward's FLOPs: forward, input and weight gradients).

import { LabelledImages } from '../lib/data/labelled-images';
import { trainVit } from '../lib/train/trainer';
import { CIFAR_ARCH } from '../lib/train/architectures';
import { createVit, randomVitWeights } from '../lib/vit';
import { completeVitConfig } from '../lib/vit-config';
import { vitCost } from '../lib/onnx/vit-cost';
import { timeMedian } from './timing';

export const TRAIN_BENCH_BATCH = 128;

export interface TrainBench {
  train_step_cifar_b128_s: number;
  forward_backward_weights_cifar_b128_s: number;
  train_step_over_forward_backward: number;
  train_images_per_s: number;
  train_gflops: number;
}

export async function trainBench(threads: number, repeats = 3): Promise<TrainBench> {
  const config = completeVitConfig(CIFAR_ARCH);
  const B = TRAIN_BENCH_BATCH;
  const steps = 4;
  const per = config.channels * config.imageHeight * config.imageWidth;
  const data: LabelledImages = {
    images: new Float32Array(B * steps * per).map((_, i) => Math.sin(i * 0.01)),
    labels: Int32Array.from({ length: B * steps }, (_, i) => i % config.numClasses),
    count: B * steps,
    channels: config.channels,
    height: config.imageHeight,
    width: config.imageWidth,
  };
  const model = await createVit(config, randomVitWeights(config, 1), { threads });
  try {
    const native = model.nativeHandle();
    const x = data.images.subarray(0, B * per);
    const dlogits = new Float32Array(B * config.numClasses).fill(1 / (B * config.numClasses));
    const fwdBwd = await timeMedian(repeats, async () => {
      await model.forward(x, B);
      await model.exclusive(() => native.backward(dlogits, null, null, true));
    });
    // One epoch of `steps` steps with the CIFAR recipe's augmentation (crop with padding, flips).
    const epoch = await timeMedian(repeats, () => trainVit(model, data, { epochs: 1, batch: B, cropPadding: 4, hflip: true, warmupEpochs: 0 }));
    const step = epoch / steps;
    const flopsPerImage = vitCost(config).flops;
    return {
      train_step_cifar_b128_s: step,
      forward_backward_weights_cifar_b128_s: fwdBwd,
      train_step_over_forward_backward: Math.round((step / fwdBwd) * 1000) / 1000,
      train_images_per_s: Math.round(B / step),
      train_gflops: Math.round(((3 * flopsPerImage * B) / step / 1e9) * 10) / 10,
    };
  } finally {
    await model.dispose();
  }
}

if (require.main === module) {
  const threads = Number(process.argv[2] ?? 1);
  trainBench(threads)
    .then((r) => process.stdout.write(`${JSON.stringify({ threads, ...r }, null, 2)}\n`))
    .catch((err: Error) => {
      process.stderr.write(`train bench failed: ${err.stack ?? err.message}\n`);
      process.exit(1);
    });
}
