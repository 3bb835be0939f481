// Reading and writing around synthesis: the PNG codec (against PNGs built here by hand,
// byte by byte from the specification, with every filter and Adam7), NumPy .npy, IDX,
// real-image loading, the output folder, and the `synth` command (with a tiny model in
// place of an ONNX file, since the loader is injectable).

import * as fs from 'fs';
import * as jpeg from 'jpeg-js';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { runSynthCommand, SynthArgs } from '../lib/cli/commands/synth';
import { SynthesisStoppedError } from '../lib/synth/errors';
import { parseIdx } from '../lib/image/idx';
import { decodeNpy, encodeNpy } from '../lib/image/npy';
import { crc32, decodePng, encodePng } from '../lib/image/png';
import { synthesize } from '../lib/synth/synthesize';
import { readSynthesisOutputs, writeSynthesisOutputs } from '../lib/synth/writers';
import { createVit } from '../lib/vit';
import { VitConfigInput } from '../lib/vit-config';
import { sizableWeights } from './helpers/synth-model';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'spdfq-synth-'));

// ---- a hand-made PNG writer, independent of lib/image/png.ts
function chunk(type: string, body: Buffer): Buffer {
  const b = Buffer.alloc(12 + body.length);
  b.writeUInt32BE(body.length, 0);
  b.write(type, 4, 'latin1');
  body.copy(b, 8);
  // CRC-32 by the bitwise definition (not a table).
  let c = 0xffffffff;
  for (let i = 4; i < 8 + body.length; i++) {
    c ^= b[i];
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  b.writeUInt32BE((c ^ 0xffffffff) >>> 0, 8 + body.length);
  return b;
}
/** Raw rows (already packed) → filtered rows with filter (row index % 5). */
function filterRows(rows: Buffer[], bpp: number): Buffer {
  const out: Buffer[] = [];
  rows.forEach((row, y) => {
    const f = y % 5;
    const prev = y > 0 ? rows[y - 1] : Buffer.alloc(row.length);
    const r = Buffer.alloc(row.length + 1);
    r[0] = f;
    for (let x = 0; x < row.length; x++) {
      const a = x >= bpp ? row[x - bpp] : 0, b = prev[x], c = x >= bpp ? prev[x - bpp] : 0;
      const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
      const pred = [0, a, b, (a + b) >> 1, pa <= pb && pa <= pc ? a : pb <= pc ? b : c][f];
      r[x + 1] = (row[x] - pred) & 0xff;
    }
    out.push(r);
  });
  return Buffer.concat(out);
}
function pngFile(w: number, h: number, depth: number, colorType: number, samples: number[][][], extra: Buffer[] = [], interlace = false): Buffer {
  const spp = samples[0][0].length;
  const packRow = (px: number[][]) => {
    const bits = px.length * spp * depth;
    const row = Buffer.alloc(Math.ceil(bits / 8));
    let bit = 0;
    for (const p of px)
      for (const s of p) {
        if (depth === 16) row.writeUInt16BE(s, bit / 8);
        else if (depth === 8) row[bit / 8] = s;
        else row[bit >> 3] |= s << (8 - depth - (bit & 7));
        bit += depth;
      }
    return row;
  };
  const bpp = Math.max(1, (spp * depth) >> 3);
  let data: Buffer;
  if (!interlace) data = filterRows(samples.map(packRow), bpp);
  else {
    const passes = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];
    const parts: Buffer[] = [];
    for (const [x0, y0, dx, dy] of passes) {
      const rows: Buffer[] = [];
      for (let y = y0; y < h; y += dy) {
        const px: number[][] = [];
        for (let x = x0; x < w; x += dx) px.push(samples[y][x]);
        if (px.length) rows.push(packRow(px));
      }
      if (rows.length) parts.push(filterRows(rows, bpp));
    }
    data = Buffer.concat(parts);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = depth;
  ihdr[9] = colorType;
  ihdr[12] = interlace ? 1 : 0;
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), ...extra, chunk('IDAT', zlib.deflateSync(data)), chunk('IEND', Buffer.alloc(0))]);
}
const grid = (w: number, h: number, f: (x: number, y: number) => number[]) => Array.from({ length: h }, (_, y) => Array.from({ length: w }, (_, x) => f(x, y)));

