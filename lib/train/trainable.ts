// What the trainer (trainer.ts) needs of a model, and nothing else: its input and output
// sizes, its parameter names and shapes in arena order, a forward returning logits, a
// backward that leaves every weight's gradient in the native flat gradient arena, and
// that arena's getters and setter. VitModel and SwinModel both satisfy it.

import { NamedShape } from '../random-weights';

/** The flat parameter arena of a native model, read and written whole. */
export interface NativeParamArena {
  /** A copy of every parameter, in paramSpecs order. */
  getParams(): Float32Array;
  /** Replaces every parameter (same length and order as getParams). */
  setParams(params: Float32Array): void;
  /** A copy of the weight gradients of the last backward with weight gradients. */
  getGrads(): Float32Array;
}

export interface TrainableModel {
  readonly config: { channels: number; imageHeight: number; imageWidth: number; numClasses: number };
  /** Names and shapes, in the order of the native arena. */
  readonly paramSpecs: readonly NamedShape[];
  /** Logits [batch, numClasses] of NCHW images; the pass stays for backwardWeights. */
  forwardLogits(images: Float32Array, batch: number): Promise<Float32Array>;
  /** Backward of the last forward from d loss / d logits, leaving every weight's gradient
   *  flat in the native arena (nativeHandle().getGrads()), unpacked by nobody. */
  backwardWeights(dlogits: Float32Array): Promise<void>;
  /** Runs `job` with the model to itself (after every queued call; later calls wait). */
  exclusive<T>(job: () => Promise<T>): Promise<T>;
  /** The native object; use it only inside exclusive(). */
  nativeHandle(): NativeParamArena;
}

/** Weight decay applies to matrices only: not to biases and LayerNorm parameters (1-D),
 *  nor to the position embedding and extra tokens (timm's ViT `no_weight_decay`: pos_embed,
 *  cls_token, dist_token), nor to Swin's relative-position bias tables (the Swin paper's
 *  recipe and timm's SwinTransformer `no_weight_decay_keywords`). */
export function decays(spec: NamedShape): boolean {
  return spec.shape.length >= 2 && !/pos_embed|cls_token|dist_token|relative_position_bias_table/.test(spec.name);
}
