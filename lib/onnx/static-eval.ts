// Static evaluation of a graph for one concrete input shape: the shape of every tensor,
// and the value of every tensor that is computable without the input (shape arithmetic,
// scalar constants, weights behind Transpose/Reshape nodes). Exporters build reshape
// targets from Shape → Gather → Unsqueeze → Concat chains and attention scales from
// Shape → Cast → Sqrt; evaluating them turns every such pattern into plain numbers, so the
// recognizer never has to match them.
//
// The batch dimension is evaluated at PROBE_BATCH = 2: a graph that silently hard-codes
// batch 1 in a Reshape fails here, as it would in ONNX Runtime with a batch of 2.

import { SpdfqError } from '../errors';
import { describeNode, OnnxGraph, OnnxNode } from './graph';
import { onnx, toNumber } from './proto';
import { checkedDims, DataType, isFloatType, MAX_TENSOR_ELEMENTS, numel, readTensor, TensorValue } from './tensor-data';
import {
  broadcastShapes,
  castValue,
  concatValues,
  elementwise,
  erf,
  gatherValue,
  geluErf,
  geluTanh,
  makeValue,
  normalizeAxis,
  reduceValue,
  ReduceKind,
  selectValue,
  sliceIndices,
  transposeValue,
} from './tensor-ops';

/** Where a constant float tensor came from, so export can write new values back:
 *  value = reshape(transpose(source data of srcDims, perm), value dims). */
export interface WeightSource {
  kind: 'initializer' | 'constant';
  /** Initializer name, or the output name of the Constant node. */
  name: string;
  srcDims: number[];
  perm: number[] | null;
  /** The Constant node sits inside an inlined local function (cannot be rewritten). */
  inFunction: boolean;
}

export interface Known {
  /** null when the shape depends on something we cannot evaluate. */
  shape: number[] | null;
  dataType: number;
  value?: TensorValue;
  source?: WeightSource;
}

/** Larger computed tensors are not folded (weights behind layout ops always are). */
const FOLD_LIMIT = 1 << 16;

