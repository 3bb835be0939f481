// onnxruntime's speed on our quantized exports against the same model in fp32, in one run
// (ratios, so a shared machine's load mostly cancels): the default W8A8 QDQ export, the
// TensorRT-style symmetric one, the MatMulNBits W4A8 one, and the default W4A4 one (whose
// log√2 softmax is exported as its exact float formula).

import { VitConfig } from '../lib/vit-config';
import { createVit } from '../lib/vit';
import { quantize } from '../lib/quant/quantize';
import { exportQuantizedOnnx, QuantExportFormat } from '../lib/quant/export-onnx';
import { QuantOptions } from '../lib/quant/quant-config';
import { buildVitOnnx } from '../lib/onnx/build-vit';
import { timeMedian } from './timing';

const EXPORTS: { key: string; quant: QuantOptions; format: QuantExportFormat }[] = [
  { key: 'qdq_w8a8', quant: { bits: 'w8a8' }, format: 'qdq' },
  { key: 'tensorrt_w8a8', quant: { bits: 'w8a8', tensorrt: true }, format: 'qdq' },
  { key: 'matmulnbits_w4a8', quant: { bits: 'w4a8' }, format: 'matmulnbits' },
  { key: 'qdq_w4a4', quant: { bits: 'w4a4' }, format: 'qdq' },
];

export async function ortExportSpeedups(
  config: VitConfig,
  weights: Map<string, Float32Array>,
  images: Float32Array,
  batch: number,
  threads: number,
  repeats: number,
): Promise<Record<string, number | string>> {
  let ort: typeof import('onnxruntime-node');
  try {
    ort = await import('onnxruntime-node');
  } catch (err) {
    return { ort_exports_unavailable: `onnxruntime-node is not installed (${(err as Error).message.split('\n')[0]})` };
  }
  const time = async (bytes: Uint8Array): Promise<number> => {
    const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', images, [batch, config.channels, config.imageHeight, config.imageWidth]) };
    const s = await timeMedian(repeats, () => session.run(feeds));
    await session.release();
    return s;
  };
  const out: Record<string, number | string> = {};
  const model = await createVit(config, weights, { threads });
  try {
    const fp = await time(buildVitOnnx(config, weights, { opset: 17 }));
    out.ort_fp32_b8_s = fp;
    // Calibration on a few of the timed images: speed does not depend on the ranges.
    const calib = images.subarray(0, 4 * model.imageLength());
    for (const e of EXPORTS) {
      const q = await quantize(model, calib, 4, { ...e.quant, reconstruction: false, threads });
      try {
        const s = await time(exportQuantizedOnnx(q, { format: e.format }).bytes);
        out[`ort_${e.key}_b8_s`] = s;
        out[`ort_speedup_${e.key}`] = Math.round((fp / s) * 1000) / 1000;
      } finally {
        await q.dispose();
      }
    }
  } finally {
    await model.dispose();
  }
  return out;
}
