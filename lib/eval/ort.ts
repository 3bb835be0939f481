// onnxruntime-node as an evaluation backend: the exported model is judged by the runtime
// users deploy with, not by our own engine.

import { SpdfqError } from '../errors';
import { VitConfig } from '../vit-config';
import type { ForwardFn } from './evaluate';

export interface OrtModel {
  forward: ForwardFn;
  release(): Promise<void>;
}

/** How to get onnxruntime-node where it is missing: it is an optional dependency, which
 *  npm skips when its install step fails (offline, it cannot fetch its CUDA provider). */
export const ORT_INSTALL_HINT = 'install it with `ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node` (the variable skips its download of a CUDA provider; the CPU runtime is in the package)';

/** Why onnxruntime-node cannot be used here, or null when it can. */
export async function ortUnavailable(): Promise<string | null> {
  try {
    await import('onnxruntime-node');
    return null;
  } catch (err) {
    return `onnxruntime-node could not be loaded (${(err as Error).message.split('\n')[0]}); ${ORT_INSTALL_HINT}`;
  }
}

export async function ortForward(model: Uint8Array | string, config: Pick<VitConfig, 'channels' | 'imageHeight' | 'imageWidth'>, threads?: number): Promise<OrtModel> {
  let ort: typeof import('onnxruntime-node');
  try {
    ort = await import('onnxruntime-node');
  } catch (err) {
    throw new SpdfqError('E_NATIVE', `onnxruntime-node could not be loaded (${(err as Error).message.split('\n')[0]}); ${ORT_INSTALL_HINT}`);
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
