// A labelled image set in memory: NCHW float32 images normalized with the model's
// preprocessing, and int32 labels. Loaders for IDX pairs (MNIST, Fashion-MNIST).

import { SpdfqError } from '../errors';
import { readIdx } from '../image/idx';

export interface LabelledImages {
  images: Float32Array;
  labels: Int32Array;
  count: number;
  channels: number;
  height: number;
  width: number;
}

/** Reads an IDX image file ([N, H, W] uint8) and its label file, normalizing (x/255 − mean)/std. */
export function loadIdxPair(imagesPath: string, labelsPath: string, mean: number, std: number, limit = Infinity): LabelledImages {
  const imgs = readIdx(imagesPath);
  const labs = readIdx(labelsPath);
  if (imgs.dims.length !== 3) throw new SpdfqError('E_IO', `${imagesPath}: expected IDX images of rank 3 [N, H, W], found [${imgs.dims.join(', ')}]`);
  if (labs.dims.length !== 1 || labs.dims[0] !== imgs.dims[0]) {
    throw new SpdfqError('E_IO', `${labelsPath}: expected ${imgs.dims[0]} labels to match the images, found shape [${labs.dims.join(', ')}]`);
  }
  const count = Math.min(imgs.dims[0], limit);
  const [, height, width] = imgs.dims;
  const images = new Float32Array(count * height * width);
  for (let i = 0; i < images.length; i++) images[i] = (imgs.data[i] / 255 - mean) / std;
  const labels = Int32Array.from({ length: count }, (_, i) => labs.data[i]);
  return { images, labels, count, channels: 1, height, width };
}

/** The first `count` images of a set, keeping `perClass` balanced if asked. */
export function subset(set: LabelledImages, indices: number[]): LabelledImages {
  const per = set.channels * set.height * set.width;
  const images = new Float32Array(indices.length * per);
  const labels = new Int32Array(indices.length);
  indices.forEach((src, dst) => {
    images.set(set.images.subarray(src * per, (src + 1) * per), dst * per);
    labels[dst] = set.labels[src];
  });
  return { ...set, images, labels, count: indices.length };
}
