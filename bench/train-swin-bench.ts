// Training throughput of the CIFAR-10 Swin candidates (lib/train/architectures.ts) on one
// thread: a few optimizer steps of the real recipe (trainer.ts: crop + flip, forward,
// label-smoothed cross-entropy, backward with weight gradients, AdamW) on synthetic
// images, plus a test-set-style forward, and the epoch time they imply for CIFAR-10's
// 50,000 training and 10,000 test images. Timed in this process's CPU seconds (user +
// system), so a core shared with other work still gives the one-core rate; wall seconds
// beside them. Usage: node dist/bench/train-swin-bench.js [steps] [name…]

import { LabelledImages } from '../lib/data/labelled-images';
import { trainModel } from '../lib/train/trainer';
import { SWIN_CIFAR_CANDIDATES } from '../lib/train/architectures';
import { createSwin, randomSwinWeights, swinParamSpecs, completeSwinConfig } from '../lib/swin';

const BATCH = 128; // TRAIN_DEFAULTS.batch
const TRAIN_IMAGES = 50000;
const TEST_IMAGES = 10000;

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
}

async function timeCandidate(name: string, steps: number): Promise<Record<string, number | string>> {
  const config = completeSwinConfig(SWIN_CIFAR_CANDIDATES[name]);
  const per = config.channels * config.imageHeight * config.imageWidth;
  const count = BATCH * steps;
  const data: LabelledImages = {
    images: new Float32Array(count * per).map((_, i) => Math.sin(i * 0.01)),
    labels: Int32Array.from({ length: count }, (_, i) => i % config.numClasses),
    count, channels: config.channels, height: config.imageHeight, width: config.imageWidth,
  };
  const model = createSwin(config, randomSwinWeights(config, 1), { threads: 1 });
  try {
    await trainModel(model, data, { epochs: 1, batch: BATCH, warmupEpochs: 0 }); // warm-up: arenas, caches
    const w0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    await trainModel(model, data, { epochs: 1, batch: BATCH, cropPadding: 4, hflip: true, warmupEpochs: 0 });
    const trainS = cpuSeconds(c0) / count;
    const trainWallS = Number(process.hrtime.bigint() - w0) / 1e9 / count;
    // The test pass's batch (top1: 256) after one warm-up pass that allocates its arena.
    await model.forwardLogits(data.images.subarray(0, 256 * per), 256);
    const c1 = process.cpuUsage();
    await model.forwardLogits(data.images.subarray(0, 256 * per), 256);
    const evalS = cpuSeconds(c1) / 256;
    const params = swinParamSpecs(config).reduce((s, p) => s + p.size, 0);
    return {
      name,
      params,
      train_images_per_cpu_s: Math.round(1 / trainS),
      train_images_per_wall_s: Math.round(1 / trainWallS),
      eval_images_per_cpu_s: Math.round(1 / evalS),
      epoch_minutes: Math.round(((TRAIN_IMAGES * trainS + TEST_IMAGES * evalS) / 60) * 10) / 10,
    };
  } finally {
    await model.dispose();
  }
}

async function main(): Promise<void> {
  const steps = Number(process.argv[2] ?? 3);
  const names = process.argv.length > 3 ? process.argv.slice(3) : Object.keys(SWIN_CIFAR_CANDIDATES);
  for (const name of names) process.stdout.write(`${JSON.stringify(await timeCandidate(name, steps))}\n`);
}

if (require.main === module) {
  main().catch((err: Error) => {
    process.stderr.write(`swin train bench failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  });
}
