// Plain reference implementations of the ONNX ops that constant folding needs: shape
// arithmetic (Shape → Gather → Concat → Reshape chains), scalar math such as the runtime
// attention scale (Shape → Cast → Sqrt → Div), and layout ops applied to weights (a
// Transpose node in front of a MatMul). Values are TensorValue; float types stay in
// Float32Array so results round like ONNX Runtime's float32 kernels.

import { SpdfqError } from '../errors';
import { MlpActivation } from '../vit-config';
import { DataType, isFloatType, numel, TensorValue } from './tensor-data';

export function stridesOf(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= dims[i];
  }
  return s;
}

export function normalizeAxis(axis: number, rank: number, what: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= Math.max(rank, 1)) {
    throw new SpdfqError('E_ONNX', `${what}: axis ${axis} is out of range for rank ${rank}`);
  }
  return a;
}

export function makeValue(dataType: number, dims: number[], values: ArrayLike<number>): TensorValue {
  const data = isFloatType(dataType) ? new Float32Array(values) : new Float64Array(values);
  return { dataType, dims, data };
}

export function broadcastShapes(shapes: readonly (readonly number[])[], what: string): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i;
      const d = s[i];
      if (d === out[o] || d === 1) continue;
      if (out[o] === 1) out[o] = d;
      else throw new SpdfqError('E_ONNX', `${what}: shapes ${shapes.map((x) => `[${x.join(', ')}]`).join(' and ')} do not broadcast`);
    }
  }
  return out;
}

/** Elementwise op over broadcast inputs. */
export function elementwise(
  inputs: readonly TensorValue[],
  outType: number,
  fn: (args: number[]) => number,
  what: string,
): TensorValue {
  const dims = broadcastShapes(inputs.map((v) => v.dims), what);
  const n = numel(dims);
  const outStrides = stridesOf(dims);
  // per input: stride along each output axis (0 where broadcast)
  const inStrides = inputs.map((v) => {
    const s = stridesOf(v.dims);
    return dims.map((_, i) => {
      const j = i - (dims.length - v.dims.length);
      return j < 0 || v.dims[j] === 1 ? 0 : s[j];
    });
  });
  const out = isFloatType(outType) ? new Float32Array(n) : new Float64Array(n);
  const args = new Array<number>(inputs.length);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < inputs.length; k++) {
      let off = 0;
      let rem = i;
      for (let a = 0; a < dims.length; a++) {
        const idx = Math.floor(rem / outStrides[a]);
        rem -= idx * outStrides[a];
        off += idx * inStrides[k][a];
      }
      args[k] = inputs[k].data[off];
    }
    out[i] = fn(args);
  }
  return { dataType: outType, dims, data: out };
}

/** Cache-blocked 2-D transpose: weight matrices are the common (and large) case. */
function transpose2d(src: Float32Array | Float64Array, rows: number, cols: number): Float32Array | Float64Array {
  const out = src instanceof Float32Array ? new Float32Array(rows * cols) : new Float64Array(rows * cols);
  const B = 64;
  for (let r0 = 0; r0 < rows; r0 += B) {
    const r1 = Math.min(r0 + B, rows);
    for (let c0 = 0; c0 < cols; c0 += B) {
      const c1 = Math.min(c0 + B, cols);
      for (let r = r0; r < r1; r++) {
        for (let c = c0; c < c1; c++) out[c * rows + r] = src[r * cols + c];
      }
    }
  }
  return out;
}

export function transposeValue(v: TensorValue, perm: readonly number[]): TensorValue {
  const dims = perm.map((p) => v.dims[p]);
  if (perm.length === 2 && perm[0] === 1) return { dataType: v.dataType, dims, data: transpose2d(v.data, v.dims[0], v.dims[1]) };
  if (perm.every((p, i) => p === i)) return { dataType: v.dataType, dims, data: v.data.slice() };
  const inStrides = stridesOf(v.dims);
  const stepByOutAxis = perm.map((p) => inStrides[p]);
  const n = numel(dims);
  const out = v.data instanceof Float32Array ? new Float32Array(n) : new Float64Array(n);
  const idx = new Array<number>(dims.length).fill(0);
  let src = 0;
  for (let i = 0; i < n; i++) {
    out[i] = v.data[src];
    // odometer increment over the output index, tracking the source offset
    for (let a = dims.length - 1; a >= 0; a--) {
      idx[a]++;
      src += stepByOutAxis[a];
      if (idx[a] < dims[a]) break;
      src -= stepByOutAxis[a] * dims[a];
      idx[a] = 0;
    }
  }
  return { dataType: v.dataType, dims, data: out };
}

export function gatherValue(v: TensorValue, indices: TensorValue, axis: number): TensorValue {
  const a = axis;
  const outer = numel(v.dims.slice(0, a));
  const inner = numel(v.dims.slice(a + 1));
  const size = v.dims[a];
  const dims = [...v.dims.slice(0, a), ...indices.dims, ...v.dims.slice(a + 1)];
  const out = v.data instanceof Float32Array ? new Float32Array(numel(dims)) : new Float64Array(numel(dims));
  let o = 0;
  for (let i = 0; i < outer; i++) {
    for (let k = 0; k < indices.data.length; k++) {
      let j = indices.data[k];
      if (j < 0) j += size;
      if (j < 0 || j >= size) throw new SpdfqError('E_ONNX', `Gather index ${indices.data[k]} is out of range for size ${size}`);
      for (let t = 0; t < inner; t++) out[o++] = v.data[(i * size + j) * inner + t];
    }
  }
  return { dataType: v.dataType, dims, data: out };
}

