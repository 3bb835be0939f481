// TensorProto → typed arrays and back. Every length is checked against the dims before
// anything is allocated, so a corrupt file fails with E_ONNX instead of a RangeError or
// a multi-gigabyte allocation.

import * as fs from 'fs';
import * as path from 'path';
import { SpdfqError } from '../errors';
import { onnx, toNumber } from './proto';

/** onnx.TensorProto.DataType values (data_type is a plain int32 in the proto, so types
 *  newer than onnx-proto's enum, e.g. INT4 = 22, still read). */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  BFLOAT16: 16,
  /** 4-bit types (IR 10 / opset 21): written by the quantized export, never read here. */
  UINT4: 21,
  INT4: 22,
} as const;

const BYTES_PER_ELEMENT: Record<number, number> = {
  1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2,
};

const TYPE_NAMES: Record<number, string> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string',
  9: 'bool', 10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 16: 'bfloat16',
};

/** Bytes per element, or undefined for types we do not read (string, 4-bit, 8-bit float). */
export function elementBytes(dataType: number): number | undefined {
  return BYTES_PER_ELEMENT[dataType];
}

export function dataTypeName(t: number): string {
  return TYPE_NAMES[t] ?? `data type ${t}`;
}

export function isFloatType(t: number): boolean {
  return t === DataType.FLOAT || t === DataType.FLOAT16 || t === DataType.DOUBLE || t === DataType.BFLOAT16;
}

/** A decoded tensor. Floating types are held in a Float32Array (float64 constants are
 *  narrowed: every op we evaluate runs in float32 in ONNX Runtime too); integer and bool
 *  types in a Float64Array, exact up to 2^53, which covers every shape value. */
export interface TensorValue {
  dataType: number;
  dims: number[];
  data: Float32Array | Float64Array;
}

/** Beyond this a tensor is certainly a corrupt dims field (2^31 floats = 8 GiB). */
export const MAX_TENSOR_ELEMENTS = 2 ** 31 - 1;

export function checkedDims(rawDims: readonly (number | { toNumber(): number })[], what: string): number[] {
  const dims = rawDims.map((d) => toNumber(d));
  let n = 1;
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 0) throw new SpdfqError('E_ONNX', `${what}: dimension ${d} in [${dims.join(', ')}] is not a non-negative integer`);
    n *= d;
  }
  if (dims.length > 16 || n > MAX_TENSOR_ELEMENTS) {
    throw new SpdfqError('E_ONNX', `${what}: shape [${dims.join(', ')}] is implausibly large; the file may be corrupt`);
  }
  return dims;
}

export function numel(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Where external data is looked up: the folder of the model file. */
export interface TensorReadContext {
  baseDir?: string;
}

export function readTensor(t: onnx.ITensorProto, what: string, ctx: TensorReadContext = {}): TensorValue {
  const dataType = t.dataType ?? 0;
  const dims = checkedDims(t.dims ?? [], what);
  const n = numel(dims);
  const elemBytes = BYTES_PER_ELEMENT[dataType];
  if (elemBytes === undefined) {
    throw new SpdfqError('E_ONNX', `${what}: ${dataTypeName(dataType)} tensors are not supported (expected float or integer data)`);
  }
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    const bytes = readExternalBytes(t, what, n * elemBytes, ctx);
    return { dataType, dims, data: fromLittleEndian(bytes, dataType, n) };
  }
  if (t.rawData && t.rawData.length > 0) {
    if (t.rawData.length !== n * elemBytes) {
      throw new SpdfqError('E_ONNX', `${what}: raw_data holds ${t.rawData.length} bytes, expected ${n * elemBytes} for ${dataTypeName(dataType)} [${dims.join(', ')}]`);
    }
    return { dataType, dims, data: fromLittleEndian(t.rawData, dataType, n) };
  }
  return { dataType, dims, data: fromTypedField(t, dataType, n, what) };
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** raw_data is little-endian and, inside a decoded file, a view at an arbitrary byte
 *  offset: read through a DataView rather than aliasing a Float32Array onto it. */
function fromLittleEndian(bytes: Uint8Array, dataType: number, n: number): Float32Array | Float64Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dataType) {
    case DataType.FLOAT: {
      // Copying the bytes gives an aligned buffer of its own (new Uint8Array(view) copies;
      // Buffer#slice would not); on little-endian hosts it can then be viewed directly.
      if (LITTLE_ENDIAN_HOST) return new Float32Array(new Uint8Array(bytes).buffer, 0, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
      return out;
    }
    case DataType.DOUBLE: {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
      return out;
    }
    case DataType.FLOAT16: {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
      return out;
    }
    case DataType.BFLOAT16: {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = bfloat16ToFloat(view.getUint16(2 * i, true));
      return out;
    }
  }
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    switch (dataType) {
      case DataType.UINT8: case DataType.BOOL: out[i] = view.getUint8(i); break;
      case DataType.INT8: out[i] = view.getInt8(i); break;
      case DataType.UINT16: out[i] = view.getUint16(2 * i, true); break;
      case DataType.INT16: out[i] = view.getInt16(2 * i, true); break;
      case DataType.INT32: out[i] = view.getInt32(4 * i, true); break;
      case DataType.UINT32: out[i] = view.getUint32(4 * i, true); break;
      case DataType.INT64: out[i] = Number(view.getBigInt64(8 * i, true)); break;
      case DataType.UINT64: out[i] = Number(view.getBigUint64(8 * i, true)); break;
    }
  }
  return out;
}

