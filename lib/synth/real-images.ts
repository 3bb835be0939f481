// Real calibration images (the upper reference of the comparison): a folder of PNG/JPEG files
// (class subfolders, sorted, give the labels: the ImageNet validation layout) or an IDX
// images file with an optional IDX labels file. Each image is converted to the model's
// channel count, resized to its input and normalized with its mean and std.

import * as fs from 'fs';
import * as path from 'path';
import { SpdfqError } from '../errors';
import { SynthModelShape } from './model-shape';
import { readIdx } from '../image/idx';
import type { ResolvedSynthesisOptions } from './options';
import { decodeImage, IMAGE_FILE, toChannels } from '../image/decode';
import { mulberry32, shuffle } from './random';
import { Plane, resample, resizeCenterCrop } from '../image/resize';
import type { SynthesisResult } from './result';


interface Candidate {
  /** Where it came from, for the outputs and errors. */
  source: string;
  label: number;
  load: () => Plane;
}

function folderCandidates(dir: string): Candidate[] {
  const entries = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const classes = entries.filter((e) => e.isDirectory()).map((e) => e.name);
  const out: Candidate[] = [];
  const add = (file: string, label: number) => {
    if (!IMAGE_FILE.test(file)) return;
    out.push({ source: file, label, load: () => decodeImage(file) });
  };
  for (const e of entries) if (e.isFile()) add(path.join(dir, e.name), -1);
  classes.forEach((cls, label) => {
    for (const f of fs.readdirSync(path.join(dir, cls)).sort()) {
      const p = path.join(dir, cls, f);
      if (fs.statSync(p).isFile()) add(p, label);
    }
  });
  return out;
}

function idxCandidates(file: string, labelsFile: string | null): Candidate[] {
  const img = readIdx(file);
  if (img.dims.length !== 3 && !(img.dims.length === 4 && (img.dims[3] === 1 || img.dims[3] === 3))) {
    throw new SpdfqError('E_IO', `${file}: expected IDX images of shape [n, h, w] or [n, h, w, 1|3], found [${img.dims.join(', ')}]`);
  }
  const [n, h, w] = img.dims;
  const c = img.dims.length === 4 ? img.dims[3] : 1;
  let labels: ArrayLike<number> | null = null;
  if (labelsFile) {
    const l = readIdx(labelsFile);
    if (l.dims.length !== 1 || l.dims[0] !== n) {
      throw new SpdfqError('E_IO', `${labelsFile}: expected ${n} labels (shape [${n}]), found shape [${l.dims.join(', ')}]`);
    }
    labels = l.data;
  }
  // Byte images are 0–255; other element types are taken as already in [0, 1].
  const scale = img.data instanceof Uint8Array ? 1 / 255 : 1;
  return Array.from({ length: n }, (_, i) => ({
    source: `${file}#${i}`,
    label: labels ? labels[i] : -1,
    load: (): Plane => {
      const px = new Float32Array(h * w * c);
      for (let k = 0; k < px.length; k++) px[k] = img.data[i * h * w * c + k] * scale;
      return { width: w, height: h, channels: c, pixels: px };
    },
  }));
}

export async function loadRealImages(c: SynthModelShape, o: ResolvedSynthesisOptions, signal?: AbortSignal): Promise<SynthesisResult> {
  const t0 = process.hrtime.bigint();
  const r = o.real;
  if (!r) throw new SpdfqError('E_CONFIG', "method 'real': expected real.path");
  let stat: fs.Stats;
  try {
    stat = fs.statSync(r.path);
  } catch {
    throw new SpdfqError('E_IO', `real images: ${r.path} does not exist (expected a folder of PNG/JPEG files or an IDX images file)`);
  }
  const all = stat.isDirectory() ? folderCandidates(r.path) : idxCandidates(r.path, r.labels);
  if (all.length < o.images) {
    throw new SpdfqError('E_CONFIG', `real images: expected at least ${o.images} images in ${r.path}, found ${all.length}`);
  }
  const chosen = (r.shuffle ? shuffle(all.slice(), mulberry32(o.seed)) : all).slice(0, o.images);
  const H = c.imageHeight, W = c.imageWidth, C = c.channels, L = C * H * W;
  const images = new Float32Array(o.images * L);
  const targets = new Int32Array(o.images);
  for (let b = 0; b < chosen.length; b++) {
    if (signal?.aborted) throw new SpdfqError('E_CANCELLED', `loading real images cancelled after ${b} of ${o.images}`);
    const cand = chosen[b];
    let p = toChannels(cand.load(), C, cand.source);
    if (p.height !== H || p.width !== W) p = r.resize === 'center-crop' ? resizeCenterCrop(p, H, W, r.cropPct) : resample(p, H, W);
    for (let ch = 0; ch < C; ch++) {
      const m = o.preprocess.mean[ch], s = o.preprocess.std[ch];
      for (let i = 0; i < H * W; i++) images[b * L + ch * H * W + i] = (p.pixels[i * C + ch] - m) / s;
    }
    targets[b] = cand.label < c.numClasses ? cand.label : -1;
  }
  return {
    method: 'real',
    images,
    shape: [o.images, C, H, W],
    targets,
    regionClasses: null,
    softLogits: null,
    priors: null,
    losses: [],
    alpha: null,
    stepsDone: 0,
    totalSteps: 0,
    seconds: Number(process.hrtime.bigint() - t0) / 1e9,
    plan: null,
    preprocess: o.preprocess,
    sources: chosen.map((x) => x.source),
    options: o,
  };
}
