// Decoding image files (PNG by our own decoder, JPEG by jpeg-js) into [h, w, c] planes in
// [0, 1], and channel conversion to what a model takes.

import * as fs from 'fs';
import * as jpeg from 'jpeg-js';
import { SpdfqError } from '../errors';
import { decodePng } from './png';
import { Plane } from './resize';

export const IMAGE_FILE = /\.(png|jpe?g)$/i;

export function decodeImage(file: string): Plane {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new SpdfqError('E_IO', `cannot read ${file}: ${(err as Error).message}`);
  }
  if (/\.png$/i.test(file)) return decodePng(bytes, file);
  try {
    const d = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024 });
    const ch = d.data.length / (d.width * d.height);
    const pixels = new Float32Array(d.width * d.height * 3);
    for (let i = 0; i < d.width * d.height; i++) for (let k = 0; k < 3; k++) pixels[i * 3 + k] = d.data[i * ch + (ch === 1 ? 0 : k)] / 255;
    return { width: d.width, height: d.height, channels: 3, pixels };
  } catch (err) {
    throw new SpdfqError('E_IO', `${file}: not a readable JPEG (${(err as Error).message})`);
  }
}

/** Grey → RGB by copying, RGB → grey by ITU-R 601-2 luma (PIL's 'L'). */
export function toChannels(p: Plane, channels: number, where: string): Plane {
  if (p.channels === channels) return p;
  const n = p.width * p.height;
  const out = new Float32Array(n * channels);
  if (p.channels === 1) for (let i = 0; i < n; i++) for (let c = 0; c < channels; c++) out[i * channels + c] = p.pixels[i];
  else if (p.channels === 3 && channels === 1) for (let i = 0; i < n; i++) out[i] = 0.299 * p.pixels[3 * i] + 0.587 * p.pixels[3 * i + 1] + 0.114 * p.pixels[3 * i + 2];
  else throw new SpdfqError('E_IO', `${where}: cannot convert a ${p.channels}-channel image to the model's ${channels} channels`);
  return { ...p, channels, pixels: out };
}

