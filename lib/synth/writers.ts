// Writes a synthesis result to a folder, and reads the tensor back:
//   images.npy     [B, C, H, W] float32, the model's normalized input space (np.load works)
//   images/NNN.png each image de-normalized to 8-bit (grey or RGB)
//   grid.png       all images in one picture
//   targets.json   own classes, MSR cell classes, SL logits, α1
//   losses.csv     one row per step (and losses.json, the same records)
//   priors.npy     APA priors [B, sets, heads, gridH, gridW] (SPDFQ with APA)
//   synthesis.json method, resolved options, plan, timing, how the run ended

import * as fs from 'fs';
import * as path from 'path';
import { SpdfqError } from '../errors';
import { makeDir, writeFileAtomic } from '../io/atomic';
import { decodeNpy, encodeNpy } from '../image/npy';
import { encodePng } from '../image/png';
import type { Preprocess } from './options';
import type { SynthesisResult } from './synthesize';

export interface WriteOptions {
  /** Per-image PNGs: true. */
  pngs?: boolean;
  /** The grid picture: true. */
  grid?: boolean;
  /** How the run ended, recorded in synthesis.json (e.g. a cancel). */
  stopped?: { code: string; step: number; part: string; message: string } | null;
}

/** 8-bit pixels [h, w, c'] of image b (c' = 1 or 3; other channel counts show their mean). */
export function imageToBytes(images: Float32Array, shape: readonly number[], b: number, pre: Preprocess): { bytes: Uint8Array; channels: 1 | 3 } {
  const [, C, H, W] = shape;
  const out = C === 3 ? 3 : 1;
  const bytes = new Uint8Array(H * W * out);
  const base = b * C * H * W;
  for (let i = 0; i < H * W; i++) {
    for (let k = 0; k < out; k++) {
      let v: number;
      if (out === C) v = images[base + k * H * W + i] * pre.std[k] + pre.mean[k];
      else {
        v = 0;
        for (let ch = 0; ch < C; ch++) v += images[base + ch * H * W + i] * pre.std[ch] + pre.mean[ch];
        v /= C;
      }
      bytes[i * out + k] = Math.round(Math.min(1, Math.max(0, v)) * 255);
    }
  }
  return { bytes, channels: out };
}

/** One picture of all images: ⌈√B⌉ columns, 2-pixel white gutters, small images enlarged
 *  (nearest neighbour) so each tile is at least 64 pixels high. */
export function imageGridPng(images: Float32Array, shape: readonly number[], pre: Preprocess): Buffer {
  const [B, C, H, W] = shape;
  const cols = Math.ceil(Math.sqrt(B)), rows = Math.ceil(B / cols);
  const zoom = Math.max(1, Math.ceil(64 / H));
  const th = H * zoom, tw = W * zoom, gap = 2;
  const gw = cols * tw + (cols + 1) * gap, gh = rows * th + (rows + 1) * gap;
  const ch = C === 3 ? 3 : 1;
  const grid = new Uint8Array(gw * gh * ch).fill(255);
  for (let b = 0; b < B; b++) {
    const { bytes } = imageToBytes(images, shape, b, pre);
    const oy = gap + Math.floor(b / cols) * (th + gap), ox = gap + (b % cols) * (tw + gap);
    for (let y = 0; y < th; y++)
      for (let x = 0; x < tw; x++)
        for (let k = 0; k < ch; k++) grid[((oy + y) * gw + ox + x) * ch + k] = bytes[(Math.floor(y / zoom) * W + Math.floor(x / zoom)) * ch + k];
  }
  return encodePng(gw, gh, ch, grid);
}

function csvNumber(v: number): string {
  return Number.isFinite(v) ? String(v) : v !== v ? 'NaN' : v > 0 ? 'Inf' : '-Inf';
}