const LAYOUT_OPS_FOLDED_ALWAYS = new Set(['Identity', 'Dropout', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Transpose', 'Cast']);

const UNARY: Record<string, (x: number, node: OnnxNode) => number> = {
  Sqrt: Math.sqrt,
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

const BINARY: Record<string, (a: number, b: number, intMath: boolean) => number> = {
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
const COMPARISONS = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Not']);
const SAME_SHAPE = new Set(['Softmax', 'LogSoftmax', 'Identity', 'Clip', 'LeakyRelu', 'HardSigmoid']);
/** Inputs an op cannot do without (the rest default to 1 for unary, 2 for binary ops). */
const MIN_INPUTS: Record<string, number> = {
  MatMul: 2, Gemm: 2, Conv: 2, Reshape: 2, Expand: 2, Tile: 2, Gather: 2, CastLike: 2, Where: 3, Range: 3, Mod: 2,
};
const REDUCE: Record<string, ReduceKind> = { ReduceMean: 'mean', ReduceSum: 'sum', ReduceMax: 'max', ReduceMin: 'min', ReduceProd: 'prod' };

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

export class StaticEval {
  readonly graph: OnnxGraph;
  private readonly known = new Map<string, Known>();

  constructor(graph: OnnxGraph, inputShapes: Map<string, number[]>) {
    this.graph = graph;
    for (const input of graph.inputs) {
      this.known.set(input.name, { shape: inputShapes.get(input.name) ?? null, dataType: input.elemType });
    }
    for (const node of graph.nodes) {
      let outs: Known[];
      try {
        outs = this.evalNode(node);
      } catch (err) {
        if (err instanceof SpdfqError) {
          const shapes = [...inputShapes].map(([n, s]) => `'${n}' [${s.join(', ')}]`).join(', ');
          throw new SpdfqError('E_ONNX', `the graph cannot run on input ${shapes} (dynamic dimensions evaluated at the sizes the model implies): ${describeNode(node)}: ${err.message}`, { cause: err });
        }
        throw err;
      }
      node.outputs.forEach((o, i) => {
        const k = outs[i] ?? { shape: null, dataType: 0 };
        if (k.shape && !validShape(k.shape)) {
          throw new SpdfqError('E_ONNX', `${describeNode(node)} computes the invalid shape [${k.shape.join(', ')}] for '${o}'; the file may be corrupt`);
        }
        if (o) this.known.set(o, k);
      });
    }
  }

  /** What is known about a tensor (initializers included). */
  info(name: string): Known | undefined {
    const k = this.known.get(name);
    if (k) return k;
    const init = this.graph.initializers.get(name);
    if (!init) return undefined;
    const dims = checkedDims(init.dims ?? [], `initializer '${name}'`);
    const entry: Known = {
      shape: dims,
      dataType: init.dataType ?? 0,
      source: { kind: 'initializer', name, srcDims: dims, perm: null, inFunction: false },
    };
    this.known.set(name, entry);
    return entry;
  }

  shape(name: string): number[] | null {
    return this.info(name)?.shape ?? null;
  }

  /** The constant value of a tensor, decoding initializers on demand; undefined when the
   *  tensor depends on the graph input. */
  value(name: string): TensorValue | undefined {
    const k = this.info(name);
    if (!k) return undefined;
    if (!k.value && this.graph.initializers.has(name)) k.value = this.graph.initializer(name);
    return k.value;
  }

  isConstant(name: string): boolean {
    const k = this.info(name);
    return !!k && (k.value !== undefined || this.graph.initializers.has(name));
  }

  private evalNode(node: OnnxNode): Known[] {
    const ins = node.inputs.map((i) => (i === '' ? undefined : this.info(i)));
    const shape = (i: number) => ins[i]?.shape ?? null;
    const dtype = (i: number) => ins[i]?.dataType ?? 0;
    const val = (i: number) => (node.inputs[i] ? this.value(node.inputs[i]) : undefined);
    const allConst = node.inputs.every((i) => i === '' || this.isConstant(i));
    const fold = (outShape: number[] | null) =>
      allConst && outShape !== null && validShape(outShape) && (LAYOUT_OPS_FOLDED_ALWAYS.has(node.opType) || numel(outShape) <= FOLD_LIMIT);
    const op = node.opType;
    const what = op;

    if (op === 'Constant') return [constantNode(node)];
    const arity = MIN_INPUTS[op] ?? (BINARY[op] ? 2 : 1);
    if (node.inputs.filter((i) => i !== '').length < arity) {
      throw new SpdfqError('E_ONNX', `${op} needs at least ${arity} input${arity > 1 ? 's' : ''}, found ${node.inputs.filter((i) => i !== '').length}`);
    }

    if (UNARY[op] || SAME_SHAPE.has(op)) {
      const s = shape(0);
      const outType = COMPARISONS.has(op) ? DataType.BOOL : dtype(0);
      if (UNARY[op] && fold(s)) {
        const f = UNARY[op];
        const v = elementwise([val(0) as TensorValue], outType, (a) => f(a[0], node), what);
        return [{ shape: v.dims, dataType: outType, value: v }];
      }
      return [{ shape: s, dataType: outType }];
    }

    if (BINARY[op] || op === 'Max' || op === 'Min' || op === 'Mod' || op === 'Where') {
      const shapes = ins.map((k) => k?.shape ?? null);
      const outShape = shapes.some((s) => s === null) ? null : broadcastShapes(shapes as number[][], what);
      const outType = COMPARISONS.has(op) ? DataType.BOOL : op === 'Where' ? dtype(1) : dtype(0);
      if (fold(outShape)) {
        const values = node.inputs.map((_, i) => val(i) as TensorValue);
        const intMath = !isFloatType(dtype(0));
        let f: (a: number[]) => number;
        if (op === 'Where') f = (a) => (a[0] ? a[1] : a[2]);
        else if (op === 'Max') f = (a) => Math.max(...a);
        else if (op === 'Min') f = (a) => Math.min(...a);
        else if (op === 'Mod') f = attrInt(node, 'fmod', 0) ? (a) => a[0] % a[1] : (a) => ((a[0] % a[1]) + a[1]) % a[1];
        else f = (a) => BINARY[op](a[0], a[1], intMath);
        const v = elementwise(values, outType, f, what);
        return [{ shape: v.dims, dataType: outType, value: v }];
      }
      return [{ shape: outShape, dataType: outType }];
    }

    switch (op) {
      case 'Dropout':
        return [this.passThrough(node, ins[0]), { shape: shape(0), dataType: DataType.BOOL }];
      case 'Cast':
      case 'CastLike': {
        const to = op === 'Cast' ? attrInt(node, 'to', 0) : dtype(1);
        const s = shape(0);
        if (fold(s) && val(0)) {
          const v = castValue(val(0) as TensorValue, to);
          const keepSource = isFloatType(to) && isFloatType(dtype(0));
          return [{ shape: s, dataType: to, value: v, source: keepSource ? ins[0]?.source : undefined }];
        }
        return [{ shape: s, dataType: to }];
      }
      case 'Shape': {
        const s = shape(0);
        if (!s) return [{ shape: null, dataType: DataType.INT64 }];
        const r = s.length;
        const clampAxis = (a: number) => Math.min(Math.max(a < 0 ? a + r : a, 0), r);
        const start = clampAxis(attrInt(node, 'start', 0));
        const end = clampAxis(attrInt(node, 'end', r));
        const picked = s.slice(start, Math.max(start, end));
        return [{ shape: [picked.length], dataType: DataType.INT64, value: makeValue(DataType.INT64, [picked.length], picked) }];
      }
      case 'Size': {
        const s = shape(0);
        return [{ shape: [], dataType: DataType.INT64, value: s ? makeValue(DataType.INT64, [], [numel(s)]) : undefined }];
      }
      case 'Reshape':
        return [this.reshape(node, ins, val(1))];
      case 'Flatten': {
        const s = shape(0);
        if (!s) return [{ shape: null, dataType: dtype(0) }];
        const axis = attrInt(node, 'axis', 1);
        const a = axis < 0 ? axis + s.length : axis;
        return [this.layoutResult(node, ins[0], [numel(s.slice(0, a)), numel(s.slice(a))], null)];
      }
      case 'Transpose': {
        const s = shape(0);
        if (!s) return [{ shape: null, dataType: dtype(0) }];
        const perm = attrInts(node, 'perm') ?? s.map((_, i) => s.length - 1 - i);
        if (perm.length !== s.length || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
          throw new SpdfqError('E_ONNX', `perm [${perm.join(', ')}] is not a permutation of ${s.length} axes`);
        }
        return [this.layoutResult(node, ins[0], perm.map((p) => s[p]), perm)];
      }
      case 'Squeeze':
      case 'Unsqueeze': {
        const s = shape(0);
        const axesValue = attrInts(node, 'axes') ?? (node.inputs[1] ? val(1) && Array.from((val(1) as TensorValue).data) : undefined);
        if (!s || (op === 'Unsqueeze' && !axesValue) || (node.inputs[1] && !axesValue)) return [{ shape: null, dataType: dtype(0) }];
        let out: number[];
        if (op === 'Squeeze') {
          const axes = axesValue ? axesValue.map((a) => normalizeAxis(a, s.length, what)) : s.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0);
          for (const a of axes) if (s[a] !== 1) throw new SpdfqError('E_ONNX', `cannot squeeze axis ${a} of size ${s[a]} in [${s.join(', ')}]`);
          out = s.filter((_, i) => !axes.includes(i));
        } else {
          const rank = s.length + (axesValue as number[]).length;
          const axes = (axesValue as number[]).map((a) => normalizeAxis(a, rank, what));
          out = [];
          let j = 0;
          for (let i = 0; i < rank; i++) out.push(axes.includes(i) ? 1 : s[j++]);
        }
        return [this.layoutResult(node, ins[0], out, null)];
      }
      case 'Gather': {
        const s = shape(0);
        const is = shape(1);
        if (!s || !is) return [{ shape: null, dataType: dtype(0) }];
        const axis = normalizeAxis(attrInt(node, 'axis', 0), s.length, what);
        const outShape = [...s.slice(0, axis), ...is, ...s.slice(axis + 1)];
        if (fold(outShape) && numel(outShape) <= FOLD_LIMIT) {
          const v = gatherValue(val(0) as TensorValue, val(1) as TensorValue, axis);
          return [{ shape: outShape, dataType: dtype(0), value: v }];
        }
        return [{ shape: outShape, dataType: dtype(0) }];
      }
      case 'Slice':
        return [this.slice(node, ins, val)];
      case 'Split':
        return this.split(node, ins, val);
      case 'Concat': {
        const shapes = ins.map((k) => k?.shape ?? null);
        if (shapes.some((x) => x === null)) return [{ shape: null, dataType: dtype(0) }];
        const ss = shapes as number[][];
        const axis = normalizeAxis(attrInt(node, 'axis', 0), ss[0].length, what);
        for (const x of ss) {
          if (x.length !== ss[0].length || x.some((d, i) => i !== axis && d !== ss[0][i])) {
            throw new SpdfqError('E_ONNX', `cannot concatenate ${ss.map((q) => `[${q.join(', ')}]`).join(', ')} on axis ${axis}`);
          }
        }
        const out = [...ss[0]];
        out[axis] = ss.reduce((t, x) => t + x[axis], 0);
        if (fold(out)) {
          return [{ shape: out, dataType: dtype(0), value: concatValues(node.inputs.map((_, i) => val(i) as TensorValue), axis) }];
        }
        return [{ shape: out, dataType: dtype(0) }];
      }
      case 'Expand': {
        const s = shape(0);
        const target = val(1);
        if (!s || !target) return [{ shape: null, dataType: dtype(0) }];
        const out = broadcastShapes([s, Array.from(target.data)], what);
        if (fold(out)) {
          const v = val(0) as TensorValue;
          return [{ shape: out, dataType: dtype(0), value: elementwise([v, makeValue(v.dataType, out, new Array(numel(out)).fill(0))], v.dataType, (a) => a[0], what) }];
        }
        return [{ shape: out, dataType: dtype(0) }];
      }
      case 'Tile': {
        const s = shape(0);
        const reps = val(1);
        if (!s || !reps) return [{ shape: null, dataType: dtype(0) }];
        return [{ shape: s.map((d, i) => d * reps.data[i]), dataType: dtype(0) }];
      }
      case 'ConstantOfShape': {
        const target = val(0);
        const t = node.attrs.get('value')?.t;
        const fill = t ? readTensor(t, `${describeNode(node)} value`) : makeValue(DataType.FLOAT, [1], [0]);
        if (!target) return [{ shape: null, dataType: fill.dataType }];
        const out = Array.from(target.data);
        checkedDims(out, describeNode(node));
        const n = numel(out);
        return [{ shape: out, dataType: fill.dataType, value: n <= FOLD_LIMIT ? makeValue(fill.dataType, out, new Array(n).fill(fill.data[0] ?? 0)) : undefined }];
      }
      case 'Range': {
        const [a, b, c] = [val(0), val(1), val(2)];
        if (!a || !b || !c) return [{ shape: null, dataType: dtype(0) }];
        const n = Math.max(Math.ceil((b.data[0] - a.data[0]) / c.data[0]), 0);
        if (n > FOLD_LIMIT) return [{ shape: [n], dataType: dtype(0) }];
        return [{ shape: [n], dataType: dtype(0), value: makeValue(dtype(0), [n], Array.from({ length: n }, (_, i) => a.data[0] + i * c.data[0])) }];
      }
      case 'LayerNormalization': {
        const s = shape(0);
        if (!s) return [{ shape: null, dataType: dtype(0) }];
        const axis = normalizeAxis(attrInt(node, 'axis', -1), s.length, what);
        const stat = s.map((d, i) => (i < axis ? d : 1));
        return [{ shape: s, dataType: dtype(0) }, { shape: stat, dataType: DataType.FLOAT }, { shape: stat, dataType: DataType.FLOAT }];
      }
      case 'MatMul':
        return [{ shape: matmulShape(shape(0), shape(1), what), dataType: dtype(0) }];
      case 'Gemm': {
        const a = shape(0);
        const b = shape(1);
        if (!a || !b) return [{ shape: null, dataType: dtype(0) }];
        if (a.length !== 2 || b.length !== 2) throw new SpdfqError('E_ONNX', `Gemm needs 2-D inputs, found [${a.join(', ')}] and [${b.join(', ')}]`);
        const [m, k1] = attrInt(node, 'transA', 0) ? [a[1], a[0]] : a;
        const [k2, n] = attrInt(node, 'transB', 0) ? [b[1], b[0]] : b;
        if (k1 !== k2) throw new SpdfqError('E_ONNX', `Gemm inner sizes differ: ${k1} vs ${k2}`);
        return [{ shape: [m, n], dataType: dtype(0) }];
      }
      case 'Conv':
        return [{ shape: convShape(node, shape(0), shape(1)), dataType: dtype(0) }];
    }
    if (REDUCE[op]) return [this.reduce(node, ins, val)];
    // Unknown op: nothing known about its outputs. The recognizer names it if it matters.
    return node.outputs.map(() => ({ shape: null, dataType: 0 }));
  }

  private passThrough(node: OnnxNode, input: Known | undefined): Known {
    if (!input) return { shape: null, dataType: 0 };
    const v = node.inputs[0] ? this.value(node.inputs[0]) : undefined;
    return { shape: input.shape, dataType: input.dataType, value: v, source: v ? input.source : undefined };
  }

  /** Output of a pure layout op; folds the value and keeps track of its weight source
   *  (perm non-null for Transpose). */
  private layoutResult(node: OnnxNode, input: Known | undefined, outShape: number[], perm: number[] | null): Known {
    const dataType = input?.dataType ?? 0;
    const v = node.inputs[0] ? this.value(node.inputs[0]) : undefined;
    if (!v) return { shape: outShape, dataType };
    const data = perm ? transposeValue(v, perm).data : v.data;
    let source: WeightSource | undefined;
    const src = input?.source;
    if (src && !perm) source = src;
    if (src && perm) {
      // compose with an earlier transpose only if no reshape happened in between
      const viewDims = src.perm ? src.perm.map((p) => src.srcDims[p]) : src.srcDims;
      if (viewDims.length === v.dims.length && viewDims.every((d, i) => d === v.dims[i])) {
        source = { ...src, perm: perm.map((p) => (src.perm ? src.perm[p] : p)) };
      }
    }
    return { shape: outShape, dataType, value: { dataType: v.dataType, dims: outShape, data }, source };
  }

  private reshape(node: OnnxNode, ins: (Known | undefined)[], target: TensorValue | undefined): Known {
    const s = ins[0]?.shape ?? null;
    if (!s || !target) return { shape: null, dataType: ins[0]?.dataType ?? 0 };
    const allowZero = attrInt(node, 'allowzero', 0) === 1;
    const want = Array.from(target.data);
    const out = want.map((d, i) => (d === 0 && !allowZero ? s[i] : d));
    const total = numel(s);
    const minus = out.filter((d) => d === -1).length;
    if (minus > 1 || out.some((d) => d === undefined || d < -1 || !Number.isInteger(d))) {
      throw new SpdfqError('E_ONNX', `invalid reshape target [${want.join(', ')}]`);
    }
    if (minus === 1) {
      const known = numel(out.filter((d) => d !== -1));
      if (known === 0 || total % known !== 0) throw new SpdfqError('E_ONNX', `cannot reshape [${s.join(', ')}] to [${want.join(', ')}]`);
      out[out.indexOf(-1)] = total / known;
    }
    if (numel(out) !== total) {
      throw new SpdfqError(
        'E_ONNX',
        `cannot reshape [${s.join(', ')}] to [${want.join(', ')}] (evaluated with batch ${s[0]}); a graph traced with a fixed batch size does not run with other batch sizes`,
      );
    }
    return this.layoutResult(node, ins[0], out, null);
  }

  private slice(node: OnnxNode, ins: (Known | undefined)[], val: (i: number) => TensorValue | undefined): Known {
    const dataType = ins[0]?.dataType ?? 0;
    const picks = this.slicePicks(node);
    if (!picks) return { shape: null, dataType };
    const out = picks.map((p) => p.length);
    const v = node.inputs.every((i) => i === '' || this.isConstant(i)) && numel(out) <= FOLD_LIMIT ? val(0) : undefined;
    return { shape: out, dataType, value: v ? selectValue(v, picks) : undefined };
  }

  /** The indices a Slice node keeps along every axis of its input (attributes before
   *  opset 10, inputs after); undefined when they are not constant. */
  slicePicks(node: OnnxNode): number[][] | undefined {
    const s = this.shape(node.inputs[0]);
    if (!s) return undefined;
    let starts: number[] | undefined;
    let ends: number[] | undefined;
    let axes: number[] | undefined;
    let steps: number[] | undefined;
    if (node.attrs.has('starts')) {
      starts = attrInts(node, 'starts');
      ends = attrInts(node, 'ends');
      axes = attrInts(node, 'axes');
    } else {
      const get = (i: number) => {
        const v = node.inputs[i] ? this.value(node.inputs[i]) : undefined;
        return v ? Array.from(v.data) : undefined;
      };
      starts = get(1);
      ends = get(2);
      axes = get(3);
      steps = get(4);
      if ((node.inputs[3] && !axes) || (node.inputs[4] && !steps)) return undefined;
    }
    if (!starts || !ends || starts.length !== ends.length) return undefined;
    const picks = s.map((d) => Array.from({ length: d }, (_, i) => i));
    starts.forEach((st, k) => {
      const axis = normalizeAxis(axes ? axes[k] : k, s.length, 'Slice');
      picks[axis] = sliceIndices(s[axis], st, (ends as number[])[k], steps ? steps[k] : 1);
    });
    return picks;
  }

  private split(node: OnnxNode, ins: (Known | undefined)[], val: (i: number) => TensorValue | undefined): Known[] {
    const s = ins[0]?.shape ?? null;
    const dataType = ins[0]?.dataType ?? 0;
    const unknown = node.outputs.map(() => ({ shape: null, dataType }));
    if (!s) return unknown;
    const axis = normalizeAxis(attrInt(node, 'axis', 0), s.length, 'Split');
    let sizes = attrInts(node, 'split') ?? (node.inputs[1] ? val(1) && Array.from((val(1) as TensorValue).data) : undefined);
    if (node.inputs[1] && !sizes) return unknown;
    if (sizes && sizes.some((x) => !Number.isInteger(x) || x < 0)) {
      throw new SpdfqError('E_ONNX', `split sizes [${sizes.join(', ')}] must be non-negative integers`);
    }
    if (!sizes) {
      const parts = node.outputs.length;
      if (node.attrs.has('num_outputs') && attrInt(node, 'num_outputs', parts) !== parts) {
        throw new SpdfqError('E_ONNX', `num_outputs ${attrInt(node, 'num_outputs', parts)} differs from the node's ${parts} outputs`);
      }
      const chunk = Math.ceil(s[axis] / parts);
      sizes = Array.from({ length: parts }, (_, i) => Math.max(0, Math.min(chunk, s[axis] - i * chunk)));
    }
    if (sizes.reduce((a, b) => a + b, 0) !== s[axis]) {
      throw new SpdfqError('E_ONNX', `split sizes [${sizes.join(', ')}] do not add up to ${s[axis]} (axis ${axis} of [${s.join(', ')}])`);
    }
    const v = val(0);
    let offset = 0;
    return sizes.map((size) => {
      const out = [...s];
      out[axis] = size;
      const picks = s.map((d, i) => (i === axis ? Array.from({ length: size }, (_, j) => offset + j) : Array.from({ length: d }, (_, j) => j)));
      offset += size;
      return { shape: out, dataType, value: v && numel(out) <= FOLD_LIMIT ? selectValue(v, picks) : undefined };
    });
  }

  private reduce(node: OnnxNode, ins: (Known | undefined)[], val: (i: number) => TensorValue | undefined): Known {
    const s = ins[0]?.shape ?? null;
    const dataType = ins[0]?.dataType ?? 0;
    if (!s) return { shape: null, dataType };
    const axesAttr = attrInts(node, 'axes');
    const axesInput = node.inputs[1] ? val(1) : undefined;
    if (node.inputs[1] && !axesInput) return { shape: null, dataType };
    let axes = axesAttr ?? (axesInput ? Array.from(axesInput.data) : []);
    if (axes.length === 0) {
      if (attrInt(node, 'noop_with_empty_axes', 0)) return { shape: s, dataType, value: val(0) };
      axes = s.map((_, i) => i);
    }
    const norm = axes.map((a) => normalizeAxis(a, s.length, node.opType));
    const keep = attrInt(node, 'keepdims', 1) === 1;
    const out = keep ? s.map((d, i) => (norm.includes(i) ? 1 : d)) : s.filter((_, i) => !norm.includes(i));
    const v = this.isConstant(node.inputs[0]) && numel(s) <= FOLD_LIMIT ? val(0) : undefined;
    return { shape: out, dataType, value: v ? reduceValue(v, norm, keep, REDUCE[node.opType]) : undefined };
  }

  /** Reduction axes of a ReduceMean-like node, normalized (attribute before opset 18,
   *  input from 18 on); undefined when they cannot be evaluated. */
  reduceAxes(node: OnnxNode): number[] | undefined {
    const s = this.shape(node.inputs[0]);
    if (!s) return undefined;
    const attr = attrInts(node, 'axes');
    const input = node.inputs[1] ? this.value(node.inputs[1]) : undefined;
    if (node.inputs[1] && !input) return undefined;
    const axes = attr ?? (input ? Array.from(input.data) : s.map((_, i) => i));
    return axes.map((a) => (a < 0 ? a + s.length : a));
  }
}

/** Non-negative integer dims with a plausible element count (values computed from a
 *  corrupt constant can be anything). */
function validShape(shape: readonly number[]): boolean {
  return shape.length <= 16 && shape.every((d) => Number.isInteger(d) && d >= 0) && numel(shape) <= MAX_TENSOR_ELEMENTS;
}

function constantNode(node: OnnxNode): Known {
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

function matmulShape(a: number[] | null, b: number[] | null, what: string): number[] | null {
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

function convShape(node: OnnxNode, x: number[] | null, w: number[] | null): number[] | null {
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
