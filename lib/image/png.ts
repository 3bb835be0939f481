// A complete PNG reader and a writer on node's zlib (no dependency): every colour type
// (grey, RGB, palette, grey+alpha, RGBA), bit depths 1–16, all five row filters, Adam7
// interlacing, CRC checks. Decoded images come out as floats in [0, 1], alpha dropped
// (as PIL's convert('RGB'), so calibration images see the colours the file stores).

import * as zlib from 'zlib';
import { SpdfqError } from '../errors';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export interface DecodedImage {
  width: number;
  height: number;
  /** 1 (grey) or 3 (RGB). */
  channels: 1 | 3;
  /** [height, width, channels], values in [0, 1]. */
  pixels: Float32Array;
}

/** Samples per pixel of each PNG colour type. */
const SAMPLES: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
// Adam7 passes: x start, y start, x step, y step.
const ADAM7 = [
  [0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2],
] as const;

function fail(where: string, message: string): never {
  throw new SpdfqError('E_IO', `${where}: ${message}`);
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Undoes the row filters of one (sub-)image in place; returns the raw rows. */
function unfilter(data: Uint8Array, offset: number, rows: number, stride: number, bpp: number, where: string): Uint8Array {
  const out = new Uint8Array(rows * stride);
  for (let y = 0; y < rows; y++) {
    const f = data[offset + y * (stride + 1)];
    const src = offset + y * (stride + 1) + 1;
    const row = y * stride, prev = (y - 1) * stride;
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? out[row + x - bpp] : 0;
      const b = y > 0 ? out[prev + x] : 0;
      const c = x >= bpp && y > 0 ? out[prev + x - bpp] : 0;
      const v = data[src + x];
      let r: number;
      switch (f) {
        case 0: r = v; break;
        case 1: r = v + a; break;
        case 2: r = v + b; break;
        case 3: r = v + ((a + b) >> 1); break;
        case 4: r = v + paeth(a, b, c); break;
        default: fail(where, `unknown row filter ${f} in row ${y} (expected 0–4)`);
      }
      out[row + x] = r & 0xff;
    }
  }
  return out;
}

