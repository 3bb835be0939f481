// `npm run bench -- --device cuda[:N] [--json FILE]`: the engine on an NVIDIA GPU for the
// DeiT-Tiny, -Small and -Base shapes (random weights): forward and forward+backward at
// batch 32, and one SPDFQ synthesis step at batch 32 (the same objective as the CPU
// synthesis benchmark: MSR regions, APA and SL taps, TV), each with the default TF32 GEMMs
// and the FP32 reference GEMMs — the TF32-against-FP32 speed half of issue #7's question
// (test/gpu/synth.gpu.ts measures the accuracy half). GEMM TFLOP/s against the GPU's
// datasheet peak come from the op checker: `npm run test:gpu -- --bench`.

import { synthesisObjective } from '../lib/synth/synthesize';
import { SynthesisOptions } from '../lib/synth/options';
import { nativeAddon } from '../lib/native';
import { createVit, randomVitWeights, VitDevice } from '../lib/vit';
import { completeVitConfig, VitConfigInput } from '../lib/vit-config';
import { DEIT_BASE, DEIT_SMALL, DEIT_TINY } from './shapes';
import { timeMedian } from './timing';

const BATCH = 32;

export async function gpuBench(device: VitDevice, repeats: number): Promise<Record<string, number | string>> {
  const addon = nativeAddon();
  if (!addon.backends().includes('cuda')) throw new Error('bench --device cuda: this build of spdfq-native has no CUDA backend (docs/cuda.md: build with nvcc 12+ on PATH)');
  const info = addon.cudaDevices();
  if (info.count === 0) throw new Error(`bench --device cuda: no usable CUDA device (${info.reason})`);
  const results: Record<string, number | string> = { device, gpu: info.devices[0]?.name ?? 'unknown', batch: BATCH };
  const shapes: [string, VitConfigInput][] = [['deit_tiny', DEIT_TINY], ['deit_small', DEIT_SMALL], ['deit_base', DEIT_BASE]];
  for (const [name, shape] of shapes) {
    const config = completeVitConfig(shape);
    const weights = randomVitWeights(config, 1);
    const L = config.channels * config.imageHeight * config.imageWidth;
    const images = new Float32Array(BATCH * L).map((_, i) => Math.sin(i * 0.001));
    const dlogits = new Float32Array(BATCH * config.numClasses).fill(1 / (BATCH * config.numClasses));
    for (const [math, reference] of [['tf32', false], ['fp32', true]] as [string, boolean][]) {
      const model = await createVit(config, weights, { device, reference });
      try {
        const key = `${name}_b${BATCH}_${math}`;
        results[`${key}_forward_s`] = await timeMedian(repeats, () => model.forward(images, BATCH));
        results[`${key}_forward_backward_s`] = await timeMedian(repeats, async () => {
          await model.forward(images, BATCH);
          await model.backward(dlogits);
        });
        const options: SynthesisOptions = { method: 'spdfq', images: BATCH, apa: { alpha: 1000 } };
        results[`${key}_synth_step_s`] = await timeMedian(repeats, () => synthesisObjective(model, options, images, 1, 1000, true));
      } finally {
        await model.dispose();
      }
    }
  }
  return results;
}
