// NumPy's .npy format (version 1.0) for the synthetic-image tensor: a magic string, a
// little-endian header length, a Python-literal header {'descr', 'fortran_order', 'shape'}
// padded so the data starts on a 64-byte boundary, then the raw little-endian array.
// Chosen because every tool reads it: np.load('images.npy') gives the [B, C, H, W] batch.

import { SpdfqError } from '../errors';

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

export type NpyArray = { dtype: '<f4'; data: Float32Array; shape: number[] } | { dtype: '<i4'; data: Int32Array; shape: number[] };

export function encodeNpy(data: Float32Array | Int32Array, shape: number[]): Buffer {
  const n = shape.reduce((a, d) => a * d, 1);
  if (n !== data.length) throw new SpdfqError('E_TENSOR', `encodeNpy: shape [${shape.join(', ')}] holds ${n} values, the array has ${data.length}`);
  // By the type tag, not instanceof: arrays made by the addon (or another realm, as jest's
  // sandbox) are not instances of this realm's Float32Array.
  const isFloat = Object.prototype.toString.call(data) === '[object Float32Array]';
  const descr = isFloat ? '<f4' : '<i4';
  const shapeStr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  const unpadded = MAGIC.length + 2 + 2 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const head = Buffer.alloc(MAGIC.length + 4);
  MAGIC.copy(head, 0);
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const body = Buffer.alloc(data.length * 4);
  for (let i = 0; i < data.length; i++) {
    if (isFloat) body.writeFloatLE(data[i], i * 4);
    else body.writeInt32LE(data[i], i * 4);
  }
  return Buffer.concat([head, Buffer.from(header, 'latin1'), body]);
}

export function decodeNpy(bytes: Uint8Array, where = '.npy'): NpyArray {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 10 || !MAGIC.equals(b.subarray(0, 6))) throw new SpdfqError('E_IO', `${where}: not a .npy file (bad magic)`);
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const hstart = major === 1 ? 10 : 12;
  const header = b.toString('latin1', hstart, hstart + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeStr = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeStr === undefined) throw new SpdfqError('E_IO', `${where}: unreadable header ${header.trim()}`);
  if (fortran !== 'False') throw new SpdfqError('E_IO', `${where}: expected C order, found Fortran order`);
  if (descr !== '<f4' && descr !== '<i4') throw new SpdfqError('E_IO', `${where}: expected dtype '<f4' or '<i4', found '${descr}'`);
  const shape = shapeStr.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  const n = shape.reduce((a, d) => a * d, 1);
  const start = hstart + hlen;
  if (b.length !== start + 4 * n) throw new SpdfqError('E_IO', `${where}: expected ${4 * n} data bytes for shape [${shape.join(', ')}], found ${b.length - start}`);
  if (descr === '<f4') {
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = b.readFloatLE(start + 4 * i);
    return { dtype: descr, data, shape };
  }
  const data = new Int32Array(n);
  for (let i = 0; i < n; i++) data[i] = b.readInt32LE(start + 4 * i);
  return { dtype: descr, data, shape };
}
