// Swin-T's shape (224², patch 4, window 7, embed 96, depths [2, 2, 6, 2], heads [3, 6, 12, 24];
// Liu et al. 2021) with random weights, batch 8: the engine's forward and forward + input
// gradient against onnxruntime's forward of the same model (written by buildSwinOnnx).
// Targets (issue #17): forward ≤ 1.0× onnxruntime, forward + backward ≤ 2.5× forward.

import { buildSwinOnnx } from '../lib/onnx/build-swin';
import { completeSwinConfig, createSwin, randomSwinWeights, SwinConfigInput } from '../lib/swin';
import { ortForwardSeconds } from './ort-reference';
import { timeMedian } from './timing';

export const SWIN_TINY: SwinConfigInput = {
  imageHeight: 224, imageWidth: 224, channels: 3, patchSize: 4, embedDim: 96,
  depths: [2, 2, 6, 2], numHeads: [3, 6, 12, 24], windowSize: 7, mlpRatio: 4, numClasses: 1000,
};
const BATCH = 8;

export async function swinBench(threads: number, repeats: number): Promise<Record<string, number | string>> {
  const config = completeSwinConfig(SWIN_TINY);
  const weights = randomSwinWeights(config, 1);
  const images = new Float32Array(BATCH * 3 * 224 * 224).map((_, i) => Math.sin(i * 0.001));
  const dlogits = new Float32Array(BATCH * config.numClasses).fill(1 / (BATCH * config.numClasses));
  const model = createSwin(config, weights, { threads });
  const out: Record<string, number | string> = {};
  try {
    out.swin_tiny_b8_forward_s = await timeMedian(repeats, () => model.forward(images, BATCH));
    out.swin_tiny_b8_forward_backward_s = await timeMedian(repeats, async () => {
      await model.forward(images, BATCH);
      await model.backward(dlogits);
    });
  } finally {
    await model.dispose();
  }
  const ort = await ortForwardSeconds(buildSwinOnnx(config, weights), [BATCH, 3, 224, 224], images, threads, repeats);
  if (typeof ort === 'number') out.ort_swin_tiny_b8_forward_s = ort;
  const ratio = (a: number, b: number) => Math.round((a / b) * 1000) / 1000;
  out.swin_forward_over_ort = typeof ort === 'number' ? ratio(out.swin_tiny_b8_forward_s as number, ort) : 'n/a';
  out.swin_forward_backward_over_forward = ratio(out.swin_tiny_b8_forward_backward_s as number, out.swin_tiny_b8_forward_s as number);
  return out;
}
