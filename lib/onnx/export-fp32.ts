// fp32 export: the original model file with new weight values and nothing else changed,
// so names, inputs, outputs, metadata and any extra ops survive. The file is rewritten at
// the protobuf wire level — only the initializers (and Constant nodes) that hold
// parameters are re-encoded; every other byte is copied — because a decode → encode
// round trip through onnx-proto (ONNX 1.10) would drop fields newer than IR 8.
//
// Initializers stored as external data are inlined, so the written file stands alone.

import * as fs from 'fs';
import * as path from 'path';
import * as protobuf from 'protobufjs/minimal';
import { SpdfqError } from '../errors';
import { shapeSize, vitParamSpecs } from '../vit-config';
import { constantAsRows, ParamBinding, ParamPart, paramToConstant, rowsAsConstant } from './bindings';
import { ImportedModel } from './import-onnx';
import { onnx } from './proto';
import { WeightSource } from './static-eval';
import { checkedDims, DataType, elementBytes, encodeFloats, numel, readExternalBytes, readTensor } from './tensor-data';
import { transposeValue } from './tensor-ops';

type Weights = Map<string, Float32Array> | Record<string, Float32Array>;

/** Field numbers of onnx.proto3 used by the rewrite. */
const MODEL_GRAPH = 7;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const TENSOR_RAW_DATA = 9;
const WIRE_LENGTH_DELIMITED = 2;

/** Writes `model` with `weights` (timm names, PyTorch shapes) to `outPath`. */
export async function exportFp32(model: ImportedModel, weights: Weights, outPath: string): Promise<void> {
  await writeModelFile(exportFp32Bytes(model, weights), outPath);
}