describe('PNG', () => {
  test('decodes every colour type, bit depth, filter and Adam7 as the specification defines them', () => {
    const w = 11, h = 9;
    const rgb = grid(w, h, (x, y) => [(x * 23 + y) & 255, (y * 31) & 255, (x * y * 7) & 255]);
    const cases: [string, Buffer, (x: number, y: number) => number[]][] = [
      ['grey 8', pngFile(w, h, 8, 0, grid(w, h, (x, y) => [(x * 20 + y * 3) & 255])), (x, y) => [((x * 20 + y * 3) & 255) / 255]],
      ['grey 16', pngFile(w, h, 16, 0, grid(w, h, (x, y) => [(x * 5000 + y * 77) & 65535])), (x, y) => [((x * 5000 + y * 77) & 65535) / 65535]],
      ['grey 2', pngFile(w, h, 2, 0, grid(w, h, (x, y) => [(x + y) & 3])), (x, y) => [((x + y) & 3) / 3]],
      ['rgb 8', pngFile(w, h, 8, 2, rgb), (x, y) => rgb[y][x].map((v) => v / 255)],
      ['rgba 8 (alpha dropped)', pngFile(w, h, 8, 6, grid(w, h, (x, y) => [...rgb[y][x], 77])), (x, y) => rgb[y][x].map((v) => v / 255)],
      ['grey+alpha 16', pngFile(w, h, 16, 4, grid(w, h, (x, y) => [x * 3000, 1000])), (x) => [(x * 3000) / 65535]],
      ['rgb 8 Adam7', pngFile(w, h, 8, 2, rgb, [], true), (x, y) => rgb[y][x].map((v) => v / 255)],
    ];
    const pal = Buffer.from([10, 20, 30, 200, 100, 0, 0, 0, 255, 5, 6, 7]);
    cases.push(['palette 4 Adam7', pngFile(w, h, 4, 3, grid(w, h, (x, y) => [(x + 2 * y) % 4]), [chunk('PLTE', pal)], true),
      (x, y) => Array.from(pal.subarray(((x + 2 * y) % 4) * 3, ((x + 2 * y) % 4) * 3 + 3), (v) => v / 255)]);
    for (const [name, file, expected] of cases) {
      const img = decodePng(file, name);
      expect([img.width, img.height]).toEqual([w, h]);
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const e = expected(x, y);
          expect(img.channels).toBe(e.length);
          e.forEach((v, c) => expect(img.pixels[(y * w + x) * e.length + c]).toBeCloseTo(v, 6));
        }
    }
  });

  test('round-trips its own encoder, and refuses corrupt files with a clear error', () => {
    const w = 7, h = 5;
    const data = Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 37) & 255);
    const png = encodePng(w, h, 3, data);
    const back = decodePng(png);
    expect(Array.from(back.pixels, (v) => Math.round(v * 255))).toEqual(Array.from(data));
    expect(crc32(Buffer.from('IEND'))).toBe(0xae426082);
    const bad = Buffer.from(png);
    bad[40] ^= 0xff;
    expect(() => decodePng(bad, 'x.png')).toThrow(/x.png: CRC mismatch/);
    expect(() => decodePng(Buffer.from('not a png at all'), 'y.png')).toThrow(/y.png: not a PNG file/);
    expect(() => decodePng(png.subarray(0, 30), 'z.png')).toThrow(/z.png: .*(truncated|no IEND)/);
  });
});

test('.npy: the header NumPy specifies, and a round trip', () => {
  const a = Float32Array.from([1, -2.5, 3, 4, 5, 6]);
  const bytes = encodeNpy(a, [2, 3]);
  expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]));
  const hlen = bytes.readUInt16LE(8);
  expect((10 + hlen) % 64).toBe(0);
  expect(bytes.toString('latin1', 10, 10 + hlen)).toMatch(/^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3\), \} *\n$/);
  expect(bytes.readFloatLE(10 + hlen + 4)).toBe(-2.5);
  const back = decodeNpy(bytes);
  expect(back.shape).toEqual([2, 3]);
  expect(Array.from(back.data)).toEqual(Array.from(a));
  expect(decodeNpy(encodeNpy(Int32Array.from([7]), [1])).shape).toEqual([1]);
});

function idx(type: number, dims: number[], values: number[]): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = type;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(values)]);
}

