// The decoded graph as the recognizer needs it: nodes in topological order with local
// functions inlined, producer/consumer indexes, initializers decoded on demand, and the
// declared input/output shapes. Structural corruption (dangling names, cycles, two
// producers of one tensor) is reported here, before any pattern matching.

import { SpdfqError } from '../errors';
import { inlineFunctions, OnnxNode } from './functions';
import { defaultOpset, isDefaultDomain, onnx, toNumber } from './proto';
import { readTensor, TensorReadContext, TensorValue } from './tensor-data';

export type { OnnxNode } from './functions';

/** A graph input or output: element type and dims (a number, a symbolic name, or null). */
export interface ValueInfo {
  name: string;
  elemType: number;
  dims: (number | string | null)[] | null;
}

export class OnnxGraph {
  readonly model: onnx.ModelProto;
  readonly opset: number;
  readonly nodes: OnnxNode[];
  readonly producer = new Map<string, OnnxNode>();
  readonly consumers = new Map<string, OnnxNode[]>();
  readonly initializers = new Map<string, onnx.ITensorProto>();
  readonly inputs: ValueInfo[];
  readonly outputs: ValueInfo[];
  private readonly decoded = new Map<string, TensorValue>();
  private readonly readContext: TensorReadContext;

  constructor(model: onnx.ModelProto, readContext: TensorReadContext) {
    this.model = model;
    this.readContext = readContext;
    this.opset = defaultOpset(model) ?? 0;
    const graph = model.graph as onnx.IGraphProto;
    for (const t of graph.initializer ?? []) {
      if (!t.name) throw new SpdfqError('E_ONNX', 'an initializer has no name; the file may be corrupt');
      this.initializers.set(t.name, t);
    }
    if ((graph.sparseInitializer ?? []).length > 0) {
      throw new SpdfqError('E_ONNX', `sparse initializers (${graph.sparseInitializer?.length}) are not supported; export with dense weights`);
    }
    this.inputs = (graph.input ?? []).filter((v) => !this.initializers.has(v.name ?? '')).map(valueInfo);
    this.outputs = (graph.output ?? []).map(valueInfo);
    const nodes = inlineFunctions(graph.node ?? [], model.functions ?? []);
    this.nodes = this.topologicalOrder(nodes);
  }

  /** Kahn's algorithm; also checks that every input names something that exists. */
  private topologicalOrder(nodes: OnnxNode[]): OnnxNode[] {
    const available = new Set<string>(['', ...this.initializers.keys(), ...this.inputs.map((i) => i.name)]);
    for (const n of nodes) {
      for (const o of n.outputs) {
        if (o === '') continue;
        if (this.producer.has(o) || available.has(o)) {
          throw new SpdfqError('E_ONNX', `tensor '${o}' is produced twice (by ${describeNode(n)}); the file may be corrupt`);
        }
        this.producer.set(o, n);
      }
    }
    const waiting = new Map<OnnxNode, number>();
    const ready: OnnxNode[] = [];
    for (const n of nodes) {
      let missing = 0;
      for (const i of new Set(n.inputs)) {
        if (available.has(i)) continue;
        if (!this.producer.has(i)) {
          throw new SpdfqError('E_ONNX', `${describeNode(n)} reads '${i}', which no node, input or initializer defines; the file may be corrupt`);
        }
        missing++;
        const list = this.consumers.get(i) ?? [];
        this.consumers.set(i, list);
      }
      waiting.set(n, missing);
      if (missing === 0) ready.push(n);
      for (const i of n.inputs) {
        if (i === '') continue;
        const list = this.consumers.get(i) ?? [];
        if (!list.includes(n)) list.push(n);
        this.consumers.set(i, list);
      }
    }
    const order: OnnxNode[] = [];
    while (ready.length > 0) {
      const n = ready.shift() as OnnxNode;
      order.push(n);
      for (const o of n.outputs) {
        for (const c of this.consumers.get(o) ?? []) {
          // a node may read the same tensor twice (Mul(x, x)): count it once
          const left = (waiting.get(c) ?? 0) - 1;
          waiting.set(c, left);
          if (left === 0) ready.push(c);
        }
      }
    }
    if (order.length !== nodes.length) {
      const stuck = nodes.find((n) => !order.includes(n)) as OnnxNode;
      throw new SpdfqError('E_ONNX', `the graph has a cycle through ${describeNode(stuck)}; the file may be corrupt`);
    }
    return order;
  }

  /** Decoded initializer data (cached: the recognizer may look at a weight twice). */
  initializer(name: string): TensorValue | undefined {
    const cached = this.decoded.get(name);
    if (cached) return cached;
    const t = this.initializers.get(name);
    if (!t) return undefined;
    const v = readTensor(t, `initializer '${name}'`, this.readContext);
    this.decoded.set(name, v);
    return v;
  }

  consumersOf(tensor: string): OnnxNode[] {
    return this.consumers.get(tensor) ?? [];
  }

  /** Nodes outside the default domain (e.g. com.microsoft fused ops of ORT-optimized files). */
  foreignNodes(): OnnxNode[] {
    return this.nodes.filter((n) => !isDefaultDomain(n.domain));
  }
}

function valueInfo(v: onnx.IValueInfoProto): ValueInfo {
  const tensor = v.type?.tensorType;
  const dims = tensor?.shape
    ? (tensor.shape.dim ?? []).map((dim) => {
        // `value` names the member of the dim_value / dim_param oneof that is set
        const d = dim as onnx.TensorShapeProto.Dimension;
        if (d.value === 'dimValue') return toNumber(d.dimValue);
        if (d.value === 'dimParam') return d.dimParam ?? null;
        return null;
      })
    : null;
  return { name: v.name ?? '', elemType: tensor?.elemType ?? 0, dims };
}

/** How error messages name a node: its name when it has one, else what it produces. */
export function describeNode(n: OnnxNode): string {
  const where = n.inlinedFrom ? ` (inlined from function call ${n.inlinedFrom})` : '';
  if (n.name) return `node '${n.name}' (${n.opType})${where}`;
  return `${n.opType} node producing '${n.outputs[0] ?? '?'}'${where}`;
}

export function describeNodes(nodes: readonly OnnxNode[], max = 4): string {
  const shown = nodes.slice(0, max).map(describeNode).join(', ');
  return nodes.length > max ? `${shown} and ${nodes.length - max} more` : shown;
}
