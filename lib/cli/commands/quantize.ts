// `spdfq-native quantize --model m.onnx --calib <images folder | IDX | .npy tensor | noise>
//  --bits w4a4 --out q.onnx`: quantization on given calibration images (no synthesis). A
//  Swin model takes quantize-swin.ts's path.

import * as fs from 'fs';
import * as path from 'path';
import type { Argv, CommandModule } from 'yargs';
import { importBytes } from '../../onnx/import-onnx';
import { readPreprocessing } from '../../onnx/preprocess';
import { createVit } from '../../vit';
import { synthesize } from '../../synth/synthesize';
import { decodeNpy } from '../../image/npy';
import { quantize } from '../../quant/quantize';
import { BITS_PRESETS, BitsPreset, normalizedPixelRange, QuantOptions } from '../../quant/quant-config';
import { checkExportFormat, exportQuantizedOnnx, QuantExportFormat } from '../../quant/export-onnx';
import { printTop1 } from '../eval-top1';
import { SpdfqError } from '../../errors';
import { checkOutput } from '../../io/output-path';
import { writeFileAtomic } from '../../io/atomic';
import { intFlag } from '../flags';
import { withStopSignals } from '../signals';
import { quantOptionFlags } from '../synthesis-flags';
import { readOnnxSource } from '../../onnx/read-source';
import { decodeModel } from '../../onnx/proto';
import { OnnxGraph } from '../../onnx/graph';
import { looksLikeSwin } from '../../onnx/recognize-swin';
import { quantizeSwinFile } from './quantize-swin';

interface QuantizeArgs {
  model: string;
  calib: string;
  bits: string;
  out: string;
  images: number;
  format: string;
  eval?: string;
  'recon-iters'?: number;
  preset: string;
  'weight-mode'?: string;
  tensorrt: boolean;
  threads?: number;
  'quant-option'?: string[];
}

