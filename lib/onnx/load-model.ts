// `loadModel('m.onnx')`: the imported model plus a forward pass on the native engine.
// The engine is created on the first forward (recognition alone needs no native code).

import { SpdfqError } from '../errors';
import { createVit, VitModel } from '../vit';
import { ImportedModel, importOnnx, ImportOptions } from './import-onnx';

export interface LoadOptions extends ImportOptions {
  /** Engine worker threads (default: the engine's default, all cores). */
  threads?: number;
}

export interface LoadedModel extends ImportedModel {
  /** Logits [batch, numClasses] for NCHW float32 images, already normalized
   *  (see preprocess.ts for the mean/std the model expects). */
  forward(images: Float32Array, batch: number): Promise<Float32Array>;
  /** Releases the engine's native memory; forward may be called again afterwards. */
  dispose(): Promise<void>;
}

export async function loadModel(source: string | Uint8Array, options: LoadOptions = {}): Promise<LoadedModel> {
  const imported = await importOnnx(source, options);
  const { config } = imported;
  let engine: Promise<VitModel> | null = null;
  const imageSize = config.channels * config.imageHeight * config.imageWidth;
  return {
    ...imported,
    async forward(images: Float32Array, batch: number): Promise<Float32Array> {
      if (!Number.isInteger(batch) || batch < 1) throw new SpdfqError('E_CONFIG', `forward: batch must be a positive integer, received ${String(batch)}`);
      if (!(images instanceof Float32Array) || images.length !== batch * imageSize) {
        throw new SpdfqError(
          'E_TENSOR',
          `forward: expected ${batch} images of [${config.channels}, ${config.imageHeight}, ${config.imageWidth}] = ${batch * imageSize} floats (NCHW float32), received ${images instanceof Float32Array ? images.length : typeof images}`,
        );
      }
      engine ??= createVit(config, imported.weights, options.threads !== undefined ? { threads: options.threads } : {});
      const result = await (await engine).forward(images, batch);
      return result.logits;
    },
    async dispose(): Promise<void> {
      const e = engine;
      engine = null;
      if (e) await (await e).dispose();
    },
  };
}