describe('real images', () => {
  const cfg: VitConfigInput = { imageSize: 12, channels: 3, patchSize: 3, embedDim: 8, depth: 1, numHeads: 2, mlpDim: 8, numClasses: 4 };
  const PRE = { mean: [0.5, 0.5, 0.5], std: [0.25, 0.5, 0.25] };

  test('IDX (gzip) with labels: grey copied to RGB, resized, normalized with the model mean/std', async () => {
    const dir = tmp();
    // 3 images of 6×6: constant 0, 255 and 51.
    const vals = [0, 255, 51].flatMap((v) => new Array(36).fill(v));
    fs.writeFileSync(path.join(dir, 'img.gz'), zlib.gzipSync(idx(0x08, [3, 6, 6], vals)));
    fs.writeFileSync(path.join(dir, 'lab'), idx(0x08, [3], [2, 0, 3]));
    expect(parseIdx(fs.readFileSync(path.join(dir, 'img.gz')), 'img').dims).toEqual([3, 6, 6]);
    const m = await createVit(cfg, sizableWeights(cfg, 1), { threads: 1 });
    const r = await synthesize(m, { method: 'real', images: 3, preprocess: PRE, real: { path: path.join(dir, 'img.gz'), labels: path.join(dir, 'lab'), shuffle: false } });
    expect(r.shape).toEqual([3, 3, 12, 12]);
    expect(Array.from(r.targets)).toEqual([2, 0, 3]);
    const expectPixel = (b: number, v: number) => [0, 1, 2].forEach((c) => expect(r.images[b * 432 + c * 144 + 77]).toBeCloseTo((v - PRE.mean[c]) / PRE.std[c], 5));
    expectPixel(0, 0);
    expectPixel(1, 1);
    expectPixel(2, 0.2);
    expect(r.sources).toEqual([`${path.join(dir, 'img.gz')}#0`, `${path.join(dir, 'img.gz')}#1`, `${path.join(dir, 'img.gz')}#2`]);
    await expect(synthesize(m, { method: 'real', images: 4, preprocess: PRE, real: { path: path.join(dir, 'img.gz') } })).rejects.toThrow(/expected at least 4 images .* found 3/);
    fs.writeFileSync(path.join(dir, 'broken'), Buffer.from([1, 2, 3, 4, 5]));
    await expect(synthesize(m, { method: 'real', images: 1, preprocess: PRE, real: { path: path.join(dir, 'broken') } })).rejects.toThrow(/not an IDX file/);
    await m.dispose();
  });

  test('a folder in the ImageNet layout (class subfolders) gives labels; JPEG decodes; a broken JPEG fails clearly', async () => {
    const dir = tmp();
    for (const [cls, v] of [['a_cls', 40], ['b_cls', 200]] as const) {
      fs.mkdirSync(path.join(dir, cls));
      fs.writeFileSync(path.join(dir, cls, 'x.png'), encodePng(24, 24, 3, new Uint8Array(24 * 24 * 3).fill(v)));
    }
    const m = await createVit(cfg, sizableWeights(cfg, 1), { threads: 1 });
    const r = await synthesize(m, { method: 'real', images: 2, preprocess: PRE, real: { path: dir, shuffle: false } });
    expect(Array.from(r.targets)).toEqual([0, 1]);
    expect(r.images[0]).toBeCloseTo((40 / 255 - 0.5) / 0.25, 5);
    expect(r.images[432]).toBeCloseTo((200 / 255 - 0.5) / 0.25, 5);
    // A real JPEG (flat grey, which JPEG keeps almost exactly) joins class a_cls.
    const jpg = jpeg.encode({ width: 24, height: 24, data: Buffer.alloc(24 * 24 * 4, 120) }, 95).data;
    fs.writeFileSync(path.join(dir, 'a_cls', 'y.jpg'), jpg);
    const r3 = await synthesize(m, { method: 'real', images: 3, preprocess: PRE, real: { path: dir, shuffle: false } });
    expect(Array.from(r3.targets)).toEqual([0, 0, 1]);
    expect(r3.images[432]).toBeCloseTo((120 / 255 - 0.5) / 0.25, 1);
    fs.writeFileSync(path.join(dir, 'a_cls', 'z.jpg'), Buffer.from([0xff, 0xd8]));
    await expect(synthesize(m, { method: 'real', images: 4, preprocess: PRE, real: { path: dir } })).rejects.toMatchObject({ code: 'E_IO', message: expect.stringMatching(/z\.jpg: not a readable JPEG/) });
    await m.dispose();
  });
});