/** Writes every output of `r` into `dir` (created if needed); returns the files written. */
export function writeSynthesisOutputs(r: SynthesisResult, dir: string, opts: WriteOptions = {}): string[] {
  const written: string[] = [];
  const write = (name: string, data: string | Uint8Array) => {
    const p = path.join(dir, name);
    makeDir(path.dirname(p));
    writeFileAtomic(p, data);
    written.push(p);
  };
  write('images.npy', encodeNpy(r.images, [...r.shape]));
  if (opts.pngs ?? true) {
    const digits = Math.max(3, String(r.shape[0] - 1).length);
    for (let b = 0; b < r.shape[0]; b++) {
      const { bytes, channels } = imageToBytes(r.images, r.shape, b, r.preprocess);
      write(path.join('images', `${String(b).padStart(digits, '0')}.png`), encodePng(r.shape[3], r.shape[2], channels, bytes));
    }
  }
  if (opts.grid ?? true) write('grid.png', imageGridPng(r.images, r.shape, r.preprocess));
  write('targets.json', `${JSON.stringify({
    method: r.method,
    targets: Array.from(r.targets),
    regionClasses: r.regionClasses ? Array.from(r.regionClasses) : null,
    regionGrid: r.regionClasses ? r.options.msr.grid : null,
    softLogits: r.softLogits ? { own: Array.from(r.softLogits.own), cells: r.softLogits.cells ? Array.from(r.softLogits.cells) : null } : null,
    alpha: r.alpha,
    sources: r.sources,
  }, null, 2)}\n`);
  const cols = ['step', 'round', 'lr', 'total', 'apa', 'cls', 'tv', 'pse', 'targetProb'] as const;
  write('losses.csv', `${cols.join(',')}\n${r.losses.map((l) => cols.map((k) => csvNumber(l[k])).join(',')).join('\n')}${r.losses.length ? '\n' : ''}`);
  write('losses.json', `${JSON.stringify(r.losses)}\n`);
  if (r.priors) write('priors.npy', encodeNpy(r.priors.maps, [...r.priors.shape]));
  write('synthesis.json', `${JSON.stringify({
    method: r.method,
    shape: r.shape,
    stepsDone: r.stepsDone,
    totalSteps: r.totalSteps,
    seconds: r.seconds,
    alpha: r.alpha,
    plan: r.plan,
    priorBlocks: r.priors ? r.priors.blocks : null,
    priorQuery: r.priors ? r.priors.query : null,
    stopped: opts.stopped ?? null,
    options: r.options,
  }, null, 2)}\n`);
  return written;
}

/** Reads images.npy (and targets.json, synthesis.json when present) from an output folder. */
export function readSynthesisOutputs(dir: string): { images: Float32Array; shape: number[]; targets: Int32Array | null; meta: Record<string, unknown> | null } {
  const file = path.join(dir, 'images.npy');
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new SpdfqError('E_IO', `cannot read ${file}: ${(err as Error).message}`);
  }
  const arr = decodeNpy(bytes, file);
  if (arr.dtype !== '<f4' || arr.shape.length !== 4) throw new SpdfqError('E_IO', `${file}: expected float32 [B, C, H, W], found ${arr.dtype} [${arr.shape.join(', ')}]`);
  const readJson = (name: string): Record<string, unknown> | null => {
    const p = path.join(dir, name);
    return fs.existsSync(p) ? (JSON.parse(fs.readFileSync(p, 'utf8')) as Record<string, unknown>) : null;
  };
  const t = readJson('targets.json');
  return {
    images: arr.data,
    shape: arr.shape,
    targets: t && Array.isArray(t.targets) ? Int32Array.from(t.targets as number[]) : null,
    meta: readJson('synthesis.json'),
  };
}

/** Rebuilds the SynthesisResult that writeSynthesisOutputs wrote into `dir` (a resumed run
 *  reuses it instead of synthesizing again); null when a file is missing or unreadable. */
export function readSynthesisResult(dir: string): SynthesisResult | null {
  try {
    const { images, shape, meta } = readSynthesisOutputs(dir);
    const t = JSON.parse(fs.readFileSync(path.join(dir, 'targets.json'), 'utf8'));
    const losses = JSON.parse(fs.readFileSync(path.join(dir, 'losses.json'), 'utf8'));
    if (!meta || meta.stopped) return null;
    const options = meta.options as SynthesisResult['options'];
    let priors: SynthesisResult['priors'] = null;
    if (meta.priorBlocks) {
      const arr = decodeNpy(fs.readFileSync(path.join(dir, 'priors.npy')), path.join(dir, 'priors.npy'));
      priors = { maps: Float32Array.from(arr.data), shape: arr.shape as [number, number, number, number, number], blocks: meta.priorBlocks as number[], query: meta.priorQuery as 'class' | 'mean' };
    }
    return {
      method: meta.method as SynthesisResult['method'],
      images,
      shape: shape as [number, number, number, number],
      targets: Int32Array.from(t.targets),
      regionClasses: t.regionClasses ? Int32Array.from(t.regionClasses) : null,
      softLogits: t.softLogits ? { own: Float32Array.from(t.softLogits.own), cells: t.softLogits.cells ? Float32Array.from(t.softLogits.cells) : null } : null,
      priors,
      losses,
      alpha: t.alpha,
      stepsDone: meta.stepsDone as number,
      totalSteps: meta.totalSteps as number,
      seconds: meta.seconds as number,
      plan: meta.plan as SynthesisResult['plan'],
      preprocess: options.preprocess,
      sources: t.sources,
      options,
    };
  } catch {
    return null;
  }
}
