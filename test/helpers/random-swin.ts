// The random-weight 32×32 RGB, 10-class Swin the Swin end-to-end tests run on (run, compare):
// small enough for seconds, evaluated on the bundled CIFAR-10 subset.

import * as fs from 'fs';
import * as path from 'path';
import { buildSwinOnnx } from '../../lib/onnx/build-swin';
import { completeSwinConfig, randomSwinWeights } from '../../lib/swin';

export const SWIN_EVAL = path.resolve(__dirname, '..', '..', 'models', 'cifar10-vit-test');
export const SWIN_CONFIG = completeSwinConfig({ imageSize: 32, patchSize: 4, embedDim: 16, depths: [2, 2], numHeads: [1, 2], windowSize: 4, mlpRatio: 2, numClasses: 10 });

/** Writes the Swin as `dir`/swin.onnx; returns its path. */
export function writeRandomSwin(dir: string): string {
  const w = randomSwinWeights(SWIN_CONFIG, 5);
  // Larger weights than the init so that the images' classes differ (not one class for all).
  for (const [k, v] of w) if (!/norm\d?\.weight$|relative_position_bias_table/.test(k)) v.forEach((x, i) => (v[i] = x * 4));
  const model = path.join(dir, 'swin.onnx');
  fs.writeFileSync(model, buildSwinOnnx(SWIN_CONFIG, w, { opset: 17 }));
  return model;
}
