// onnxruntime-node on the same ViT as the engine, for the benchmark's reference timing.
// The model is written by our ONNX builder (lib/onnx/build-vit.ts) with the same weights.

import { VitConfig } from '../lib/vit-config';
import { timeMedian } from './timing';

export async function ortForwardSeconds(
  config: VitConfig,
  weights: Map<string, Float32Array>,
  images: Float32Array,
  batch: number,
  threads: number,
  repeats: number,
): Promise<number | { reason: string }> {
  let ort: typeof import('onnxruntime-node');
  try {
    ort = await import('onnxruntime-node');
  } catch (err) {
    return { reason: `onnxruntime-node is not installed (${(err as Error).message.split('\n')[0]})` };
  }
  const { buildVitOnnx } = await import('../lib/onnx/build-vit');
  const bytes = buildVitOnnx(config, weights, { opset: 17 });
  const session = await ort.InferenceSession.create(bytes, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  const input = new ort.Tensor('float32', images, [batch, config.channels, config.imageHeight, config.imageWidth]);
  const feeds = { [session.inputNames[0]]: input };
  const seconds = await timeMedian(repeats, () => session.run(feeds));
  await session.release();
  return seconds;
}
