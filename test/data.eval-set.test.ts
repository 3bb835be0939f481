// Labelled image sets on disk: colour IDX (rank 4, the form the bundled CIFAR-10 subset
// ships in) written by writeEvalSubset and read back by loadEvalSet, and class folders
// read in an interleaved order so that a prefix (--eval-limit) is class-balanced.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as jpeg from 'jpeg-js';
import { loadEvalSet } from '../lib/data/eval-set';
import { writeEvalSubset } from '../lib/data/eval-subset';
import { completeVitConfig } from '../lib/vit-config';
import { Preprocessing } from '../lib/onnx/preprocess';

const config = completeVitConfig({ imageSize: 4, channels: 3, patchSize: 2, embedDim: 8, depth: 1, numHeads: 2, numClasses: 3 });
const pre: Preprocessing = { height: 4, width: 4, resizeShorter: 4, cropPct: 1, interpolation: 'bilinear', mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3], source: 'test' };

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'spdfq-eval-'));
}

test('colour subsets round-trip through rank-4 IDX with their per-channel normalization', () => {
  const n = 5, per = 3 * 16;
  // Pixel values on the 8-bit grid, normalized per channel as the loader does.
  const pixels = Array.from({ length: n * per }, (_, i) => (i * 37) % 256);
  const images = new Float32Array(n * per);
  for (let b = 0; b < n; b++) for (let c = 0; c < 3; c++) for (let k = 0; k < 16; k++) images[b * per + c * 16 + k] = (pixels[b * per + c * 16 + k] / 255 - pre.mean[c]) / pre.std[c];
  const labels = Int32Array.from([2, 0, 1, 1, 0]);
  const dir = tmp();
  writeEvalSubset(dir, { images, labels, count: n, channels: 3, height: 4, width: 4 }, { name: 'test', mean: pre.mean, std: pre.std, licence: 'none', source: 'generated' }, 10, [4, 0, 2]);
  expect(fs.readdirSync(dir).sort()).toEqual(['LICENSE.md', 'images-idx4-ubyte.gz', 'labels-idx1-ubyte']);
  const set = loadEvalSet(dir, config, pre);
  expect(set.count).toBe(3);
  expect(Array.from(set.labels)).toEqual([0, 2, 1]);
  [4, 0, 2].forEach((src, j) => {
    for (let i = 0; i < per; i++) expect(set.images[j * per + i]).toBeCloseTo(images[src * per + i], 5);
  });
});

test('class folders are read class by class in turn, so the first images cover every class', () => {
  const dir = tmp();
  const classes = ['airplane', 'bird', 'cat'];
  classes.forEach((cls, k) => {
    fs.mkdirSync(path.join(dir, cls));
    for (let i = 0; i < 3 + k; i++) {
      const data = Buffer.alloc(4 * 4 * 4, 40 * k + i);
      fs.writeFileSync(path.join(dir, cls, `${String(i).padStart(4, '0')}.jpg`), jpeg.encode({ data, width: 4, height: 4 }, 95).data);
    }
  });
  const set = loadEvalSet(dir, config, pre);
  expect(set.count).toBe(3 + 4 + 5);
  expect(Array.from(set.labels)).toEqual([0, 1, 2, 0, 1, 2, 0, 1, 2, 1, 2, 2]);
  expect(Array.from(loadEvalSet(dir, config, pre, { limit: 3 }).labels)).toEqual([0, 1, 2]);
});

test('an IDX image file of rank 4 with 2 channels is refused with its shape', () => {
  const dir = tmp();
  const img = Buffer.alloc(4 + 16 + 2 * 4 * 4 * 2);
  img.writeUInt32BE(0x00000804, 0);
  [2, 4, 4, 2].forEach((d, i) => img.writeUInt32BE(d, 4 + 4 * i));
  fs.writeFileSync(path.join(dir, 'images-idx4-ubyte'), img);
  const lab = Buffer.alloc(10);
  lab.writeUInt32BE(0x00000801, 0);
  lab.writeUInt32BE(2, 4);
  fs.writeFileSync(path.join(dir, 'labels-idx1-ubyte'), lab);
  expect(() => loadEvalSet(dir, config, pre)).toThrow(/expected IDX images \[n, h, w\] or \[n, h, w, 1\|3\], found \[2, 4, 4, 2\]/);
});