/** One axis' slice after ONNX clamping rules: start/end/step → the picked indices. */
export function sliceIndices(size: number, start: number, end: number, step: number): number[] {
  if (step === 0) throw new SpdfqError('E_ONNX', 'Slice step must not be 0');
  const clamp = (x: number, lo: number, hi: number) => Math.min(Math.max(x, lo), hi);
  let s = start < 0 ? start + size : start;
  let e = end < 0 ? end + size : end;
  const out: number[] = [];
  if (step > 0) {
    s = clamp(s, 0, size);
    e = clamp(e, 0, size);
    for (let i = s; i < e; i += step) out.push(i);
  } else {
    s = clamp(s, -1, size - 1);
    e = clamp(e, -1, size - 1);
    for (let i = s; i > e; i += step) out.push(i);
  }
  return out;
}

/** Select per-axis index lists (a generalized Slice). */
export function selectValue(v: TensorValue, picks: readonly (readonly number[])[]): TensorValue {
  const dims = picks.map((p) => p.length);
  const inStrides = stridesOf(v.dims);
  const n = numel(dims);
  const out = v.data instanceof Float32Array ? new Float32Array(n) : new Float64Array(n);
  const outStrides = stridesOf(dims);
  for (let i = 0; i < n; i++) {
    let rem = i;
    let off = 0;
    for (let a = 0; a < dims.length; a++) {
      const idx = Math.floor(rem / outStrides[a]);
      rem -= idx * outStrides[a];
      off += picks[a][idx] * inStrides[a];
    }
    out[i] = v.data[off];
  }
  return { dataType: v.dataType, dims, data: out };
}

export function concatValues(values: readonly TensorValue[], axis: number): TensorValue {
  const first = values[0];
  const dims = [...first.dims];
  dims[axis] = values.reduce((s, v) => s + v.dims[axis], 0);
  const outer = numel(first.dims.slice(0, axis));
  const out = first.data instanceof Float32Array ? new Float32Array(numel(dims)) : new Float64Array(numel(dims));
  let o = 0;
  for (let i = 0; i < outer; i++) {
    for (const v of values) {
      const chunk = numel(v.dims.slice(axis));
      for (let t = 0; t < chunk; t++) out[o++] = v.data[i * chunk + t];
    }
  }
  return { dataType: first.dataType, dims, data: out };
}

export type ReduceKind = 'mean' | 'sum' | 'max' | 'min' | 'prod';

export function reduceValue(v: TensorValue, axes: readonly number[], keepdims: boolean, kind: ReduceKind): TensorValue {
  const reduced = new Set(axes);
  const keptDims = v.dims.map((d, i) => (reduced.has(i) ? 1 : d));
  const outStrides = stridesOf(keptDims);
  const inStrides = stridesOf(v.dims);
  const nOut = numel(keptDims);
  const init = kind === 'max' ? -Infinity : kind === 'min' ? Infinity : kind === 'prod' ? 1 : 0;
  const acc = new Float64Array(nOut).fill(init);
  const count = numel(v.dims) / Math.max(nOut, 1);
  for (let i = 0; i < v.data.length; i++) {
    let rem = i;
    let o = 0;
    for (let a = 0; a < v.dims.length; a++) {
      const idx = Math.floor(rem / inStrides[a]);
      rem -= idx * inStrides[a];
      if (!reduced.has(a)) o += idx * outStrides[a];
    }
    const x = v.data[i];
    if (kind === 'max') acc[o] = Math.max(acc[o], x);
    else if (kind === 'min') acc[o] = Math.min(acc[o], x);
    else if (kind === 'prod') acc[o] *= x;
    else acc[o] += x;
  }
  if (kind === 'mean') for (let i = 0; i < nOut; i++) acc[i] /= count;
  const dims = keepdims ? keptDims : v.dims.filter((_, i) => !reduced.has(i));
  return makeValue(v.dataType, dims, acc);
}

/** Cast semantics of ONNX Runtime: float → int truncates toward zero; → bool is != 0. */
export function castValue(v: TensorValue, to: number): TensorValue {
  const n = v.data.length;
  const out = isFloatType(to) ? new Float32Array(n) : new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const x = v.data[i];
    if (to === DataType.BOOL) out[i] = x !== 0 ? 1 : 0;
    else if (isFloatType(to)) out[i] = x;
    else out[i] = Math.trunc(x);
  }
  return { dataType: to, dims: [...v.dims], data: out };
}

/** Numerical Recipes' Chebyshev fit of erfc (fractional error < 1.2e-7): accurate enough
 *  to tell erf-GELU from its tanh approximation, which differ by up to ~3e-4. */
export function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z - 1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - r : r - 1;
}

export function geluErf(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

export function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
}

/** The MLP activations the engine runs (VitConfig.activation), in double precision. */
export const MLP_ACTIVATION_FUNCTIONS: Record<MlpActivation, (x: number) => number> = {
  gelu: geluErf,
  'gelu-tanh': geluTanh,
  'quick-gelu': (x) => x / (1 + Math.exp(-1.702 * x)),
  relu: (x) => Math.max(0, x),
  silu: (x) => x / (1 + Math.exp(-x)),
};
