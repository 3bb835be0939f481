// `spdfq-native quantize` on a Swin ONNX file (docs/swin.md, "Stage: quantization"):
// import, calibration images (a .npy tensor, real images from a folder or IDX file, or 'noise'),
// quantize(), the quantized export (--format: qdq, qdq-int4 or matmulnbits), and optionally
// top-1 before and after. The ViT path stays in quantize.ts; both read the same flags.

import * as fs from 'fs';
import { decodeNpy } from '../../image/npy';
import { importSwinBytes } from '../../onnx/import-swin';
import { readPreprocessing, Preprocessing } from '../../onnx/preprocess';
import { createSwin, SwinModel } from '../../swin';
import { printTop1 } from '../eval-top1';
import { SpdfqError } from '../../errors';
import { writeFileAtomic } from '../../io/atomic';
import { synthesize } from '../../synth/synthesize';
import { quantizeSwin } from '../../quant/quantize-swin';
import { exportQuantizedSwinOnnx } from '../../quant/export-swin-onnx';
import { BitsPreset, normalizedPixelRange, QuantOptions } from '../../quant/quant-config';
import { QuantExportFormat } from '../../quant/export-onnx';

export interface SwinQuantizeRequest {
  bytes: Uint8Array;
  modelPath: string;
  calib: string;
  images: number;
  bits: BitsPreset;
  out: string;
  outLabel: string;
  format: QuantExportFormat;
  evalPath?: string;
  threads?: number;
  options: Partial<QuantOptions>;
  signal: AbortSignal;
}

/** `n` calibration images in the model's normalized space, and how many there are: a .npy
 *  tensor, or (as the ViT path) synthesize()'s 'real' images from a folder or IDX file or
 *  its 'noise'. */
async function calibrationImages(fp: SwinModel, pre: Preprocessing, calib: string, n: number, signal: AbortSignal): Promise<{ images: Float32Array; n: number }> {
  const c = fp.config;
  const per = c.channels * c.imageHeight * c.imageWidth;
  if (calib.endsWith('.npy')) {
    const t = decodeNpy(fs.readFileSync(calib), calib);
    if (t.shape.length !== 4 || t.shape[1] * t.shape[2] * t.shape[3] !== per) {
      throw new SpdfqError('E_TENSOR', `${calib}: expected a tensor [N, ${c.channels}, ${c.imageHeight}, ${c.imageWidth}], found [${t.shape.join(', ')}]`);
    }
    const m = Math.min(n, t.shape[0]);
    return { images: Float32Array.from(t.data.subarray(0, m * per)), n: m };
  }
  const method = calib === 'noise' ? 'noise' : 'real';
  const r = await synthesize(fp, { signal, method, images: n, preprocess: { mean: pre.mean, std: pre.std }, real: method === 'real' ? { path: calib } : undefined });
  return { images: r.images, n };
}

export async function quantizeSwinFile(r: SwinQuantizeRequest): Promise<void> {
  const imported = importSwinBytes(r.bytes, r.modelPath);
  const pre = readPreprocessing(imported.path, imported.config);
  const fp = createSwin(imported.config, imported.weights, { threads: r.threads });
  try {
    const { images, n } = await calibrationImages(fp, pre, r.calib, r.images, r.signal);
    const q = await quantizeSwin(fp, images, n, {
      ...r.options,
      bits: r.bits,
      inputRange: normalizedPixelRange(pre),
      threads: r.threads,
      signal: r.signal,
      onProgress: (p) => {
        if (p.reconstruct && p.reconstruct.iter === p.reconstruct.iters) process.stderr.write(`reconstructed ${p.reconstruct.stage} (${p.reconstruct.block + 1}/${p.reconstruct.blocks}, mse ${p.reconstruct.loss.toExponential(3)})\n`);
      },
    });
    try {
      const exp = exportQuantizedSwinOnnx(q, { format: r.format, inputName: imported.inputName, outputName: imported.outputName });
      writeFileAtomic(r.out, exp.bytes);
      for (const w of [...q.plan.notes, ...exp.warnings]) process.stderr.write(`note: ${w}\n`);
      process.stdout.write(`wrote ${r.outLabel} (Swin, ${r.bits}, ${exp.format}, opset ${exp.opset}, ${n} calibration images)\n`);
      if (r.evalPath) await printTop1(r.evalPath, imported.config, pre, r.bits, (x, b) => fp.forward(x, b), (x, b) => q.forward(x, b));
    } finally {
      await q.dispose();
    }
  } finally {
    await fp.dispose();
  }
}
