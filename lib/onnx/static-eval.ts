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
import { BINARY, COMPARISONS, constantNode, convShape, matmulShape, MIN_INPUTS, REDUCE, SAME_SHAPE, UNARY, validShape, attrInt, attrInts, attrString } from './op-tables';
import { Known, WeightSource } from './static-eval-types';
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

export type { Known, WeightSource } from './static-eval-types';
export { attrFloat, attrInt, attrInts, attrString, isElementwise, scalarOp } from './op-tables';

/** One node's evaluation context: its inputs as known so far, and whether its result is
 *  folded into a value. */
interface NodeCtx {
  node: OnnxNode;
  ins: (Known | undefined)[];
  shape: (i: number) => number[] | null;
  dtype: (i: number) => number;
  val: (i: number) => TensorValue | undefined;
  fold: (outShape: number[] | null) => boolean;
  what: string;
}

/** Larger computed tensors are not folded (weights behind layout ops always are). */
const FOLD_LIMIT = 1 << 16;

export interface StaticEvalOptions {
  /** Fold computed tensors up to this many elements (default FOLD_LIMIT). Swin's shifted-
   *  window masks [windows, N, N] are computed from shapes by ScatterND chains and reach
   *  64·49·49 = 153,664 elements in Swin-T; the Swin importer raises the limit to read them. */
  foldLimit?: number;
}

