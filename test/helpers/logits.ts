// Comparing two models' logits (the quantized-export tests' measures): top-1 per row, the
// relative RMS difference, and onnxruntime's logits on an exported Swin.

import * as ort from 'onnxruntime-node';
import { SwinConfig } from '../../lib/swin';

/** onnxruntime's logits for `batch` images: 'all' as lib/eval/ort.ts runs an export, 'basic'
 *  the graph as written (no fusions that reorder float arithmetic); MatMulNBits at the exact
 *  accuracy level 0, as lib/eval/ort.ts runs it. */
export async function ortSwinLogits(model: Uint8Array, c: SwinConfig, x: Float32Array, batch: number, level: 'basic' | 'all' = 'all'): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: level,
    extra: { session: { qdq_matmulnbits_accuracy_level: '0' } },
  } as ort.InferenceSession.SessionOptions);
  try {
    const out = await session.run({ input: new ort.Tensor('float32', x, [batch, c.channels, c.imageHeight, c.imageWidth]) });
    return out.logits.data as Float32Array;
  } finally {
    await session.release();
  }
}

/** The index of each row's largest value, rows of `k`. */
export function argmaxRows(x: Float32Array, k: number): number[] {
  return Array.from({ length: x.length / k }, (_, r) => {
    let best = 0;
    for (let j = 1; j < k; j++) if (x[r * k + j] > x[r * k + best]) best = j;
    return best;
  });
}

/** RMS of a − b over RMS of b. */
export function rmsRel(a: Float32Array, b: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}
