// onnxruntime-node as an evaluation backend: the exported model is judged by the runtime
// users deploy with, not by our own engine.

import { SpdfqError } from '../errors';
import { VitConfig } from '../vit-config';
import type { ForwardFn } from './evaluate';

export interface OrtModel {
  forward: ForwardFn;
  release(): Promise<void>;
}

export async function ortForward(model: Uint8Array | string, config: VitConfig, threads?: number): Promise<OrtModel> {
  let ort: typeof import('onnxruntime-node');
  try {
    ort = await import('onnxruntime-node');
  } catch (err) {
    throw new SpdfqError('E_NATIVE', `onnxruntime-node could not be loaded (${(err as Error).message.split('\n')[0]}); install it to evaluate exported models`);
  }
  let session: import('onnxruntime-node').InferenceSession;
  try {
    session = await ort.InferenceSession.create(model as Uint8Array, {
      intraOpNumThreads: threads ?? 0,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      // Exact int4 MatMulNBits (its default int8 compute differs by ~1e-2: onnxruntime's MatMulNBits accuracy_level).
      extra: { session: { qdq_matmulnbits_accuracy_level: '0' } },
    } as import('onnxruntime-node').InferenceSession.SessionOptions);
  } catch (err) {
    throw new SpdfqError('E_ONNX', `onnxruntime rejected the model: ${(err as Error).message}`, { cause: err });
  }
  const input = session.inputNames[0];
  const output = session.outputNames[0];
  return {
    async forward(images: Float32Array, batch: number): Promise<Float32Array> {
      const t = new ort.Tensor('float32', images, [batch, config.channels, config.imageHeight, config.imageWidth]);
      const res = await session.run({ [input]: t });
      return res[output].data as Float32Array;
    },
    async release() {
      await session.release();
    },
  };
}
