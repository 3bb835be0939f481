// Example: the programmatic API on the bundled default model.
//   node examples/quantize-bundled.js
// Synthesizes 32 calibration images with SPDFQ, quantizes to W4A4, evaluates on the
// bundled test subset, and writes the quantized ONNX next to this script's working folder.
'use strict';
const fs = require('fs');
const path = require('path');
const { importOnnx, readPreprocessing, createVit, synthesize, quantize, evaluate, loadEvalSet, exportQuantizedOnnx, DEFAULT_MODEL } = require('..');

async function main() {
  const imported = await importOnnx(DEFAULT_MODEL);
  const pre = readPreprocessing(imported.path, imported.config);
  const model = await createVit(imported.config, imported.weights);
  const calib = await synthesize(model, { method: 'spdfq', images: 32, iters: 200, preprocess: { mean: pre.mean, std: pre.std } });
  const q = await quantize(model, calib.images, 32, { bits: 'w4a4', reconstruction: { iters: 200 } });
  const testSet = loadEvalSet(DEFAULT_MODEL.replace(/\.onnx$/, '-test'), imported.config, pre);
  const fp = await evaluate(async (x, b) => (await model.forward(x, b)).logits, testSet, imported.config.numClasses);
  const w4a4 = await evaluate((x, b) => q.forward(x, b), testSet, imported.config.numClasses);
  console.log(`full precision ${(fp.top1 * 100).toFixed(2)}%, W4A4 ${(w4a4.top1 * 100).toFixed(2)}% on ${testSet.count} images`);
  fs.writeFileSync(`${path.basename(DEFAULT_MODEL, '.onnx')}-w4a4.onnx`, exportQuantizedOnnx(q).bytes);
  await q.dispose();
  await model.dispose();
}

main().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