/** The typed fields: float_data, double_data, int64_data, uint64_data, and int32_data,
 *  which also carries int8/int16/uint8/uint16/bool and the bit patterns of float16. */
function fromTypedField(t: onnx.ITensorProto, dataType: number, n: number, what: string): Float32Array | Float64Array {
  let values: ArrayLike<number | { toNumber(): number }>;
  let field: string;
  switch (dataType) {
    case DataType.FLOAT: values = t.floatData ?? []; field = 'float_data'; break;
    case DataType.DOUBLE: values = t.doubleData ?? []; field = 'double_data'; break;
    case DataType.INT64: values = t.int64Data ?? []; field = 'int64_data'; break;
    case DataType.UINT32: case DataType.UINT64: values = t.uint64Data ?? []; field = 'uint64_data'; break;
    default: values = t.int32Data ?? []; field = 'int32_data';
  }
  if (values.length !== n) {
    throw new SpdfqError('E_ONNX', `${what}: ${field} holds ${values.length} values, expected ${n} (and raw_data is empty)`);
  }
  const float = isFloatType(dataType);
  const out = float ? new Float32Array(n) : new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = toNumber(values[i]);
    if (dataType === DataType.FLOAT16) out[i] = halfToFloat(v & 0xffff);
    else if (dataType === DataType.BFLOAT16) out[i] = bfloat16ToFloat(v & 0xffff);
    else out[i] = v;
  }
  return out;
}

function externalEntry(t: onnx.ITensorProto, key: string): string | undefined {
  return (t.externalData ?? []).find((e) => e.key === key)?.value ?? undefined;
}

/** External data: `location` is relative to the model's folder; offset and length are
 *  optional (default: the whole file). Paths leaving that folder are refused, as ONNX
 *  Runtime does, so a model file cannot make us read arbitrary files. */
export function readExternalBytes(t: onnx.ITensorProto, what: string, expectedBytes: number, ctx: TensorReadContext): Uint8Array {
  const location = externalEntry(t, 'location');
  if (!location) throw new SpdfqError('E_ONNX', `${what}: stored as external data but has no 'location' entry`);
  if (ctx.baseDir === undefined) {
    throw new SpdfqError('E_ONNX', `${what}: stored in external file '${location}'; load the model from a file path (not a buffer) so the file can be found next to it`);
  }
  const base = path.resolve(ctx.baseDir);
  const file = path.resolve(base, location);
  if (path.isAbsolute(location) || (file !== base && !file.startsWith(base + path.sep))) {
    throw new SpdfqError('E_ONNX', `${what}: external data location '${location}' points outside the model's folder; only relative paths below it are accepted`);
  }
  const offset = Number(externalEntry(t, 'offset') ?? '0');
  const lengthEntry = externalEntry(t, 'length');
  if (!Number.isInteger(offset) || offset < 0) throw new SpdfqError('E_ONNX', `${what}: external data offset '${externalEntry(t, 'offset')}' is not a non-negative integer`);
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    throw new SpdfqError(
      'E_ONNX',
      `${what}: external data file '${location}' could not be opened (looked for ${file}): ${(err as NodeJS.ErrnoException).code ?? String(err)}. Keep the data file next to the .onnx file under the same name.`,
      { cause: err },
    );
  }
  try {
    const size = fs.fstatSync(fd).size;
    const length = lengthEntry === undefined ? size - offset : Number(lengthEntry);
    if (length !== expectedBytes) {
      throw new SpdfqError('E_ONNX', `${what}: external data length ${length} bytes does not match the ${expectedBytes} bytes its shape needs`);
    }
    if (offset + length > size) {
      throw new SpdfqError('E_ONNX', `${what}: external data '${location}' is ${size} bytes, too short for offset ${offset} + length ${length}; the data file may be truncated`);
    }
    const bytes = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const got = fs.readSync(fd, bytes, done, length - done, offset + done);
      if (got <= 0) throw new SpdfqError('E_ONNX', `${what}: reading '${location}' stopped after ${done} of ${length} bytes`);
      done += got;
    }
    return bytes;
  } finally {
    fs.closeSync(fd);
  }
}

export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function bfloat16ToFloat(b: number): number {
  u32[0] = b << 16;
  return f32[0];
}

/** float32 → IEEE half, round to nearest even (for writing float16 initializers back). */
export function floatToHalf(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++;
  return sign | half;
}

function floatToBfloat16(v: number): number {
  f32[0] = v;
  const x = u32[0];
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff)) return 0x7fc0;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Little-endian bytes of float values in one of the floating data types. */
export function encodeFloats(values: Float32Array, dataType: number): Uint8Array {
  const elem = BYTES_PER_ELEMENT[dataType];
  if (!isFloatType(dataType) || elem === undefined) throw new SpdfqError('E_ONNX', `cannot write float values as ${dataTypeName(dataType)}`);
  if (dataType === DataType.FLOAT && LITTLE_ENDIAN_HOST) return new Uint8Array(values.slice().buffer);
  const out = new Uint8Array(values.length * elem);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) {
    if (dataType === DataType.FLOAT) view.setFloat32(4 * i, values[i], true);
    else if (dataType === DataType.DOUBLE) view.setFloat64(8 * i, values[i], true);
    else if (dataType === DataType.FLOAT16) view.setUint16(2 * i, floatToHalf(values[i]), true);
    else view.setUint16(2 * i, floatToBfloat16(values[i]), true);
  }
  return out;
}

/** Little-endian int64 bytes (for shape constants in graphs we write). */
export function encodeInt64(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setBigInt64(8 * i, BigInt(v), true));
  return out;
}
