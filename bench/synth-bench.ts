// Cost of one SPDFQ synthesis step beside the plain forward + backward it is built on:
// 32 images of a DeiT-Tiny-shaped model (12 blocks, D=192, 3 heads, 224², patch 16, 1000
// classes, random weights), MSR on (≈ 2.5 regions per image per step, each a forward and
// backward of its own), APA and SL on, TV prior. The step is timed through the same
// objective the loop runs (synthesisObjective), so the figure includes the region passes,
// the tap gradients and the loss arithmetic, but not Adam (negligible).

import { synthesisObjective } from '../lib/synth/synthesize';
import { SynthesisOptions } from '../lib/synth/options';
import { createVit, randomVitWeights } from '../lib/vit';
import { completeVitConfig } from '../lib/vit-config';
import { DEIT_TINY } from './shapes';
import { timeMedian } from './timing';

export const SYNTH_BENCH_IMAGES = 32;

export async function synthBench(threads: number, repeats = 2): Promise<{ synth_step_deit_tiny_b32_s: number; forward_backward_deit_tiny_b32_s: number }> {
  const config = completeVitConfig(DEIT_TINY);
  const model = await createVit(config, randomVitWeights(config, 1), { threads });
  const B = SYNTH_BENCH_IMAGES;
  const L = config.channels * config.imageHeight * config.imageWidth;
  const images = new Float32Array(B * L).map((_, i) => Math.sin(i * 0.001));
  const dlogits = new Float32Array(B * config.numClasses).fill(1 / (B * config.numClasses));
  try {
    const fwdBwd = await timeMedian(repeats, async () => {
      await model.forward(images, B);
      await model.backward(dlogits);
    });
    // α fixed (the automatic α costs one extra forward at step 0 only). Steps 1, 2, … draw
    // different regions; the median over repeats of the same step keeps the work equal.
    const options: SynthesisOptions = { method: 'spdfq', images: B, apa: { alpha: 1000 } };
    const step = await timeMedian(repeats, () => synthesisObjective(model, options, images, 1, 1000, true));
    return { synth_step_deit_tiny_b32_s: step, forward_backward_deit_tiny_b32_s: fwdBwd };
  } finally {
    await model.dispose();
  }
}

if (require.main === module) {
  const threads = Number(process.argv[2] ?? require('os').cpus().length);
  synthBench(threads)
    .then((r) => process.stdout.write(`${JSON.stringify({ threads, ...r, ratio: r.synth_step_deit_tiny_b32_s / r.forward_backward_deit_tiny_b32_s }, null, 2)}\n`))
    .catch((err: Error) => {
      process.stderr.write(`synth bench failed: ${err.stack ?? err.message}\n`);
      process.exit(1);
    });
}
