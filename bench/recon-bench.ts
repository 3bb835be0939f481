// Cost of one block-reconstruction step (native/quant/reconstruct: the quantized block's
// forward, its output MSE's backward to the weights, the update) beside the engine's forward +
// backward with weight gradients of the same block, at DeiT-Tiny's shape with 32 images (the
// paper's calibration set). Both are differences, so the shared parts cancel: a step is
// (quantize with K reconstruction steps − quantize with none) / K on a one-block model, whose
// only reconstructed stage is its block; a block's forward + backward is a two-block model's
// pass minus a one-block model's, so the patch embedding and the head drop out.

import { quantize } from '../lib/quant/quantize';
import { createVit, randomVitWeights, VitModel } from '../lib/vit';
import { completeVitConfig } from '../lib/vit-config';
import { DEIT_TINY } from './shapes';
import { timeMedian } from './timing';

export const RECON_BENCH_BATCH = 32;
const STEPS = 8;

export interface ReconBench {
  recon_step_deit_tiny_b32_s: number;
  block_forward_backward_deit_tiny_b32_s: number;
  recon_step_over_block_forward_backward: number;
}

async function model(depth: number, threads: number): Promise<VitModel> {
  const config = completeVitConfig({ ...DEIT_TINY, depth });
  return createVit(config, randomVitWeights(config, 1), { threads });
}

export async function reconBench(threads: number, repeats = 3): Promise<ReconBench> {
  const B = RECON_BENCH_BATCH;
  const images = new Float32Array(B * 3 * 224 * 224).map((_, i) => Math.sin(i * 0.001));
  const dlogits = new Float32Array(B * 1000).fill(1 / (B * 1000));
  const pass = async (depth: number) => {
    const m = await model(depth, threads);
    try {
      return await timeMedian(repeats, async () => {
        await m.forward(images, B);
        await m.backward(dlogits, { weightGrads: true });
      });
    } finally {
      await m.dispose();
    }
  };
  const block = (await pass(2)) - (await pass(1));
  const one = await model(1, threads);
  try {
    const run = (iters: number) => timeMedian(repeats, async () => (await quantize(one, images, B, { bits: 'w4a4', threads, reconstruction: iters > 0 ? { iters } : false })).dispose());
    const step = ((await run(STEPS)) - (await run(0))) / STEPS;
    return {
      recon_step_deit_tiny_b32_s: step,
      block_forward_backward_deit_tiny_b32_s: block,
      recon_step_over_block_forward_backward: Math.round((step / block) * 1000) / 1000,
    };
  } finally {
    await one.dispose();
  }
}
