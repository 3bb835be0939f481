// The ONNX ops static evaluation knows: element-wise tables (values folded in
// TypeScript), which ops keep their input's shape, each op's required inputs, attribute
// readers, and shape rules of the heavy ops (MatMul, Conv) that are never folded.

import { SpdfqError } from '../errors';
import { describeNode, OnnxNode } from './graph';
import { onnx, toNumber } from './proto';
import { checkedDims, DataType, isFloatType, MAX_TENSOR_ELEMENTS, numel, readTensor, TensorValue } from './tensor-data';
import { broadcastShapes, erf, geluErf, geluTanh, makeValue, ReduceKind } from './tensor-ops';
import type { Known, WeightSource } from './static-eval-types';

export const UNARY: Record<string, (x: number, node: OnnxNode) => number> = {
  Sqrt: Math.sqrt,
  IsNaN: (x) => (Number.isNaN(x) ? 1 : 0), // the NaN guard torch writes after an exported SDPA's Softmax
  Reciprocal: (x) => 1 / x,
  Neg: (x) => -x,
  Abs: Math.abs,
  Exp: Math.exp,
  Log: Math.log,
  Erf: erf,
  Tanh: Math.tanh,
  Sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  Relu: (x) => Math.max(0, x),
  Floor: Math.floor,
  Ceil: Math.ceil,
  Round: (x) => {
    const r = Math.round(x);
    return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r; // half to even
  },
  Sign: Math.sign,
  Not: (x) => (x ? 0 : 1),
  Gelu: (x, node) => (attrString(node, 'approximate', 'none') === 'tanh' ? geluTanh(x) : geluErf(x)),
};

export const BINARY: Record<string, (a: number, b: number, intMath: boolean) => number> = {
  Add: (a, b) => a + b,
  Sub: (a, b) => a - b,
  Mul: (a, b) => a * b,
  Div: (a, b, intMath) => (intMath ? Math.trunc(a / b) : a / b),
  Pow: (a, b) => Math.pow(a, b),
  Equal: (a, b) => (a === b ? 1 : 0),
  Less: (a, b) => (a < b ? 1 : 0),
  Greater: (a, b) => (a > b ? 1 : 0),
  LessOrEqual: (a, b) => (a <= b ? 1 : 0),
  GreaterOrEqual: (a, b) => (a >= b ? 1 : 0),
  And: (a, b) => (a && b ? 1 : 0),
  Or: (a, b) => (a || b ? 1 : 0),
  Xor: (a, b) => (!a !== !b ? 1 : 0),
};
export const COMPARISONS = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Not', 'IsNaN']);
export const SAME_SHAPE = new Set(['Softmax', 'LogSoftmax', 'Identity', 'Clip', 'LeakyRelu', 'HardSigmoid']);
/** Inputs an op cannot do without (the rest default to 1 for unary, 2 for binary ops). */
export const MIN_INPUTS: Record<string, number> = {
  MatMul: 2, Gemm: 2, Conv: 2, Reshape: 2, Expand: 2, Tile: 2, Gather: 2, CastLike: 2, Where: 3, Range: 3, Mod: 2,
};
export const REDUCE: Record<string, ReduceKind> = { ReduceMean: 'mean', ReduceSum: 'sum', ReduceMax: 'max', ReduceMin: 'min', ReduceProd: 'prod' };

export function attrInt(n: OnnxNode, key: string, def: number): number {
  const a = n.attrs.get(key);
  return a ? toNumber(a.i) : def;
}

export function attrInts(n: OnnxNode, key: string): number[] | undefined {
  const a = n.attrs.get(key);
  return a ? (a.ints ?? []).map(toNumber) : undefined;
}

export function attrFloat(n: OnnxNode, key: string, def: number): number {
  const a = n.attrs.get(key);
  return a && a.f !== null && a.f !== undefined ? a.f : def;
}

export function attrString(n: OnnxNode, key: string, def: string): string {
  const a = n.attrs.get(key);
  return a?.s ? Buffer.from(a.s).toString('utf8') : def;
}


export function validShape(shape: readonly number[]): boolean {
  return shape.length <= 16 && shape.every((d) => Number.isInteger(d) && d >= 0) && numel(shape) <= MAX_TENSOR_ELEMENTS;
}

