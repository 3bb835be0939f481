// Preprocessing sidecars: ImageNet defaults, timm and HuggingFace spellings, lookup order,
// and clear errors for values that cannot be right.

import * as fs from 'fs';
import * as path from 'path';
import { DEFAULT_CROP_PCT, IMAGENET_MEAN, IMAGENET_STD, readPreprocessing } from '../lib/onnx/preprocess';
import { completeVitConfig } from '../lib/vit-config';
import { tmpDir } from './fixtures/onnx/helpers';

const config = completeVitConfig({ imageSize: 224, patchSize: 16, embedDim: 192, depth: 12, numHeads: 3, numClasses: 1000 });

function modelIn(dir: string): string {
  const p = path.join(dir, 'vit.onnx');
  fs.writeFileSync(p, '');
  return p;
}

test('ImageNet defaults when there is no sidecar', () => {
  const p = readPreprocessing(modelIn(tmpDir('pre-default')), config);
  expect(p).toEqual({ height: 224, width: 224, resizeShorter: 256, cropPct: DEFAULT_CROP_PCT, interpolation: 'bicubic', mean: IMAGENET_MEAN, std: IMAGENET_STD, source: 'defaults' });
});

test('timm pretrained_cfg spelling in <model>.preprocess.json', () => {
  const dir = tmpDir('pre-timm');
  const model = modelIn(dir);
  fs.writeFileSync(path.join(dir, 'vit.preprocess.json'), JSON.stringify({ mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], crop_pct: 0.9, interpolation: 'bilinear', input_size: [3, 224, 224] }));
  const p = readPreprocessing(model, config);
  expect(p.mean).toEqual([0.5, 0.5, 0.5]);
  expect(p.resizeShorter).toBe(249);
  expect(p.interpolation).toBe('bilinear');
  expect(p.source).toBe(path.join(dir, 'vit.preprocess.json'));
});

test('HuggingFace preprocessor_config.json next to the model', () => {
  const dir = tmpDir('pre-hf');
  const model = modelIn(dir);
  fs.writeFileSync(path.join(dir, 'preprocessor_config.json'), JSON.stringify({ image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5], resample: 2, size: { height: 224, width: 224 } }));
  const p = readPreprocessing(model, config);
  expect(p.std).toEqual([0.5, 0.5, 0.5]);
  expect(p.interpolation).toBe('bilinear');
});

test('overrides beat the sidecar; an explicit sidecar beats the lookup', () => {
  const dir = tmpDir('pre-override');
  const model = modelIn(dir);
  fs.writeFileSync(path.join(dir, 'vit.preprocess.json'), JSON.stringify({ mean: [0.5, 0.5, 0.5] }));
  const other = path.join(dir, 'other.json');
  fs.writeFileSync(other, JSON.stringify({ mean: [0.1, 0.2, 0.3] }));
  expect(readPreprocessing(model, config, { sidecar: other }).mean).toEqual([0.1, 0.2, 0.3]);
  expect(readPreprocessing(model, config, { overrides: { mean: [0, 0, 0], cropPct: 1 } })).toMatchObject({ mean: [0, 0, 0], resizeShorter: 224 });
});

test('one-channel models average the ImageNet statistics', () => {
  const gray = completeVitConfig({ ...config, channels: 1 });
  const p = readPreprocessing(null, gray);
  expect(p.mean).toHaveLength(1);
  expect(p.mean[0]).toBeCloseTo((0.485 + 0.456 + 0.406) / 3, 12);
});

test('wrong values are named', () => {
  const dir = tmpDir('pre-bad');
  const model = modelIn(dir);
  const side = path.join(dir, 'vit.preprocess.json');
  fs.writeFileSync(side, JSON.stringify({ mean: [0.5, 0.5] }));
  expect(() => readPreprocessing(model, config)).toThrow(/'mean' must be a list of 3 numbers/);
  fs.writeFileSync(side, JSON.stringify({ std: [0.5, 0, 0.5] }));
  expect(() => readPreprocessing(model, config)).toThrow(/'std' values must be positive/);
  fs.writeFileSync(side, JSON.stringify({ input_size: [3, 384, 384] }));
  expect(() => readPreprocessing(model, config)).toThrow(/declares input size 384x384 but the model takes 224x224/);
  fs.writeFileSync(side, '{ not json');
  expect(() => readPreprocessing(model, config)).toThrow(/is not valid JSON/);
  expect(() => readPreprocessing(model, config, { sidecar: path.join(dir, 'missing.json') })).toThrow(/not found/);
});

test('class names from "classes" or id2label, one per output, else refused', () => {
  const small = completeVitConfig({ imageSize: 32, patchSize: 4, embedDim: 32, depth: 1, numHeads: 2, numClasses: 3 });
  const dir = tmpDir('pre-classes');
  const model = modelIn(dir);
  const sidecar = path.join(dir, 'vit.preprocess.json');
  fs.writeFileSync(sidecar, JSON.stringify({ mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], classes: ['cat', 'dog', 'ship'] }));
  expect(readPreprocessing(model, small).classes).toEqual(['cat', 'dog', 'ship']);
  fs.writeFileSync(sidecar, JSON.stringify({ id2label: { 0: 'tench', 1: 'goldfish', 2: 'shark' } }));
  expect(readPreprocessing(model, small).classes).toEqual(['tench', 'goldfish', 'shark']);
  fs.writeFileSync(sidecar, JSON.stringify({ classes: ['cat', 'dog'] }));
  expect(() => readPreprocessing(model, small)).toThrow(/class names \('classes' or 'id2label'\) must be 3 strings, one per model output, found \["cat","dog"\]/);
  fs.writeFileSync(sidecar, JSON.stringify({ id2label: { 0: 'a', 2: 'c', 3: 'd' } }));
  expect(() => readPreprocessing(model, small)).toThrow(/must be 3 strings/);
  fs.writeFileSync(sidecar, JSON.stringify({}));
  expect(readPreprocessing(model, small).classes).toBeUndefined();
});
