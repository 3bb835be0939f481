// Writes a labelled subset of a test set as IDX files (uint8 images, uint8 labels) with
// its licence notice, so the bundled models can be evaluated with nothing else installed.
// Grey sets are written as rank-3 IDX [n, h, w] (MNIST's own layout), colour sets as
// rank-4 [n, h, w, c] (interleaved channels) and gzip-compressed; eval-set.ts reads both.

import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { LabelledImages } from './labelled-images';

export interface SubsetInfo {
  name: string;
  /** Per-channel (or one shared) normalization the images were loaded with. */
  mean: number | number[];
  std: number | number[];
  licence: string;
  source: string;
}

function perChannel(v: number | number[], c: number): number[] {
  return typeof v === 'number' ? new Array<number>(c).fill(v) : v;
}

/** Writes the first `count` images of `set` (or those at `indices`) to `dir`. */
export function writeEvalSubset(dir: string, set: LabelledImages, info: SubsetInfo, count: number, indices?: number[]): void {
  fs.mkdirSync(dir, { recursive: true });
  const pick = indices ?? Array.from({ length: Math.min(count, set.count) }, (_, i) => i);
  const n = pick.length;
  const { channels: C, height: H, width: W } = set;
  const mean = perChannel(info.mean, C);
  const std = perChannel(info.std, C);
  const rank = C === 1 ? 3 : 4;
  const header = 4 + 4 * rank;
  const img = Buffer.alloc(header + n * H * W * C);
  img.writeUInt32BE(0x00000800 + rank, 0);
  [n, H, W, ...(rank === 4 ? [C] : [])].forEach((d, i) => img.writeUInt32BE(d, 4 + 4 * i));
  const per = C * H * W;
  pick.forEach((src, j) => {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        for (let ch = 0; ch < C; ch++) {
          const v = set.images[src * per + ch * H * W + y * W + x] * std[ch] + mean[ch];
          img[header + j * per + (y * W + x) * C + ch] = Math.max(0, Math.min(255, Math.round(v * 255)));
        }
      }
    }
  });
  const lab = Buffer.alloc(8 + n);
  lab.writeUInt32BE(0x00000801, 0);
  lab.writeUInt32BE(n, 4);
  pick.forEach((src, j) => (lab[8 + j] = set.labels[src]));
  if (rank === 3) {
    fs.writeFileSync(path.join(dir, 'images-idx3-ubyte'), img);
  } else {
    fs.writeFileSync(path.join(dir, 'images-idx4-ubyte.gz'), zlib.gzipSync(img, { level: 9 }));
  }
  fs.writeFileSync(path.join(dir, 'labels-idx1-ubyte'), lab);
  const which = indices ? `${n} images` : `The first ${n} images`;
  fs.writeFileSync(path.join(dir, 'LICENSE.md'), `${which} of the ${info.name} test set (${info.source}).\n\nLicence: ${info.licence}\n`);
}