export const quantizeCommand: CommandModule<object, QuantizeArgs> = {
  command: 'quantize',
  describe: 'Quantize a model on given calibration images and export the quantized ONNX',
  builder: (y: Argv) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'ONNX model' })
      .option('calib', { type: 'string', demandOption: true, describe: "calibration images: a folder (PNG/JPEG, class subfolders), an IDX file, a .npy tensor [N, C, H, W] (e.g. from `synth`), or 'noise'" })
      .option('bits', { type: 'string', default: 'w4a4', describe: Object.keys(BITS_PRESETS).join(', ') })
      .option('images', { type: 'number', default: 32, describe: 'calibration images to use' })
      .option('out', { type: 'string', default: 'quantized.onnx', describe: 'output ONNX file' })
      .option('format', { type: 'string', default: 'qdq', describe: 'qdq (opset 13; a Swin 17), qdq-int4 (opset 21, int4 weights) or matmulnbits (com.microsoft MatMulNBits nodes)' })
      .option('preset', { type: 'string', default: 'repq', describe: 'quantizer preset: repq or psaq' })
      .option('weight-mode', { type: 'string', describe: 'asymmetric, or symmetric' })
      .option('tensorrt', { type: 'boolean', default: false, describe: "TensorRT's explicit-quantization rules: symmetric weights and activations (zero points 0), uniform softmax grid, no reparameterization" })
      .option('recon-iters', { type: 'number', describe: 'block reconstruction iterations (0 = off)' })
      .option('eval', { type: 'string', describe: 'labelled images to report full-precision and quantized top-1' })
      .option('threads', { type: 'number' })
      .option('quant-option', { type: 'array', string: true, describe: 'any quantization option by its API path (repeatable): e.g. calibration=sequential, reconstruction.rounding=adaround, reconstruction.head=true (docs/quantization.md lists them)' }) as unknown as Argv<QuantizeArgs>,
  handler: async (a) => {
    intFlag('images', a.images, 1);
    intFlag('threads', a.threads, 1);
    intFlag('recon-iters', a['recon-iters'], 0);
    const out = checkOutput('--out', a.out, [
      { flag: '--model', path: a.model },
      { flag: "--model's preprocessing sidecar", path: String(a.model).replace(/\.onnx$/i, '') + '.preprocess.json' },
      { flag: '--calib', path: a.calib === 'noise' ? '' : a.calib },
      { flag: '--eval', path: a.eval ?? '' },
    ]);
    if (!(a.bits in BITS_PRESETS)) throw new SpdfqError('E_CONFIG', `--bits: expected one of ${Object.keys(BITS_PRESETS).join(', ')}, received '${a.bits}'`);
    checkExportFormat('--format', a.format);
    if (a.preset !== 'repq' && a.preset !== 'psaq') throw new SpdfqError('E_CONFIG', `--preset: expected repq or psaq, received '${a.preset}'`);
    if (a['weight-mode'] !== undefined && a['weight-mode'] !== 'asymmetric' && a['weight-mode'] !== 'symmetric') throw new SpdfqError('E_CONFIG', `--weight-mode: expected asymmetric or symmetric, received '${a['weight-mode']}'`);
    await withStopSignals(async (signal) => {
      const { bytes, filePath } = await readOnnxSource(a.model, 'quantize');
      if (looksLikeSwin(new OnnxGraph(decodeModel(bytes, a.model), { baseDir: filePath ? path.dirname(filePath) : undefined }))) {
        const extra = quantOptionFlags(a['quant-option']) as Partial<QuantOptions>;
        const recon = a['recon-iters'] === 0 ? false : a['recon-iters'] !== undefined ? { ...extra.reconstruction, iters: a['recon-iters'] } : extra.reconstruction;
        await quantizeSwinFile({
          bytes, modelPath: filePath ?? a.model, calib: a.calib, images: a.images, bits: a.bits as BitsPreset, out, outLabel: a.out,
          format: a.format as QuantExportFormat, evalPath: a.eval, threads: a.threads, signal,
          options: { ...extra, reconstruction: recon, preset: a.preset as 'repq' | 'psaq', weightMode: a['weight-mode'] as 'asymmetric' | 'symmetric' | undefined, tensorrt: a.tensorrt },
        });
        return;
      }
      const imported = importBytes(bytes, filePath);
      const pre = readPreprocessing(imported.path, imported.config);
      const fp = await createVit(imported.config, imported.weights, { threads: a.threads });
      try {
        let images: Float32Array;
        let n = a.images;
        if (a.calib.endsWith('.npy')) {
          const t = decodeNpy(fs.readFileSync(a.calib), a.calib);
          const per = fp.imageLength();
          if (t.shape.length !== 4 || t.shape[1] * t.shape[2] * t.shape[3] !== per) {
            throw new SpdfqError('E_TENSOR', `${a.calib}: expected a tensor [N, ${imported.config.channels}, ${imported.config.imageHeight}, ${imported.config.imageWidth}], found [${t.shape.join(', ')}]`);
          }
          n = Math.min(n, t.shape[0]);
          images = Float32Array.from(t.data.subarray(0, n * per));
        } else {
          const method = a.calib === 'noise' ? 'noise' : 'real';
          const r = await synthesize(fp, { signal, method, images: n, preprocess: { mean: pre.mean, std: pre.std }, real: method === 'real' ? { path: a.calib } : undefined });
          images = r.images;
        }
        const extra = quantOptionFlags(a['quant-option']) as Partial<QuantOptions>;
        const recon = a['recon-iters'] === 0 ? false : a['recon-iters'] !== undefined ? { ...extra.reconstruction, iters: a['recon-iters'] } : extra.reconstruction;
        const q = await quantize(fp, images, n, {
          ...extra,
          bits: a.bits as BitsPreset,
          inputRange: normalizedPixelRange(pre),
          preset: a.preset as 'repq' | 'psaq',
          weightMode: a['weight-mode'] as 'asymmetric' | 'symmetric' | undefined,
          tensorrt: a.tensorrt,
          reconstruction: recon,
          threads: a.threads,
          signal,
          onProgress: (p) => {
            if (p.reconstruct && p.reconstruct.iter === p.reconstruct.iters) process.stderr.write(`reconstructed ${p.reconstruct.stage} (${p.reconstruct.block + 1}/${p.reconstruct.blocks}, mse ${p.reconstruct.loss.toExponential(3)})\n`);
          },
        });
        try {
          const exp = exportQuantizedOnnx(q, { format: a.format as QuantExportFormat, inputName: imported.inputName, outputName: imported.outputName });
          writeFileAtomic(out, exp.bytes);
          for (const w of exp.warnings) process.stderr.write(`warning: ${w}\n`);
          process.stdout.write(`wrote ${a.out} (${a.bits}, ${exp.format}, opset ${exp.opset}, ${n} calibration images)\n`);
          if (a.eval) await printTop1(a.eval, imported.config, pre, a.bits, async (x, b) => (await fp.forward(x, b)).logits, (x, b) => q.forward(x, b));
        } finally {
          await q.dispose();
        }
      } finally {
        await fp.dispose();
      }
    });
  },
};
