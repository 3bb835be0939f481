// Labelled evaluation images from disk, preprocessed for a model:
//  - IDX: a folder holding one `*images*idx3*` ([n, h, w] grey) or `*images*idx4*`
//    ([n, h, w, c] interleaved RGB) file and one `*labels*idx1*` file (gzip or not), or the
//    images file itself (its labels file found by replacing "images" with "labels");
//  - an image folder in the ImageNet validation layout: one subfolder per class (sorted
//    names give the class indices), PNG or JPEG files inside; or a flat folder with a
//    `labels.txt` of "<file name> <class index>" lines.
// Images are converted to the model's channels, resized (shorter side to size/cropPct,
// centre crop) and normalized (pixel − mean)/std, as timm's evaluation transform.

import * as fs from 'fs';
import * as path from 'path';
import { SpdfqError } from '../errors';
import { Preprocessing, PreprocessedInput } from '../onnx/preprocess';
import { readIdx } from '../image/idx';
import { Plane, resizeCenterCrop } from '../image/resize';
import { decodeImage, IMAGE_FILE, toChannels } from '../image/decode';
import { LabelledImages } from './labelled-images';

export interface EvalSetOptions {
  limit?: number;
}


function findIdxPair(p: string): { images: string; labels: string } | null {
  const stat = fs.statSync(p);
  if (stat.isFile()) {
    const labels = path.join(path.dirname(p), path.basename(p).replace('images', 'labels').replace(/idx[34]/, 'idx1'));
    if (!fs.existsSync(labels)) throw new SpdfqError('E_IO', `${p}: found no labels file beside it (expected ${labels})`);
    return { images: p, labels };
  }
  const files = fs.readdirSync(p);
  const images = files.filter((f) => /images.*idx[34]/.test(f));
  const labels = files.filter((f) => /labels.*idx1/.test(f));
  if (images.length === 0 && labels.length === 0) return null;
  if (images.length !== 1 || labels.length !== 1) {
    throw new SpdfqError('E_IO', `${p}: expected exactly one IDX images file and one IDX labels file, found ${images.length} and ${labels.length}`);
  }
  return { images: path.join(p, images[0]), labels: path.join(p, labels[0]) };
}

function folderItems(dir: string): { file: string; label: number }[] {
  const entries = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const classes = entries.filter((e) => e.isDirectory()).map((e) => e.name);
  const labelsTxt = path.join(dir, 'labels.txt');
  if (classes.length > 0) {
    const perClass = classes.map((cls, label) =>
      fs.readdirSync(path.join(dir, cls)).sort().filter((f) => IMAGE_FILE.test(f)).map((f) => ({ file: path.join(dir, cls, f), label })),
    );
    // Round-robin over the classes, so that the first n images (--eval-limit) are a
    // class-balanced sample rather than the first classes alone.
    const items: { file: string; label: number }[] = [];
    for (let i = 0; perClass.some((list) => i < list.length); i++) for (const list of perClass) if (i < list.length) items.push(list[i]);
    return items;
  }
  if (fs.existsSync(labelsTxt)) {
    return fs
      .readFileSync(labelsTxt, 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'))
      .map((l, i) => {
        const m = /^(\S+)\s+(\d+)$/.exec(l);
        if (!m) throw new SpdfqError('E_IO', `${labelsTxt} line ${i + 1}: expected "<file name> <class index>", found "${l}"`);
        // Files of the folder only: a name that leaves it (../x, /etc/x) is refused.
        const file = path.resolve(dir, m[1]);
        if (path.dirname(file) !== path.resolve(dir) && !file.startsWith(path.resolve(dir) + path.sep)) {
          throw new SpdfqError('E_IO', `${labelsTxt} line ${i + 1}: '${m[1]}' is outside ${dir}; expected the name of a file in that folder`);
        }
        return { file, label: Number(m[2]) };
      });
  }
  throw new SpdfqError('E_IO', `${dir}: expected IDX files, class subfolders of PNG/JPEG images, or a labels.txt; found none`);
}

export function loadEvalSet(p: string, config: PreprocessedInput, pre: Preprocessing, options: EvalSetOptions = {}): LabelledImages {
  if (!fs.existsSync(p)) throw new SpdfqError('E_IO', `evaluation images: ${p} does not exist (expected an IDX folder or file, or an image folder)`);
  const C = config.channels;
  const H = config.imageHeight;
  const W = config.imageWidth;
  const per = C * H * W;
  const limit = options.limit ?? Infinity;
  const normalize = (plane: Plane, dst: Float32Array, at: number) => {
    for (let ch = 0; ch < C; ch++) for (let i = 0; i < H * W; i++) dst[at + ch * H * W + i] = (plane.pixels[i * C + ch] - pre.mean[ch]) / pre.std[ch];
  };
  const pair = findIdxPair(p);
  let items: { label: number; load: () => Plane; where: string }[];
  if (pair) {
    const img = readIdx(pair.images);
    const lab = readIdx(pair.labels);
    // Rank 3: [n, h, w] grey (MNIST); rank 4: [n, h, w, c] with c = 1 or 3 (interleaved RGB).
    const rgb = img.dims.length === 4 && (img.dims[3] === 1 || img.dims[3] === 3);
    if (img.dims.length !== 3 && !rgb) throw new SpdfqError('E_IO', `${pair.images}: expected IDX images [n, h, w] or [n, h, w, 1|3], found [${img.dims.join(', ')}]`);
    if (lab.dims.length !== 1 || lab.dims[0] !== img.dims[0]) throw new SpdfqError('E_IO', `${pair.labels}: expected ${img.dims[0]} labels, found shape [${lab.dims.join(', ')}]`);
    const [n, h, w] = img.dims;
    const c = rgb ? img.dims[3] : 1;
    const scale = img.data instanceof Uint8Array ? 1 / 255 : 1;
    const size = h * w * c;
    items = Array.from({ length: n }, (_, i) => ({
      label: lab.data[i],
      where: `${pair.images}#${i}`,
      load: () => ({ width: w, height: h, channels: c, pixels: Float32Array.from(img.data.subarray(i * size, (i + 1) * size), (v) => v * scale) }),
    }));
  } else {
    items = folderItems(p).map((it) => ({ label: it.label, where: it.file, load: () => decodeImage(it.file) }));
  }
  const count = Math.min(items.length, limit);
  if (count === 0) throw new SpdfqError('E_IO', `evaluation images: ${p} holds no images`);
  const images = new Float32Array(count * per);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const it = items[i];
    if (!Number.isInteger(it.label) || it.label < 0 || it.label >= config.numClasses) {
      throw new SpdfqError('E_IO', `${it.where}: class ${it.label} is outside the model's ${config.numClasses} classes`);
    }
    let plane = toChannels(it.load(), C, it.where);
    if (plane.height !== H || plane.width !== W) plane = resizeCenterCrop(plane, H, W, pre.cropPct);
    normalize(plane, images, i * per);
    labels[i] = it.label;
  }
  return { images, labels, count, channels: C, height: H, width: W };
}