describe('outputs and the synth command', () => {
  const cfg: VitConfigInput = { imageSize: 8, channels: 1, patchSize: 2, embedDim: 8, depth: 2, numHeads: 2, mlpDim: 8, numClasses: 3 };
  const args = (out: string, extra: Partial<SynthArgs> = {}): SynthArgs => ({
    model: 'tiny.onnx', method: 'spdfq', images: 4, iters: 6, out, seed: 0, pngs: true, progress: true, mean: [0.5], std: [0.5], ...extra,
  });
  const sink = () => {
    const lines: string[] = [];
    const s = { write: (t: string) => (lines.push(t), true), isTTY: false } as unknown as NodeJS.WriteStream;
    return { s, lines };
  };

  test('writes the tensor, PNGs, grid, targets, losses and priors; they read back', async () => {
    const out = tmp();
    const m = await createVit(cfg, sizableWeights(cfg, 2), { threads: 1 });
    const { s, lines } = sink();
    // --apa: the priors are written only when APA runs (off by default).
    const r = await runSynthCommand(args(out, { apa: true }), { loadModel: async () => ({ config: cfg, model: m }), stderr: s });
    for (const f of ['images.npy', 'images/000.png', 'images/003.png', 'grid.png', 'targets.json', 'losses.csv', 'losses.json', 'priors.npy', 'synthesis.json']) {
      expect(fs.existsSync(path.join(out, f))).toBe(true);
    }
    const back = readSynthesisOutputs(out);
    expect(back.shape).toEqual([4, 1, 8, 8]);
    expect(Array.from(back.images)).toEqual(Array.from(r.images));
    expect(Array.from(back.targets!)).toEqual(Array.from(r.targets));
    const csv = fs.readFileSync(path.join(out, 'losses.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('step,round,lr,total,apa,cls,tv,pse,targetProb');
    expect(csv).toHaveLength(7);
    const png = decodePng(fs.readFileSync(path.join(out, 'images/001.png')));
    expect([png.width, png.height, png.channels]).toEqual([8, 8, 1]);
    // the PNG is the de-normalized image: x·std + mean, 8-bit
    expect(png.pixels[5]).toBeCloseTo(Math.round(Math.min(1, Math.max(0, r.images[64 + 5] * 0.5 + 0.5)) * 255) / 255, 6);
    expect(lines.join('')).toMatch(/synth spdfq .* 6\/6 .*ETA/);
    expect(lines.join('')).toMatch(/4 spdfq images \(6 steps/);
    await m.dispose();
  });

  test('a stop (Ctrl-C) writes the images reached and rethrows E_CANCELLED', async () => {
    const out = tmp();
    const m = await createVit(cfg, sizableWeights(cfg, 2), { threads: 1 });
    const ac = new AbortController();
    const { s } = sink();
    let steps = 0;
    const origWrite = s.write;
    s.write = ((t: string) => {
      if (/synth spdfq/.test(t) && ++steps === 1) ac.abort();
      return origWrite(t);
    }) as typeof s.write;
    const err = await runSynthCommand(args(out, { iters: 400 }), { loadModel: async () => ({ config: cfg, model: m }), stderr: s, signal: ac.signal }).catch((e) => e);
    expect(err).toBeInstanceOf(SynthesisStoppedError);
    expect(err.code).toBe('E_CANCELLED');
    const meta = JSON.parse(fs.readFileSync(path.join(out, 'synthesis.json'), 'utf8'));
    expect(meta.stopped.code).toBe('E_CANCELLED');
    expect(meta.stepsDone).toBe(err.partial.stepsDone);
    expect(readSynthesisOutputs(out).images).toHaveLength(4 * 64);
    await m.dispose();
  });

  test('a missing --std is an error naming both flags', async () => {
    const m = await createVit(cfg, sizableWeights(cfg, 2), { threads: 1 });
    await expect(runSynthCommand(args(tmp(), { std: undefined }), { loadModel: async () => ({ config: cfg, model: m }), stderr: sink().s })).rejects.toThrow(/--mean and --std: expected both/);
    await m.dispose();
  });
});

test('writeSynthesisOutputs works for noise (no losses, no priors)', async () => {
  const cfg: VitConfigInput = { imageSize: 4, channels: 3, patchSize: 2, embedDim: 4, depth: 1, numHeads: 1, mlpDim: 4, numClasses: 2 };
  const m = await createVit(cfg, sizableWeights(cfg, 3), { threads: 1 });
  const r = await synthesize(m, { method: 'noise', images: 2 });
  const out = tmp();
  const files = writeSynthesisOutputs(r, out, { pngs: false });
  expect(files.some((f) => f.endsWith('priors.npy'))).toBe(false);
  expect(fs.readFileSync(path.join(out, 'losses.csv'), 'utf8')).toBe('step,round,lr,total,apa,cls,tv,pse,targetProb\n');
  await m.dispose();
});
