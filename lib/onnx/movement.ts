// What a pure data-movement subgraph does, found by running it: the anchor tensor is
// filled with element ids (element k holds k + 1) and pushed through the ops between it
// and a target (Pad, Slice, Concat, Reshape, Transpose, Gather, …); each element of the
// result names the anchor element it holds, 0 for a padding zero. Swin's window partition,
// torch.roll (exported as Slice + Concat pairs), window reverse and patch merging are
// checked this way against torchvision's index arithmetic (swin-geometry.ts), whatever
// sequence of layout ops an exporter chose to write them with.

import { OnnxNode } from './graph';
import { attrInt, attrInts, attrString, StaticEval } from './static-eval';
import { DataType, isFloatType, numel, TensorValue } from './tensor-data';
import { concatValues, gatherValue, makeValue, normalizeAxis, selectValue, transposeValue } from './tensor-ops';
import { unrecognized } from './unrecognized';

/** Ids are exact in float64 up to 2^53; tensors this large are far beyond any Swin. */
const MAX_ELEMENTS = 1 << 26;

const PASS = new Set(['Identity', 'Dropout']);
const RESHAPES = new Set(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze']);

export class MovementTracer {
  private readonly memo = new Map<string, TensorValue>();

  constructor(
    private readonly ev: StaticEval,
    private readonly stage: string,
    private readonly anchor: string,
    /** What the anchor is, for messages ("the output of norm1"). */
    private readonly anchorLabel: string,
  ) {
    const shape = ev.shape(anchor);
    if (!shape || numel(shape) > MAX_ELEMENTS) throw unrecognized(stage, `${anchorLabel} of a known shape`, ev.graph.producer.get(anchor) ?? `tensor '${anchor}'`);
    this.memo.set(anchor, makeValue(DataType.INT64, shape, Array.from({ length: numel(shape) }, (_, k) => k + 1)));
  }

  /** The ids held by `target` (dims as the graph computes them). */
  trace(target: string): TensorValue {
    const hit = this.memo.get(target);
    if (hit) return hit;
    const node = this.ev.graph.producer.get(target);
    if (!node || this.ev.isConstant(target)) this.fail(node ?? null, target);
    const v = this.step(node, target);
    this.memo.set(target, v);
    return v;
  }

  private fail(node: OnnxNode | null, tensor: string): never {
    throw unrecognized(this.stage, `data-movement ops only (Pad, Slice, Concat, Reshape, Transpose, Gather) between ${this.anchorLabel} and '${tensor}'`, node ?? `tensor '${tensor}' (a graph input or constant)`);
  }

  private step(node: OnnxNode, tensor: string): TensorValue {
    const ev = this.ev;
    const op = node.opType;
    const outShape = ev.shape(tensor);
    if (PASS.has(op) || (op === 'Cast' && isFloatType(attrInt(node, 'to', 0)))) {
      if (op === 'Dropout' && node.outputs[0] !== tensor) this.fail(node, tensor);
      return this.trace(node.inputs[0]);
    }
    if (!outShape) this.fail(node, tensor);
    if (RESHAPES.has(op)) {
      const v = this.trace(node.inputs[0]);
      if (numel(outShape) !== v.data.length) this.fail(node, tensor);
      return { ...v, dims: outShape };
    }
    if (op === 'Transpose') {
      const v = this.trace(node.inputs[0]);
      const perm = attrInts(node, 'perm') ?? v.dims.map((_, i) => v.dims.length - 1 - i);
      return transposeValue(v, perm);
    }
    if (op === 'Slice') {
      const picks = ev.slicePicks(node);
      if (!picks) this.fail(node, tensor);
      return selectValue(this.trace(node.inputs[0]), picks);
    }
    if (op === 'Concat') {
      const parts = node.inputs.map((i) => this.trace(i));
      return concatValues(parts, normalizeAxis(attrInt(node, 'axis', 0), outShape.length, 'Concat'));
    }
    if (op === 'Gather') {
      const index = ev.value(node.inputs[1]);
      if (!index) this.fail(node, tensor);
      const v = this.trace(node.inputs[0]);
      const axis = normalizeAxis(attrInt(node, 'axis', 0), v.dims.length, 'Gather');
      const idx = makeValue(DataType.INT64, index.dims, Array.from(index.data, (i) => (i < 0 ? i + v.dims[axis] : i)));
      return gatherValue(v, idx, axis);
    }
    if (op === 'Split') {
      const v = this.trace(node.inputs[0]);
      const axis = normalizeAxis(attrInt(node, 'axis', 0), v.dims.length, 'Split');
      let offset = 0;
      for (const o of node.outputs) {
        if (o === tensor) break;
        offset += (ev.shape(o) as number[])[axis];
      }
      const picks = v.dims.map((d, i) => Array.from({ length: i === axis ? outShape[axis] : d }, (_, j) => (i === axis ? offset + j : j)));
      return selectValue(v, picks);
    }
    if (op === 'Pad') return this.pad(node, tensor, outShape);
    this.fail(node, tensor);
  }

  /** Constant-mode Pad with zeros (F.pad): the padding holds id 0. */
  private pad(node: OnnxNode, tensor: string, outShape: number[]): TensorValue {
    const ev = this.ev;
    const value = node.inputs[2] ? ev.value(node.inputs[2]) : undefined;
    const pads = attrInts(node, 'pads') ?? (node.inputs[1] ? ev.value(node.inputs[1]) && Array.from((ev.value(node.inputs[1]) as TensorValue).data) : undefined);
    if (attrString(node, 'mode', 'constant') !== 'constant' || (value && value.data[0] !== 0) || !pads || node.inputs[3]) {
      throw unrecognized(this.stage, 'a zero Pad (mode constant, value 0, constant pads on all axes)', node);
    }
    const v = this.trace(node.inputs[0]);
    const rank = v.dims.length;
    const out = makeValue(DataType.INT64, outShape, new Array(numel(outShape)).fill(0));
    const inStrides = v.dims.map((_, i) => numel(v.dims.slice(i + 1)));
    const outStrides = outShape.map((_, i) => numel(outShape.slice(i + 1)));
    for (let k = 0; k < v.data.length; k++) {
      let o = 0;
      let inside = true;
      for (let a = 0; a < rank; a++) {
        const c = Math.floor(k / inStrides[a]) % v.dims[a] + pads[a];
        if (c < 0 || c >= outShape[a]) inside = false;
        o += c * outStrides[a];
      }
      if (inside) out.data[o] = v.data[k];
    }
    return out;
  }
}

/** Where two id tensors first differ, for messages: null when equal. */
export function firstDifference(got: ArrayLike<number>, want: ArrayLike<number>): number | null {
  if (got.length !== want.length) return 0;
  for (let i = 0; i < got.length; i++) if (got[i] !== want[i]) return i;
  return null;
}