/** Decodes a PNG file's bytes. `where` names the file in errors. */
export function decodePng(bytes: Uint8Array, where = 'PNG'): DecodedImage {
  if (bytes.length < 8 || !SIGNATURE.equals(Buffer.from(bytes.subarray(0, 8)))) fail(where, 'not a PNG file (bad signature)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 8;
  let width = 0, height = 0, depth = 0, colorType = -1, interlace = 0;
  let palette: Uint8Array | null = null;
  const idat: Uint8Array[] = [];
  let sawEnd = false;
  while (pos + 12 <= bytes.length) {
    const len = view.getUint32(pos);
    const type = String.fromCharCode(bytes[pos + 4], bytes[pos + 5], bytes[pos + 6], bytes[pos + 7]);
    if (pos + 12 + len > bytes.length) fail(where, `chunk ${type} runs past the end of the file (truncated?)`);
    const data = bytes.subarray(pos + 8, pos + 8 + len);
    const crc = view.getUint32(pos + 8 + len);
    if (crc32(bytes, pos + 4, pos + 8 + len) !== crc) fail(where, `CRC mismatch in chunk ${type} (corrupt file)`);
    if (type === 'IHDR') {
      if (len !== 13) fail(where, `IHDR of ${len} bytes, expected 13`);
      const d = new DataView(data.buffer, data.byteOffset, 13);
      width = d.getUint32(0);
      height = d.getUint32(4);
      depth = data[8];
      colorType = data[9];
      interlace = data[12];
      if (data[10] !== 0 || data[11] !== 0) fail(where, 'unknown compression or filter method');
      if (interlace > 1) fail(where, `unknown interlace method ${interlace}`);
      if (!(colorType in SAMPLES) || !DEPTHS[colorType].includes(depth)) {
        fail(where, `colour type ${colorType} with bit depth ${depth} is not valid PNG`);
      }
      if (width === 0 || height === 0 || width * height > 2 ** 28) fail(where, `image size ${width}×${height} out of range`);
    } else if (type === 'PLTE') {
      palette = data.slice();
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'IEND') {
      sawEnd = true;
      break;
    } else if ((bytes[pos + 4] & 0x20) === 0) {
      fail(where, `unknown critical chunk ${type}`);
    }
    pos += 12 + len;
  }
  if (colorType < 0) fail(where, 'no IHDR chunk');
  if (!sawEnd) fail(where, 'no IEND chunk (truncated file?)');
  if (idat.length === 0) fail(where, 'no image data (IDAT)');
  if (colorType === 3 && !palette) fail(where, 'palette image without a PLTE chunk');
  let raw: Buffer;
  try {
    raw = zlib.inflateSync(Buffer.concat(idat));
  } catch (err) {
    fail(where, `image data does not inflate: ${(err as Error).message}`);
  }

  const samples = SAMPLES[colorType];
  const bitsPerPixel = samples * depth;
  const bpp = Math.max(1, bitsPerPixel >> 3);
  const maxv = (1 << depth) - 1;
  const colorOut = colorType === 2 || colorType === 3 || colorType === 6 ? 3 : 1;
  const pixels = new Float32Array(width * height * colorOut);

  // Reads sample s of pixel x from a raw row.
  const sample = (row: Uint8Array, rowOff: number, x: number, s: number): number => {
    if (depth === 8) return row[rowOff + x * samples + s];
    if (depth === 16) {
      const i = rowOff + (x * samples + s) * 2;
      return (row[i] << 8) | row[i + 1];
    }
    const bit = (x * samples + s) * depth;
    return (row[rowOff + (bit >> 3)] >> (8 - depth - (bit & 7))) & maxv;
  };
  const put = (row: Uint8Array, rowOff: number, x: number, px: number) => {
    const o = px * colorOut;
    if (colorType === 3) {
      const idx = sample(row, rowOff, x, 0);
      if (!palette || idx * 3 + 2 >= palette.length) fail(where, `palette index ${idx} outside the palette`);
      pixels[o] = palette[idx * 3] / 255;
      pixels[o + 1] = palette[idx * 3 + 1] / 255;
      pixels[o + 2] = palette[idx * 3 + 2] / 255;
    } else {
      for (let c = 0; c < colorOut; c++) pixels[o + c] = sample(row, rowOff, x, c) / maxv;
    }
  };

  let offset = 0;
  const passes = interlace ? ADAM7 : ([[0, 0, 1, 1]] as const);
  for (const [x0, y0, dx, dy] of passes) {
    const pw = Math.ceil((width - x0) / dx), ph = Math.ceil((height - y0) / dy);
    if (pw <= 0 || ph <= 0) continue;
    const stride = Math.ceil((pw * bitsPerPixel) / 8);
    if (offset + ph * (stride + 1) > raw.length) fail(where, 'image data shorter than the image size requires');
    const rows = unfilter(raw, offset, ph, stride, bpp, where);
    offset += ph * (stride + 1);
    for (let y = 0; y < ph; y++)
      for (let x = 0; x < pw; x++) put(rows, y * stride, x, (y0 + y * dy) * width + x0 + x * dx);
  }
  return { width, height, channels: colorOut as 1 | 3, pixels };
}

/** Encodes 8-bit grey (1), grey+alpha (2), RGB (3) or RGBA (4) pixels [h, w, c] as PNG,
 *  choosing each row's filter by the minimum-sum-of-absolute-differences heuristic. */
export function encodePng(width: number, height: number, channels: 1 | 2 | 3 | 4, data: Uint8Array): Buffer {
  if (data.length !== width * height * channels) {
    throw new SpdfqError('E_TENSOR', `encodePng: expected ${width * height * channels} bytes for ${width}×${height}×${channels}, received ${data.length}`);
  }
  const colorType = { 1: 0, 2: 4, 3: 2, 4: 6 }[channels];
  const stride = width * channels;
  const filtered = Buffer.alloc(height * (stride + 1));
  const cand = Array.from({ length: 5 }, () => new Uint8Array(stride));
  for (let y = 0; y < height; y++) {
    const row = y * stride, prev = (y - 1) * stride;
    let best = 0, bestScore = Infinity;
    for (let f = 0; f < 5; f++) {
      let score = 0;
      for (let x = 0; x < stride; x++) {
        const v = data[row + x];
        const a = x >= channels ? data[row + x - channels] : 0;
        const b = y > 0 ? data[prev + x] : 0;
        const c = x >= channels && y > 0 ? data[prev + x - channels] : 0;
        const r = (f === 0 ? v : f === 1 ? v - a : f === 2 ? v - b : f === 3 ? v - ((a + b) >> 1) : v - paeth(a, b, c)) & 0xff;
        cand[f][x] = r;
        score += r < 128 ? r : 256 - r;
      }
      if (score < bestScore) {
        bestScore = score;
        best = f;
      }
    }
    filtered[y * (stride + 1)] = best;
    filtered.set(cand[best], y * (stride + 1) + 1);
  }
  const chunk = (type: string, body: Uint8Array): Buffer => {
    const out = Buffer.alloc(12 + body.length);
    out.writeUInt32BE(body.length, 0);
    out.write(type, 4, 'latin1');
    Buffer.from(body).copy(out, 8);
    out.writeUInt32BE(crc32(out, 4, 8 + body.length), 8 + body.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = colorType;
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(filtered)), chunk('IEND', new Uint8Array(0))]);
}
