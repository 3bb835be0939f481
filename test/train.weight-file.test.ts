// The trained Swin's weight file (lib/train/weight-file.ts): what is saved loads back by
// name, bit for bit, with its config; a truncated .bin is reported, not misread.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { completeSwinConfig, randomSwinWeights, swinParamSpecs } from '../lib/swin';
import { loadWeightFile, saveWeightFile } from '../lib/train/weight-file';

const config = completeSwinConfig({ imageSize: 8, patchSize: 2, windowSize: 2, embedDim: 8, depths: [1, 1], numHeads: [1, 2], numClasses: 3 });

test('saved weights load back by name, bit for bit, with their config', () => {
  const stem = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'spdfq-wf-')), 'm');
  const weights = randomSwinWeights(config, 4);
  const files = saveWeightFile(stem, { family: 'swin', config }, swinParamSpecs(config), weights);
  expect(files.map((f) => path.basename(f))).toEqual(['m.weights.bin', 'm.weights.json']);
  const back = loadWeightFile(stem);
  expect(back.meta).toEqual({ family: 'swin', config });
  expect([...back.weights.keys()]).toEqual(swinParamSpecs(config).map((s) => s.name));
  for (const [name, w] of weights) expect(Buffer.from(back.weights.get(name)!.buffer).equals(Buffer.from(w.buffer))).toBe(true);
  fs.truncateSync(`${stem}.weights.bin`, 12);
  expect(() => loadWeightFile(stem)).toThrow(/expected \d+ bytes, found 12/);
});

test('a weight of the wrong size is refused by name', () => {
  const stem = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'spdfq-wf-')), 'm');
  const weights = randomSwinWeights(config, 4);
  weights.set('head.bias', new Float32Array(2));
  expect(() => saveWeightFile(stem, { family: 'swin', config }, swinParamSpecs(config), weights)).toThrow(/weight 'head.bias': expected 3 floats, received 2/);
});
