// Top-1 / top-5 accuracy of any forward function (the engine's fp model, the quantized
// simulation, the exported ONNX in onnxruntime) on a labelled image set.

import { SpdfqError } from '../errors';
import { LabelledImages } from '../data/labelled-images';

export type ForwardFn = (images: Float32Array, batch: number) => Promise<Float32Array>;

export interface Evaluation {
  top1: number; // fraction in [0, 1]
  top5: number;
  count: number;
  /** Predicted class per image. */
  predictions: Int32Array;
}

export interface EvaluateOptions {
  batch?: number; // images per forward, default 250
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export async function evaluate(forward: ForwardFn, set: LabelledImages, numClasses: number, options: EvaluateOptions = {}): Promise<Evaluation> {
  const batch = options.batch ?? 250;
  const per = set.channels * set.height * set.width;
  const predictions = new Int32Array(set.count);
  let top1 = 0;
  let top5 = 0;
  for (let s = 0; s < set.count; s += batch) {
    if (options.signal?.aborted) throw new SpdfqError('E_CANCELLED', `evaluation cancelled after ${s} of ${set.count} images`);
    const b = Math.min(batch, set.count - s);
    const logits = await forward(set.images.subarray(s * per, (s + b) * per), b);
    if (logits.length !== b * numClasses) throw new SpdfqError('E_TENSOR', `evaluation: expected ${b * numClasses} logits, received ${logits.length}`);
    for (let i = 0; i < b; i++) {
      const row = logits.subarray(i * numClasses, (i + 1) * numClasses);
      const label = set.labels[s + i];
      let best = 0;
      for (let k = 1; k < numClasses; k++) if (row[k] > row[best]) best = k;
      predictions[s + i] = best;
      if (best === label) top1++;
      // Rank of the label: how many classes score strictly higher.
      let higher = 0;
      for (let k = 0; k < numClasses; k++) if (row[k] > row[label]) higher++;
      if (higher < 5) top5++;
    }
    options.onProgress?.(s + b, set.count);
  }
  return { top1: top1 / set.count, top5: top5 / set.count, count: set.count, predictions };
}

/** Fraction of images on which two prediction vectors agree. */
export function agreement(a: Int32Array, b: Int32Array): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}
