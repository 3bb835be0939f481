// Backward tracing of a tensor's layout: from a tensor, follow its producers through
// layout ops (and scalar scalings) until an anchor whose layout is known — the block input,
// a Linear whose input traces further back, or an attention product. The result says what
// every axis of the tensor means (see layout.ts) and which scalar multiplies it.

import { OnnxNode } from './graph';
import {
  Layout,
  LayoutError,
  makeLayout,
  reshapeLayout,
  selectLayout,
  sliceLayout,
  transposeLayout,
} from './layout';
import { LinearMatch, matchLinear, scalarConstant } from './patterns';
import { attrInt, attrInts, StaticEval } from './static-eval';
import { isFloatType } from './tensor-data';
import { unrecognized } from './unrecognized';

export interface Traced {
  layout: Layout;
  /** Product of the scalar Mul/Div met on the way (the attention scale lives here). */
  scale: number;
}

export interface TraceOptions {
  /** Called for a Linear met on the way, with its input's layout; returns its output's. */
  onLinear?: (m: LinearMatch, input: Layout) => Layout;
  /** Let ReduceMean over a token axis through (mean pooling in the head). */
  allowMean?: boolean;
  /** What the trace is looking for, for error messages (e.g. "the block input"). */
  target: string;
}

const PASS_THROUGH = new Set(['Identity', 'Dropout']);
const RESHAPES = new Set(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze']);

export class LayoutTracer {
  private readonly memo = new Map<string, Traced>();

  constructor(
    private readonly ev: StaticEval,
    private readonly stage: string,
    private readonly anchors: Map<string, Layout>,
    private readonly options: TraceOptions,
  ) {}

  trace(tensor: string): Traced {
    const hit = this.memo.get(tensor);
    if (hit) return hit;
    const anchor = this.anchors.get(tensor);
    const result = anchor ? { layout: anchor, scale: 1 } : this.traceProducer(tensor);
    this.memo.set(tensor, result);
    return result;
  }

  private fail(node: OnnxNode | null, tensor: string): never {
    throw unrecognized(
      this.stage,
      `layout ops (Reshape, Transpose, Split, Slice, Gather, Squeeze) or scalar scaling leading back to ${this.options.target}`,
      node ?? `tensor '${tensor}' (a graph input or constant)`,
    );
  }

  private traceProducer(tensor: string): Traced {
    const node = this.ev.graph.producer.get(tensor);
    if (!node || this.ev.isConstant(tensor)) this.fail(node ?? null, tensor);
    try {
      return this.step(node, tensor);
    } catch (err) {
      if (err instanceof LayoutError) {
        throw unrecognized(this.stage, `a layout op that keeps the tensor's meaning traceable (${err.message})`, node);
      }
      throw err;
    }
  }

  /** The node's `axis` attribute as an index into the layout's axes. */
  private axis(node: OnnxNode, l: Layout): number {
    const rank = l.axes.length;
    const a = attrInt(node, 'axis', 0);
    const axis = a < 0 ? a + rank : a;
    if (!(axis >= 0 && axis < rank)) throw new LayoutError(`axis ${a} of a rank-${rank} tensor`);
    return axis;
  }

  private step(node: OnnxNode, tensor: string): Traced {
    const ev = this.ev;
    const op = node.opType;
    const outShape = ev.shape(tensor);
    if (PASS_THROUGH.has(op) || (op === 'Cast' && isFloatType(attrInt(node, 'to', 0)))) return this.trace(node.inputs[0]);
    if (RESHAPES.has(op)) {
      if (!outShape) this.fail(node, tensor);
      const r = this.trace(node.inputs[0]);
      return { layout: reshapeLayout(r.layout, outShape), scale: r.scale };
    }
    if (op === 'Transpose') {
      const r = this.trace(node.inputs[0]);
      const rank = r.layout.axes.length;
      const perm = attrInts(node, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
      return { layout: transposeLayout(r.layout, perm), scale: r.scale };
    }
    if (op === 'Gather') {
      const index = ev.value(node.inputs[1]);
      if (!index || index.data.length !== 1) this.fail(node, tensor);
      const r = this.trace(node.inputs[0]);
      const axis = this.axis(node, r.layout);
      const size = r.layout.axes[axis].reduce((s, f) => s * f.size, 1);
      const i = index.data[0] < 0 ? index.data[0] + size : index.data[0];
      return { layout: selectLayout(r.layout, axis, i, index.dims.length > 0), scale: r.scale };
    }
    if (op === 'Slice') {
      const picks = ev.slicePicks(node);
      if (!picks) this.fail(node, tensor);
      let r = this.trace(node.inputs[0]);
      picks.forEach((p, axis) => {
        const contiguous = p.every((v, k) => v === p[0] + k);
        if (!contiguous) throw new LayoutError(`a strided slice on axis ${axis}`);
        if (p.length > 0) r = { layout: sliceLayout(r.layout, axis, p[0], p.length), scale: r.scale };
      });
      return r;
    }
    if (op === 'Split') {
      const r = this.trace(node.inputs[0]);
      const axis = this.axis(node, r.layout);
      const j = node.outputs.indexOf(tensor);
      let offset = 0;
      for (let k = 0; k < j; k++) offset += (ev.shape(node.outputs[k]) as number[])[axis];
      return { layout: sliceLayout(r.layout, axis, offset, (outShape as number[])[axis]), scale: r.scale };
    }
    if (op === 'Mul' || op === 'Div') {
      const [a, b] = node.inputs;
      const cb = scalarConstant(ev, b);
      const ca = op === 'Mul' ? scalarConstant(ev, a) : undefined;
      if (cb !== undefined && !ev.isConstant(a) && sameShape(ev.shape(a), outShape)) {
        const r = this.trace(a);
        return { layout: r.layout, scale: op === 'Mul' ? r.scale * cb : r.scale / cb };
      }
      if (ca !== undefined && !ev.isConstant(b) && sameShape(ev.shape(b), outShape)) {
        const r = this.trace(b);
        return { layout: r.layout, scale: r.scale * ca };
      }
      this.fail(node, tensor);
    }
    if (op === 'ReduceMean' && this.options.allowMean) {
      const axes = ev.reduceAxes(node);
      const r = this.trace(node.inputs[0]);
      if (!axes || axes.length !== 1 || !(axes[0] >= 0 && axes[0] < r.layout.axes.length) || r.layout.meanOver) this.fail(node, tensor);
      const axis = r.layout.axes[axes[0]];
      if (axis.length !== 1 || axis[0].stride !== 1) throw new LayoutError('a mean over an axis that is not a single token index');
      const name = axis[0].name;
      const offsets = { ...r.layout.offsets };
      const start = offsets[name] ?? 0;
      delete offsets[name];
      const keep = attrInt(node, 'keepdims', 1) === 1;
      const axes2 = r.layout.axes.filter((_, i) => keep || i !== axes[0]).map((a, i) => (keep && i === axes[0] ? [] : a));
      return { layout: makeLayout(axes2, offsets, { name, start, size: axis[0].size }), scale: r.scale };
    }
    if (this.options.onLinear) {
      const m = matchLinear(ev, tensor);
      if (m) {
        const r = this.trace(m.input);
        if (r.scale !== 1) throw unrecognized(this.stage, 'no scaling in front of a Linear layer', node);
        return { layout: this.options.onLinear(m, r.layout), scale: 1 };
      }
    }
    this.fail(node, tensor);
  }
}

function sameShape(a: number[] | null, b: number[] | null): boolean {
  return !!a && !!b && a.length === b.length && a.every((d, i) => d === b[i]);
}
