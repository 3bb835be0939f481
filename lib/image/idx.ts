// Reader for the IDX format of MNIST and Fashion-MNIST (LeCun et al.): a 4-byte magic
// (0, 0, element type, rank), big-endian uint32 dimensions, big-endian data. Files may be
// gzip-compressed (as the Debian dataset-fashion-mnist package ships them).

import * as fs from 'fs';
import * as zlib from 'zlib';
import { SpdfqError } from '../errors';

export interface IdxArray {
  dims: number[];
  /** Values as numbers, row-major. */
  data: Float64Array | Uint8Array;
}

const TYPES: Record<number, { size: number; read: (v: DataView, o: number) => number; name: string }> = {
  0x08: { size: 1, read: (v, o) => v.getUint8(o), name: 'unsigned byte' },
  0x09: { size: 1, read: (v, o) => v.getInt8(o), name: 'signed byte' },
  0x0b: { size: 2, read: (v, o) => v.getInt16(o), name: 'short' },
  0x0c: { size: 4, read: (v, o) => v.getInt32(o), name: 'int' },
  0x0d: { size: 4, read: (v, o) => v.getFloat32(o), name: 'float' },
  0x0e: { size: 8, read: (v, o) => v.getFloat64(o), name: 'double' },
};

/** Largest decompressed IDX accepted: far above any image set a ViT is calibrated or
 *  evaluated on (CIFAR-10's 60,000 colour images are 184 MiB), and checked while
 *  decompressing, so a small hostile gzip cannot fill the memory first. */
export const MAX_IDX_BYTES = 2 ** 30;

export function parseIdx(bytes: Uint8Array, where: string, maxBytes = MAX_IDX_BYTES): IdxArray {
  let b = bytes;
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) {
    try {
      b = zlib.gunzipSync(b, { maxOutputLength: maxBytes });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ERR_BUFFER_TOO_LARGE' || /Cannot create a Buffer larger|maxOutputLength|buffer.*too large/i.test(e.message)) {
        throw new SpdfqError('E_IO', `${where}: decompresses to more than ${maxBytes} bytes; expected an image set of at most that size`);
      }
      throw new SpdfqError('E_IO', `${where}: gzip data does not decompress: ${e.message}`);
    }
  }
  if (b.length < 4 || b[0] !== 0 || b[1] !== 0 || !(b[2] in TYPES)) {
    throw new SpdfqError('E_IO', `${where}: not an IDX file (expected magic 00 00 <type 08–0E> <rank>, found ${Array.from(b.subarray(0, 4), (x) => x.toString(16).padStart(2, '0')).join(' ')})`);
  }
  const t = TYPES[b[2]];
  const rank = b[3];
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length < 4 + 4 * rank) throw new SpdfqError('E_IO', `${where}: truncated header`);
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  if (rank === 0 || dims.some((d) => d === 0)) throw new SpdfqError('E_IO', `${where}: holds no values (dims [${dims.join(', ')}]); expected every dimension ≥ 1`);
  const count = dims.reduce((a, d) => a * d, 1);
  const start = 4 + 4 * rank;
  if (b.length !== start + count * t.size) {
    throw new SpdfqError('E_IO', `${where}: expected ${start + count * t.size} bytes for ${t.name} data of shape [${dims.join(', ')}], found ${b.length}`);
  }
  if (b[2] === 0x08) return { dims, data: b.subarray(start, start + count) };
  const data = new Float64Array(count);
  for (let i = 0; i < count; i++) data[i] = t.read(view, start + i * t.size);
  return { dims, data };
}

export function readIdx(path: string): IdxArray {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(path);
  } catch (err) {
    throw new SpdfqError('E_IO', `cannot read IDX file ${path}: ${(err as Error).message}`);
  }
  return parseIdx(bytes, path);
}
