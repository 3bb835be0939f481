// A small helper for writing ONNX graphs: nodes with readable names, typed attributes,
// float32 and int64 initializers, and the ModelProto around them. Used by build-vit.ts
// (and later by the quantized export) so that graph code reads like the model.

import { SpdfqError } from '../errors';
import { irVersionForOpset, onnx } from './proto';
import { DataType, encodeFloats, encodeInt64 } from './tensor-data';

/** Attribute values: `int`/`float` wrap numbers so the proto type is explicit. */
export type AttrValue =
  | { int: number }
  | { float: number }
  | { ints: number[] }
  | { floats: number[] }
  | { string: string };

const AttributeType = onnx.AttributeProto.AttributeType;

function attribute(name: string, v: AttrValue): onnx.IAttributeProto {
  if ('int' in v) return { name, type: AttributeType.INT, i: v.int };
  if ('float' in v) return { name, type: AttributeType.FLOAT, f: v.float };
  if ('ints' in v) return { name, type: AttributeType.INTS, ints: v.ints };
  if ('floats' in v) return { name, type: AttributeType.FLOATS, floats: v.floats };
  return { name, type: AttributeType.STRING, s: Buffer.from(v.string, 'utf8') };
}

export type Dim = number | string;

export function valueInfo(name: string, elemType: number, dims: Dim[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export class GraphBuilder {
  readonly nodes: onnx.INodeProto[] = [];
  readonly initializers: onnx.ITensorProto[] = [];
  private readonly names = new Set<string>();
  private scope = '';
  private counter = 0;
  /** Operator domains beyond the default one that nodes use (e.g. com.microsoft), with
   *  their opset versions: written into the model's opset imports. */
  private readonly domains = new Map<string, number>();

  /** Prefix for the names of the nodes added next (e.g. '/blocks.0/attn'). */
  setScope(scope: string): void {
    this.scope = scope;
  }

  private unique(base: string): string {
    let name = base;
    while (this.names.has(name)) name = `${base}_${++this.counter}`;
    this.names.add(name);
    return name;
  }

  /** Adds a node; returns its output names (one per `outputs`, default 1). `domain`
   *  places it in another operator set (version 1 unless given). */
  node(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs = 1, domain?: { name: string; version?: number }): string[] {
    const name = this.unique(`${this.scope}/${opType}`);
    const outs = Array.from({ length: outputs }, (_, i) => `${name}_output_${i}`);
    if (domain) this.domains.set(domain.name, Math.max(domain.version ?? 1, this.domains.get(domain.name) ?? 0));
    this.nodes.push({
      name,
      opType,
      domain: domain?.name,
      input: inputs,
      output: outs,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outs;
  }

  /** Single-output node. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, domain?: { name: string; version?: number }): string {
    return this.node(opType, inputs, attrs, 1, domain)[0];
  }

  /** Gives a node output its final name (a graph output such as 'logits'). */
  renameOutput(tensor: string, name: string): void {
    for (const n of this.nodes) {
      n.output = (n.output ?? []).map((o) => (o === tensor ? name : o));
      n.input = (n.input ?? []).map((i) => (i === tensor ? name : i));
    }
  }

  floatTensor(name: string, dims: number[], values: Float32Array, docString?: string): string {
    if (this.names.has(name)) throw new SpdfqError('E_ONNX', `initializer name '${name}' used twice`);
    this.names.add(name);
    this.initializers.push({ name, dims, dataType: DataType.FLOAT, rawData: encodeFloats(values, DataType.FLOAT), docString });
    return name;
  }

  /** An initializer of any data type from its raw little-endian (or packed 4-bit) bytes. */
  rawTensor(name: string, dataType: number, dims: number[], raw: Uint8Array): string {
    if (this.names.has(name)) throw new SpdfqError('E_ONNX', `initializer name '${name}' used twice`);
    this.names.add(name);
    this.initializers.push({ name, dims, dataType, rawData: raw });
    return name;
  }

  int64Tensor(base: string, values: number[], dims: number[] = [values.length]): string {
    const name = this.unique(`${this.scope}/${base}`);
    this.initializers.push({ name, dims, dataType: DataType.INT64, rawData: encodeInt64(values) });
    return name;
  }

  floatScalar(base: string, value: number): string {
    const name = this.unique(`${this.scope}/${base}`);
    this.initializers.push({ name, dims: [], dataType: DataType.FLOAT, rawData: encodeFloats(new Float32Array([value]), DataType.FLOAT) });
    return name;
  }

  model(opts: { opset: number; inputs: onnx.IValueInfoProto[]; outputs: onnx.IValueInfoProto[]; graphName: string; producer: string; docString?: string }): Uint8Array {
    const model: onnx.IModelProto = {
      irVersion: irVersionForOpset(opts.opset),
      opsetImport: [{ domain: '', version: opts.opset }, ...[...this.domains].map(([domain, version]) => ({ domain, version }))],
      producerName: opts.producer,
      producerVersion: '',
      docString: opts.docString,
      graph: {
        name: opts.graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: opts.inputs,
        output: opts.outputs,
      },
    };
    return onnx.ModelProto.encode(model).finish();
  }
}
