// Seeded mutations of every input format the tool reads — ONNX models, IDX image sets, PNG,
// JPEG and NPY files: truncations, bit flips and edits of the header bytes. Each one must
// either be read or be refused with an SpdfqError (a clear message and a code), never crash
// the process or escape as a TypeError/RangeError. The seeds are fixed: a failure here is
// reproducible, and its case number names the mutation.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as jpeg from 'jpeg-js';
import { SpdfqError } from '../lib/errors';
import { buildVitOnnx } from '../lib/onnx/build-vit';
import { importBytes } from '../lib/onnx/import-onnx';
import { parseIdx } from '../lib/image/idx';
import { decodePng, encodePng } from '../lib/image/png';
import { decodeNpy, encodeNpy } from '../lib/image/npy';
import { decodeImage } from '../lib/image/decode';
import { randomVitWeights } from '../lib/vit';
import { completeVitConfig } from '../lib/vit-config';
import { rng } from './helpers/random';

type Mutation = { name: string; bytes: Uint8Array };

/** `count` seeded mutations of `original`: a third truncations, a third flips of 1–8
 *  random bits, a third overwrites of bytes in the first `headerBytes` (the format's
 *  header) with random values. */
function mutations(original: Uint8Array, count: number, seed: number, headerBytes: number): Mutation[] {
  const r = rng(seed);
  const out: Mutation[] = [];
  for (let i = 0; i < count; i++) {
    const b = Uint8Array.from(original);
    const kind = i % 3;
    if (kind === 0) {
      const len = Math.floor(r() * original.length);
      out.push({ name: `case ${i}: truncated to ${len} bytes`, bytes: b.subarray(0, len) });
    } else if (kind === 1) {
      const flips = 1 + Math.floor(r() * 8);
      for (let k = 0; k < flips; k++) {
        const at = Math.floor(r() * b.length);
        b[at] ^= 1 << Math.floor(r() * 8);
      }
      out.push({ name: `case ${i}: ${flips} bit flips`, bytes: b });
    } else {
      const edits = 1 + Math.floor(r() * 4);
      for (let k = 0; k < edits; k++) b[Math.floor(r() * Math.min(headerBytes, b.length))] = Math.floor(r() * 256);
      out.push({ name: `case ${i}: ${edits} header bytes rewritten`, bytes: b });
    }
  }
  return out;
}

/** Runs `read` on each mutation; returns the cases that failed other than with an SpdfqError. */
function survivors(cases: Mutation[], read: (bytes: Uint8Array) => unknown): string[] {
  const bad: string[] = [];
  for (const c of cases) {
    try {
      read(c.bytes);
    } catch (err) {
      if (!(err instanceof SpdfqError)) bad.push(`${c.name}: ${(err as Error).constructor.name}: ${(err as Error).message}`);
    }
  }
  return bad;
}

const FUZZ_CASES = { onnxTiny: 240, onnxBundled: 60, idx: 150, png: 150, jpeg: 90, npy: 150 };

describe('mutated inputs give an SpdfqError or are read, never a crash', () => {
  test(`ONNX: ${FUZZ_CASES.onnxTiny} mutations of a small exported ViT, ${FUZZ_CASES.onnxBundled} of the bundled model`, () => {
    const config = completeVitConfig({ imageSize: 16, channels: 1, patchSize: 4, embedDim: 16, depth: 2, numHeads: 2, mlpDim: 32, numClasses: 3 });
    const tiny = buildVitOnnx(config, randomVitWeights(config, 1), { opset: 17 });
    expect(survivors(mutations(tiny, FUZZ_CASES.onnxTiny, 1, 64), (b) => importBytes(b, null))).toEqual([]);
    const bundled = fs.readFileSync(path.resolve(__dirname, '..', 'models', 'fashion-mnist-vit.onnx'));
    expect(survivors(mutations(bundled, FUZZ_CASES.onnxBundled, 2, 256), (b) => importBytes(b, null))).toEqual([]);
  });

  test(`IDX: ${FUZZ_CASES.idx} mutations of the bundled test subset (plain and gzip)`, () => {
    const idx = fs.readFileSync(path.resolve(__dirname, '..', 'models', 'fashion-mnist-vit-test', 'images-idx3-ubyte')).subarray(0, 16 + 50 * 784);
    // The image count in the header says 1,000; keep the file consistent with 50.
    Buffer.from(idx.buffer, idx.byteOffset, 16).writeUInt32BE(50, 4);
    const half = FUZZ_CASES.idx / 2;
    expect(survivors(mutations(idx, half, 3, 16), (b) => parseIdx(b, 'idx'))).toEqual([]);
    const gz = require('zlib').gzipSync(idx) as Buffer;
    expect(survivors(mutations(gz, half, 4, 32), (b) => parseIdx(b, 'idx.gz', 1 << 22))).toEqual([]);
  });

  test(`PNG: ${FUZZ_CASES.png} mutations of grey, RGB and RGBA images`, () => {
    const r = rng(5);
    const per = FUZZ_CASES.png / 3;
    const bad = ([1, 3, 4] as const).flatMap((ch, i) => {
      const png = encodePng(9, 7, ch, Uint8Array.from({ length: 9 * 7 * ch }, () => Math.floor(r() * 256)));
      return survivors(mutations(png, per, 6 + i, 33), (b) => decodePng(b, 'png'));
    });
    expect(bad).toEqual([]);
  });

  test(`JPEG: ${FUZZ_CASES.jpeg} mutations, read from files as the loaders read them`, () => {
    const r = rng(7);
    const data = Buffer.from(Uint8Array.from({ length: 16 * 12 * 4 }, () => Math.floor(r() * 256)));
    const jpg = jpeg.encode({ data, width: 16, height: 12 }, 90).data;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spdfq-fuzz-'));
    const file = path.join(dir, 'x.jpg');
    expect(survivors(mutations(jpg, FUZZ_CASES.jpeg, 8, 200), (b) => {
      fs.writeFileSync(file, b);
      return decodeImage(file);
    })).toEqual([]);
  });

  test(`NPY: ${FUZZ_CASES.npy} mutations of float32 and int32 tensors`, () => {
    const half = FUZZ_CASES.npy / 2;
    const f = encodeNpy(Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => i / 7), [2, 3, 4]);
    const i32 = encodeNpy(Int32Array.from({ length: 10 }, (_, i) => i - 5), [10]);
    expect([...survivors(mutations(f, half, 9, 128), (b) => decodeNpy(b, 'x.npy')), ...survivors(mutations(i32, half, 10, 128), (b) => decodeNpy(b, 'y.npy'))]).toEqual([]);
  });
});
