// Accuracy of the quantizer forms (weights asymmetric or symmetric, softmax log√2 or
// uniform) with the same real calibration images, for docs/quantization.md ("Deployment
// defaults"). Usage:
//   node dist/scripts/quantizer-forms.js <model.onnx> <eval images> <calibration images> [bits,...]
// e.g. models/fashion-mnist-vit.onnx /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
//      /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz w8a8,w6a6,w4a4

import { importOnnx } from '../lib/onnx/import-onnx';
import { readPreprocessing } from '../lib/onnx/preprocess';
import { createVit } from '../lib/vit';
import { loadEvalSet } from '../lib/data/eval-set';
import { quantize } from '../lib/quant/quantize';
import { BitsPreset, normalizedPixelRange, QuantOptions } from '../lib/quant/quant-config';
import { evaluate } from '../lib/eval/evaluate';

const FORMS: [string, QuantOptions][] = [
  ['asymmetric weights, log2 softmax', { weightMode: 'asymmetric', probs: 'log2' }],
  ['symmetric weights, log2 softmax', { weightMode: 'symmetric', probs: 'log2' }],
  ['asymmetric weights, uniform softmax', { weightMode: 'asymmetric', probs: 'uniform' }],
  ['symmetric weights, uniform softmax', { weightMode: 'symmetric', probs: 'uniform' }],
];

async function main(): Promise<void> {
  const [modelPath, evalPath, calibPath, bitsArg] = process.argv.slice(2);
  if (!calibPath) throw new Error('usage: quantizer-forms <model.onnx> <eval images> <calibration images> [w8a8,w4a4,…]');
  const imported = await importOnnx(modelPath);
  const pre = readPreprocessing(imported.path, imported.config);
  const evalSet = loadEvalSet(evalPath, imported.config, pre, { limit: 2000 });
  const calib = loadEvalSet(calibPath, imported.config, pre, { limit: 32 });
  const fp = await createVit(imported.config, imported.weights, { threads: 1 });
  const K = imported.config.numClasses;
  process.stdout.write(`full precision ${((await evaluate(async (x, b) => (await fp.forward(x, b)).logits, evalSet, K)).top1 * 100).toFixed(2)}\n`);
  for (const bits of (bitsArg ?? 'w8a8,w6a6,w4a4').split(',') as BitsPreset[]) {
    for (const [name, form] of FORMS) {
      const q = await quantize(fp, calib.images, calib.count, { bits, inputRange: normalizedPixelRange(pre), threads: 1, reconstruction: { iters: 200 }, ...form });
      const top1 = (await evaluate((x, b) => q.forward(x, b), evalSet, K)).top1;
      process.stdout.write(`${bits}  ${name.padEnd(38)} ${(top1 * 100).toFixed(2)}\n`);
      await q.dispose();
    }
  }
  await fp.dispose();
}

main().catch((err: Error) => {
  process.stderr.write(`quantizer-forms failed: ${err.message}\n`);
  process.exit(1);
});