const LAYOUT_OPS_FOLDED_ALWAYS = new Set(['Identity', 'Dropout', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Transpose', 'Cast']);

export class StaticEval {
  readonly graph: OnnxGraph;
  private readonly known = new Map<string, Known>();
  private readonly foldLimit: number;

  constructor(graph: OnnxGraph, inputShapes: Map<string, number[]>, options: StaticEvalOptions = {}) {
    this.graph = graph;
    this.foldLimit = options.foldLimit ?? FOLD_LIMIT;
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
      allConst && outShape !== null && validShape(outShape) && (LAYOUT_OPS_FOLDED_ALWAYS.has(node.opType) || numel(outShape) <= this.foldLimit);
    const op = node.opType;
    const what = op;
    const c: NodeCtx = { node, ins, shape, dtype, val, fold, what };

    if (op === 'Constant') return [constantNode(node)];
    const arity = MIN_INPUTS[op] ?? (BINARY[op] ? 2 : 1);
    if (node.inputs.filter((i) => i !== '').length < arity) {
      throw new SpdfqError('E_ONNX', `${op} needs at least ${arity} input${arity > 1 ? 's' : ''}, found ${node.inputs.filter((i) => i !== '').length}`);
    }

    // Identity passes values and their source through: exporters deduplicate equal
    // initializers (torchvision's zero biases, unit LayerNorm gains) behind Identity nodes.
    if (op === 'Identity') return [this.passThrough(node, ins[0])];
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

    return (
      this.evalShapeOp(c) ??
      this.evalLayoutOp(c) ??
      this.evalIndexingOp(c) ??
      this.evalComputeOp(c) ??
      (REDUCE[op] ? [this.reduce(node, ins, val)] : undefined) ??
      // Unknown op: nothing known about its outputs. The recognizer names it if it matters.
      node.outputs.map(() => ({ shape: null, dataType: 0 }))
    );
  }

  /** Dropout, Cast, Shape, Size. */
  private evalShapeOp(c: NodeCtx): Known[] | undefined {
    const { node, ins, shape, dtype, val, fold, what } = c;
    const op = node.opType;
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
    }
    return undefined;
  }

  /** Pure layout: Reshape, Flatten, Transpose, Squeeze, Unsqueeze. */
  private evalLayoutOp(c: NodeCtx): Known[] | undefined {
    const { node, ins, shape, dtype, val, fold, what } = c;
    const op = node.opType;
    switch (op) {
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
    }
    return undefined;
  }

  /** Gather, Slice, Split, Concat, Expand, Tile, ConstantOfShape, Range. */
  private evalIndexingOp(c: NodeCtx): Known[] | undefined {
    const { node, ins, shape, dtype, val, fold, what } = c;
    const op = node.opType;
    switch (op) {
      case 'Gather': {
        const s = shape(0);
        const is = shape(1);
        if (!s || !is) return [{ shape: null, dataType: dtype(0) }];
        const axis = normalizeAxis(attrInt(node, 'axis', 0), s.length, what);
        const outShape = [...s.slice(0, axis), ...is, ...s.slice(axis + 1)];
        if (fold(outShape)) {
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
        return [{ shape: out, dataType: fill.dataType, value: n <= this.foldLimit ? makeValue(fill.dataType, out, new Array(n).fill(fill.data[0] ?? 0)) : undefined }];
      }
      case 'Pad': {
        // opset ≥ 11: pads (and the constant value) are inputs; before, attributes
        const s = shape(0);
        const padsValue = attrInts(node, 'pads') ?? (val(1) ? Array.from((val(1) as TensorValue).data) : undefined);
        if (!s || !padsValue) return [{ shape: null, dataType: dtype(0) }];
        const axesValue = node.inputs[3] ? val(3) : undefined;
        if (node.inputs[3] && !axesValue) return [{ shape: null, dataType: dtype(0) }];
        const axes = axesValue ? Array.from(axesValue.data).map((a) => normalizeAxis(a, s.length, what)) : s.map((_, i) => i);
        if (padsValue.length !== 2 * axes.length) throw new SpdfqError('E_ONNX', `Pad needs ${2 * axes.length} pads for axes [${axes.join(', ')}], found ${padsValue.length}`);
        const out = [...s];
        axes.forEach((a, k) => (out[a] = s[a] + padsValue[k] + padsValue[k + axes.length]));
        checkedDims(out, describeNode(node));
        return [{ shape: out, dataType: dtype(0) }];
      }
      case 'ScatterND': {
        const s = shape(0);
        if (!s) return [{ shape: null, dataType: dtype(0) }];
        const [data, indices, updates] = [val(0), val(1), val(2)];
        if (!fold(s) || !data || !indices || !updates || attrString(node, 'reduction', 'none') !== 'none') return [{ shape: s, dataType: dtype(0) }];
        return [{ shape: s, dataType: dtype(0), value: scatterND(data, indices, updates, what) }];
      }
      case 'Range': {
        const [a, b, c] = [val(0), val(1), val(2)];
        if (!a || !b || !c) return [{ shape: null, dataType: dtype(0) }];
        const n = Math.max(Math.ceil((b.data[0] - a.data[0]) / c.data[0]), 0);
        if (n > this.foldLimit) return [{ shape: [n], dataType: dtype(0) }];
        return [{ shape: [n], dataType: dtype(0), value: makeValue(dtype(0), [n], Array.from({ length: n }, (_, i) => a.data[0] + i * c.data[0])) }];
      }
    }
    return undefined;
  }

  /** LayerNormalization, MatMul, Gemm, Conv: shapes only. */
  private evalComputeOp(c: NodeCtx): Known[] | undefined {
    const { node, ins, shape, dtype, val, fold, what } = c;
    const op = node.opType;
    switch (op) {
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
      case 'GlobalAveragePool':
      case 'GlobalMaxPool': {
        const s = shape(0);
        return [{ shape: s ? s.map((d, i) => (i < 2 ? d : 1)) : null, dataType: dtype(0) }];
      }
    }
    return undefined;
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
    const v = node.inputs.every((i) => i === '' || this.isConstant(i)) && numel(out) <= this.foldLimit ? val(0) : undefined;
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
      return { shape: out, dataType, value: v && numel(out) <= this.foldLimit ? selectValue(v, picks) : undefined };
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
    const v = this.isConstant(node.inputs[0]) && numel(s) <= this.foldLimit ? val(0) : undefined;
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

/** ScatterND without reduction: a copy of `data` with the slices `indices` names replaced
 *  by `updates` (torch exports slice assignment, `img_mask[:, h, w, :] = cnt`, this way). */
function scatterND(data: TensorValue, indices: TensorValue, updates: TensorValue, what: string): TensorValue {
  const r = data.dims.length;
  const q = indices.dims.length;
  const k = indices.dims[q - 1];
  if (q < 1 || !(k >= 1 && k <= r)) throw new SpdfqError('E_ONNX', `${what}: indices [${indices.dims.join(', ')}] do not index a rank-${r} tensor`);
  const sliceSize = numel(data.dims.slice(k));
  const count = numel(indices.dims.slice(0, -1));
  if (updates.data.length !== count * sliceSize) throw new SpdfqError('E_ONNX', `${what}: updates [${updates.dims.join(', ')}] do not fit ${count} slices of ${sliceSize}`);
  const strides = data.dims.map((_, i) => numel(data.dims.slice(i + 1)));
  const out = makeValue(data.dataType, data.dims, data.data);
  for (let n = 0; n < count; n++) {
    let offset = 0;
    for (let j = 0; j < k; j++) {
      let ix = indices.data[n * k + j];
      if (ix < 0) ix += data.dims[j];
      if (!(ix >= 0 && ix < data.dims[j])) throw new SpdfqError('E_ONNX', `${what}: index ${indices.data[n * k + j]} out of range for axis ${j} of size ${data.dims[j]}`);
      offset += ix * strides[j];
    }
    for (let e = 0; e < sliceSize; e++) out.data[offset + e] = updates.data[n * sliceSize + e];
  }
  return out;
}
