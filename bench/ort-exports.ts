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
  type Session = Awaited<ReturnType<typeof ort.InferenceSession.create>>;
  const open = (bytes: Uint8Array) => ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const feeds = (s: Session) => ({ [s.inputNames[0]]: new ort.Tensor('float32', images, [batch, config.channels, config.imageHeight, config.imageWidth]) });
  const out: Record<string, number | string> = {};
  const model = await createVit(config, weights, { threads });
  const sessions: { key: string; session: Session }[] = [];
  try {
    sessions.push({ key: 'fp32', session: await open(buildVitOnnx(config, weights, { opset: 17 })) });
    // Calibration on a few of the timed images: speed does not depend on the ranges.
    const calib = images.subarray(0, 4 * model.imageLength());
    for (const e of EXPORTS) {
      const q = await quantize(model, calib, 4, { ...e.quant, reconstruction: false, threads });
      try {
        sessions.push({ key: e.key, session: await open(exportQuantizedOnnx(q, { format: e.format }).bytes) });
      } finally {
        await q.dispose();
      }
    }
    // Round-robin over the models, one run each per round, so that a shared machine's load
    // changes hit every model alike; medians over the rounds after a warm-up run each.
    const times = sessions.map(() => [] as number[]);
    for (let r = 0; r <= repeats; r++) {
      for (const [i, { session }] of sessions.entries()) {
        const t0 = process.hrtime.bigint();
        await session.run(feeds(session));
        if (r > 0) times[i].push(Number(process.hrtime.bigint() - t0) / 1e9);
      }
    }
    const median = (t: number[]) => t.sort((a, b) => a - b)[Math.floor(t.length / 2)];
    const fp = median(times[0]);
    out.ort_fp32_b8_s = fp;
    for (const [i, { key }] of sessions.entries()) {
      if (i === 0) continue;
      const s = median(times[i]);
      out[`ort_${key}_b8_s`] = s;
      out[`ort_speedup_${key}`] = Math.round((fp / s) * 1000) / 1000;
    }
  } finally {
    for (const { session } of sessions) await session.release();
    await model.dispose();
  }
  return out;
}