export function constantNode(node: OnnxNode): Known {
  const what = describeNode(node);
  const a = node.attrs;
  let v: TensorValue;
  if (a.get('value')?.t) v = readTensor(a.get('value')?.t as onnx.ITensorProto, `${what} value`);
  else if (a.has('value_float')) v = makeValue(DataType.FLOAT, [], [attrFloat(node, 'value_float', 0)]);
  else if (a.has('value_floats')) {
    const f = a.get('value_floats')?.floats ?? [];
    v = makeValue(DataType.FLOAT, [f.length], f);
  } else if (a.has('value_int')) v = makeValue(DataType.INT64, [], [attrInt(node, 'value_int', 0)]);
  else if (a.has('value_ints')) {
    const ints = attrInts(node, 'value_ints') ?? [];
    v = makeValue(DataType.INT64, [ints.length], ints);
  } else throw new SpdfqError('E_ONNX', `${what} has no supported value attribute (value, value_float(s), value_int(s))`);
  const source: WeightSource | undefined = isFloatType(v.dataType)
    ? { kind: 'constant', name: node.outputs[0], srcDims: [...v.dims], perm: null, inFunction: node.inlinedFrom !== '' }
    : undefined;
  return { shape: [...v.dims], dataType: v.dataType, value: v, source };
}

export function matmulShape(a: number[] | null, b: number[] | null, what: string): number[] | null {
  if (!a || !b) return null;
  if (a.length === 0 || b.length === 0) throw new SpdfqError('E_ONNX', `${what}: MatMul of a scalar`);
  const A = a.length === 1 ? [1, a[0]] : a;
  const B = b.length === 1 ? [b[0], 1] : b;
  const k1 = A[A.length - 1];
  const k2 = B[B.length - 2];
  if (k1 !== k2) throw new SpdfqError('E_ONNX', `MatMul inner sizes differ: [${a.join(', ')}] x [${b.join(', ')}]`);
  const batch = broadcastShapes([A.slice(0, -2), B.slice(0, -2)], what);
  const out = [...batch, A[A.length - 2], B[B.length - 1]];
  if (a.length === 1) out.splice(out.length - 2, 1);
  if (b.length === 1) out.splice(out.length - 1, 1);
  return out;
}

export function convShape(node: OnnxNode, x: number[] | null, w: number[] | null): number[] | null {
  if (!x || !w) return null;
  const spatial = x.length - 2;
  if (spatial < 1 || w.length !== x.length) throw new SpdfqError('E_ONNX', `Conv input [${x.join(', ')}] and weight [${w.join(', ')}] ranks do not match`);
  const kernel = attrInts(node, 'kernel_shape') ?? w.slice(2);
  const strides = attrInts(node, 'strides') ?? new Array(spatial).fill(1);
  const dil = attrInts(node, 'dilations') ?? new Array(spatial).fill(1);
  const pads = attrInts(node, 'pads') ?? new Array(2 * spatial).fill(0);
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  const out = [x[0], w[0]];
  for (let i = 0; i < spatial; i++) {
    const size = x[2 + i];
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') out.push(Math.ceil(size / strides[i]));
    else {
      const p = autoPad === 'VALID' ? 0 : pads[i] + pads[i + spatial];
      out.push(Math.floor((size + p - dil[i] * (kernel[i] - 1) - 1) / strides[i]) + 1);
    }
  }
  return out;
}

/** One elementwise op on scalars (for probing activation subgraphs); undefined when the op
 *  is not a pure elementwise function of its inputs. */
export function scalarOp(node: OnnxNode, args: number[]): number | undefined {
  const op = node.opType;
  if (op === 'Identity' || op === 'Cast' || op === 'Dropout') return args[0];
  if (UNARY[op]) return UNARY[op](args[0], node);
  if (BINARY[op] && !COMPARISONS.has(op)) return BINARY[op](args[0], args[1], false);
  if (op === 'Max') return Math.max(...args);
  if (op === 'Min') return Math.min(...args);
  return undefined;
}

export function isElementwise(op: string): boolean {
  return op === 'Identity' || op === 'Cast' || op === 'Dropout' || op === 'Max' || op === 'Min' || (!!UNARY[op] && !COMPARISONS.has(op)) || (!!BINARY[op] && !COMPARISONS.has(op));
}