/** Writes model bytes, creating the folder; E_IO naming the path when that fails. */
export async function writeModelFile(bytes: Uint8Array, outPath: string): Promise<void> {
  try {
    await fs.promises.mkdir(path.dirname(path.resolve(outPath)), { recursive: true });
    await fs.promises.writeFile(outPath, bytes);
  } catch (err) {
    throw new SpdfqError('E_IO', `cannot write '${outPath}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

export function exportFp32Bytes(model: ImportedModel, weightsInput: Weights): Uint8Array {
  const weights = weightsInput instanceof Map ? weightsInput : new Map(Object.entries(weightsInput));
  for (const s of vitParamSpecs(model.config)) {
    const w = weights.get(s.name);
    if (!(w instanceof Float32Array) || w.length !== shapeSize(s.shape)) {
      throw new SpdfqError('E_TENSOR', `exportFp32: weight '${s.name}' [${s.shape.join(', ')}] must be a Float32Array of ${shapeSize(s.shape)} values, received ${w instanceof Float32Array ? `${w.length} values` : typeof w}`);
    }
  }
  const decoded = onnx.ModelProto.decode(model.bytes);
  const ctx = { baseDir: model.baseDir ?? undefined };
  const newValues = sourceValues(model.bindings, weights, decoded, ctx);
  return rewriteModel(model.bytes, newValues, ctx);
}

/** New float values per source (initializer or Constant output name), in the source's
 *  own dims and data type. */
interface SourceUpdate {
  source: WeightSource;
  dataType: number;
  data: Float32Array;
}

interface PartOf {
  param: string;
  part: ParamPart;
}

function sourceValues(
  bindings: Map<string, ParamBinding>,
  weights: Map<string, Float32Array>,
  decoded: onnx.ModelProto,
  ctx: { baseDir?: string },
): Map<string, SourceUpdate> {
  const graph = decoded.graph as onnx.IGraphProto;
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const constants = new Map((graph.node ?? []).filter((n) => n.opType === 'Constant').map((n) => [n.output?.[0] ?? '', n]));

  // Which parameter rows go to which constant; rows no constant holds must keep the value
  // the graph implies.
  const groups = new Map<string, { source: WeightSource; parts: PartOf[] }>();
  for (const [name, b] of bindings) {
    const w = weights.get(name) as Float32Array;
    const covered = new Uint8Array(w.length);
    for (const part of b.parts) {
      if (!part.source) throw new SpdfqError('E_ONNX', `cannot write '${name}': its values are computed in the graph by ops export cannot invert`);
      if (part.source.inFunction) throw new SpdfqError('E_ONNX', `cannot write '${name}': its constant '${part.source.name}' lives inside a local function`);
      const key = `${part.source.kind}:${part.source.name}`;
      const g = groups.get(key) ?? { source: part.source, parts: [] };
      g.parts.push({ param: name, part });
      groups.set(key, g);
      covered.fill(1, part.paramRow * part.rowSize, (part.paramRow + part.rows) * part.rowSize);
    }
    const implied = b.implied === 'ones' ? 1 : 0;
    for (let i = 0; i < w.length; i++) {
      if (!covered[i] && w[i] !== implied) {
        throw new SpdfqError(
          'E_ONNX',
          `cannot write '${name}': the graph has no constant for element ${i} (it implies ${implied}, e.g. a Linear without bias or a LayerNorm without affine), and the new value is ${w[i]}`,
        );
      }
    }
  }

  const out = new Map<string, SourceUpdate>();
  for (const [key, { source: src, parts }] of groups) {
    const proto = src.kind === 'initializer' ? initializers.get(src.name) : constants.get(src.name)?.attribute?.find((a) => a.name === 'value')?.t;
    if (!proto) throw new SpdfqError('E_ONNX', `cannot write '${src.name}': not found among the graph's ${src.kind === 'initializer' ? 'initializers' : 'Constant nodes'}`);
    const value = readTensor(proto, `${src.kind} '${src.name}'`, ctx);
    // the view the graph consumes: reshape(transpose(source, perm))
    let view = src.perm ? (transposeValue(value, src.perm).data as Float32Array) : (value.data as Float32Array);
    // parts seen the same way (MatMul weights transposed, biases not) share one conversion
    const orientations = new Map<string, PartOf[]>();
    for (const p of parts) {
      const o = `${p.part.transposed}/${p.part.rowSize}`;
      orientations.set(o, [...(orientations.get(o) ?? []), p]);
    }
    const write = (group: PartOf[], check: boolean) => {
      const { transposed, rowSize, constDims } = group[0].part;
      const rows = constantAsRows(view, constDims, transposed, rowSize);
      for (const { param, part } of group) {
        const w = weights.get(param) as Float32Array;
        const from = part.paramRow * rowSize;
        const block = paramToConstant(part, w.subarray(from, from + part.rows * rowSize), param);
        const at = part.constRow * rowSize;
        if (!check) rows.set(block, at);
        else if (block.some((v, i) => rows[at + i] !== v)) {
          // two parameters (tied weights) wrote different values into one constant
          throw new SpdfqError('E_ONNX', `cannot write '${param}': its constant '${src.name}' is shared with another parameter that has different values`);
        }
      }
      if (!check) view = rowsAsConstant(rows, transposed, rowSize);
    };
    for (const group of orientations.values()) write(group, false);
    if (overlapping(parts)) for (const group of orientations.values()) write(group, true);
    let data = view;
    if (src.perm) {
      const inverse = new Array<number>(src.perm.length);
      src.perm.forEach((p, i) => (inverse[p] = i));
      const viewDims = src.perm.map((p) => src.srcDims[p]);
      data = transposeValue({ dataType: DataType.FLOAT, dims: viewDims, data }, inverse).data as Float32Array;
    }
    out.set(key, { source: src, dataType: value.dataType, data });
  }
  return out;
}

/** Do two parts write the same rows of a constant (tied weights)? Disjoint row blocks,
 *  as in a fused qkv, need no equality check. */
function overlapping(parts: PartOf[]): boolean {
  const spans = parts.map(({ part }) => [part.constRow * part.rowSize, (part.constRow + part.rows) * part.rowSize]).sort((a, b) => a[0] - b[0]);
  return spans.some((s, i) => i > 0 && s[0] < spans[i - 1][1]);
}

interface Field {
  field: number;
  wireType: number;
  /** The whole field, tag included. */
  raw: Uint8Array;
  /** The payload of a length-delimited field. */
  payload?: Uint8Array;
}

function* fields(bytes: Uint8Array): Generator<Field> {
  const reader = protobuf.Reader.create(bytes);
  while (reader.pos < reader.len) {
    const start = reader.pos;
    const tag = reader.uint32();
    const field = tag >>> 3;
    const wireType = tag & 7;
    let payload: Uint8Array | undefined;
    if (wireType === WIRE_LENGTH_DELIMITED) {
      const len = reader.uint32();
      const at = reader.pos;
      reader.skip(len);
      payload = bytes.subarray(at, at + len);
    } else reader.skipType(wireType);
    yield { field, wireType, raw: bytes.subarray(start, reader.pos), payload };
  }
}

/** Tag and length of a length-delimited field; the payload follows as separate chunks. */
function header(field: number, length: number): Uint8Array {
  return protobuf.Writer.create().uint32((field << 3) | WIRE_LENGTH_DELIMITED).uint32(length).finish();
}

function lengthDelimited(field: number, payload: Uint8Array): Uint8Array[] {
  return [header(field, payload.length), payload];
}

function total(chunks: Uint8Array[]): number {
  return chunks.reduce((s, c) => s + c.length, 0);
}

function rewriteModel(bytes: Uint8Array, updates: Map<string, SourceUpdate>, ctx: { baseDir?: string }): Uint8Array {
  const chunks: Uint8Array[] = [];
  for (const f of fields(bytes)) {
    if (f.field === MODEL_GRAPH && f.payload) {
      const graph = rewriteGraph(f.payload, updates, ctx);
      chunks.push(header(MODEL_GRAPH, total(graph)), ...graph);
    } else chunks.push(f.raw);
  }
  // one copy of everything, at the end
  return new Uint8Array(Buffer.concat(chunks));
}

function rewriteGraph(bytes: Uint8Array, updates: Map<string, SourceUpdate>, ctx: { baseDir?: string }): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (const f of fields(bytes)) {
    if (f.field === GRAPH_INITIALIZER && f.payload) {
      const t = onnx.TensorProto.decode(f.payload);
      const update = updates.get(`initializer:${t.name}`);
      const external = t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL;
      if (update) chunks.push(...tensorField(t, encodeFloats(update.data, update.dataType)));
      else if (external) chunks.push(...tensorField(t, externalBytes(t, ctx)));
      else chunks.push(f.raw);
    } else if (f.field === GRAPH_NODE && f.payload) {
      const n = onnx.NodeProto.decode(f.payload);
      const update = n.opType === 'Constant' ? updates.get(`constant:${n.output[0]}`) : undefined;
      if (update) {
        for (const a of n.attribute) if (a.name === 'value' && a.t) a.t = withData(onnx.TensorProto.fromObject(a.t), encodeFloats(update.data, update.dataType));
        chunks.push(...lengthDelimited(GRAPH_NODE, onnx.NodeProto.encode(n).finish()));
      } else chunks.push(f.raw);
    } else chunks.push(f.raw);
  }
  return chunks;
}

