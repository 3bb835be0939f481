// Writes a labelled subset of a test set as IDX files (uint8 images, uint8 labels) with
// its licence notice, so the bundled models can be evaluated with nothing else installed.

import * as fs from 'fs';
import * as path from 'path';
import { LabelledImages } from './labelled-images';

export function writeEvalSubset(dir: string, set: LabelledImages, info: { name: string; mean: number; std: number; licence: string; source: string }, count: number): void {
  fs.mkdirSync(dir, { recursive: true });
  const n = Math.min(count, set.count);
  const per = set.height * set.width;
  const img = Buffer.alloc(16 + n * per);
  img.writeUInt32BE(0x00000803, 0);
  img.writeUInt32BE(n, 4);
  img.writeUInt32BE(set.height, 8);
  img.writeUInt32BE(set.width, 12);
  for (let i = 0; i < n * per; i++) img[16 + i] = Math.max(0, Math.min(255, Math.round((set.images[i] * info.std + info.mean) * 255)));
  const lab = Buffer.alloc(8 + n);
  lab.writeUInt32BE(0x00000801, 0);
  lab.writeUInt32BE(n, 4);
  for (let i = 0; i < n; i++) lab[8 + i] = set.labels[i];
  fs.writeFileSync(path.join(dir, 'images-idx3-ubyte'), img);
  fs.writeFileSync(path.join(dir, 'labels-idx1-ubyte'), lab);
  fs.writeFileSync(path.join(dir, 'LICENSE.md'), `The first ${n} images of the ${info.name} test set (${info.source}).\n\nLicence: ${info.licence}\n`);
}
