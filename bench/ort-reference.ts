// onnxruntime-node on the same model as the engine, for the benchmark's reference timing.
// The model is written by our ONNX builders (lib/onnx/build-vit.ts, build-swin.ts) with the
// same weights.

import { timeMedian } from './timing';

/** Median forward time of `onnx` on `images` ([batch, C, H, W] = dims) in onnxruntime. */
export async function ortForwardSeconds(
  onnx: Uint8Array,
  dims: [number, number, number, number],
  images: Float32Array,
  threads: number,
  repeats: number,
): Promise<number | { reason: string }> {
  let ort: typeof import('onnxruntime-node');
  try {
    ort = await import('onnxruntime-node');
  } catch (err) {
    return { reason: `onnxruntime-node is not installed (${(err as Error).message.split('\n')[0]})` };
  }
  const session = await ort.InferenceSession.create(onnx, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', images, dims) };
  const seconds = await timeMedian(repeats, () => session.run(feeds));
  await session.release();
  return seconds;
}