/** The same tensor (name, dims, type, doc) holding `raw` as raw_data. */
function withData(t: onnx.ITensorProto, raw: Uint8Array): onnx.ITensorProto {
  return { name: t.name, dims: t.dims, dataType: t.dataType, docString: t.docString || undefined, rawData: raw };
}

function externalBytes(t: onnx.TensorProto, ctx: { baseDir?: string }): Uint8Array {
  const what = `initializer '${t.name}'`;
  const elem = elementBytes(t.dataType);
  if (elem === undefined) throw new SpdfqError('E_ONNX', `${what}: cannot inline external data of data type ${t.dataType}`);
  return readExternalBytes(t, what, numel(checkedDims(t.dims, what)) * elem, ctx);
}

/** An initializer field holding `raw` as raw_data, written as chunks so the (large) data
 *  is not copied into an encoder buffer first. */
function tensorField(t: onnx.ITensorProto, raw: Uint8Array): Uint8Array[] {
  const meta = onnx.TensorProto.encode({ name: t.name, dims: t.dims, dataType: t.dataType, docString: t.docString || undefined }).finish();
  const rawHeader = header(TENSOR_RAW_DATA, raw.length);
  return [header(GRAPH_INITIALIZER, meta.length + rawHeader.length + raw.length), meta, rawHeader, raw];
}
