// Where each timm parameter lives in the ONNX file. Import reads parameters through these
// bindings; fp32 export writes new values back through the same bindings, so both
// directions share one description of every transpose, row block and weight fusion
// (HuggingFace's separate q/k/v Linear layers become row blocks of `qkv.weight`).

import { SpdfqError } from '../errors';
import { WeightSource } from './static-eval';
import { numel, TensorValue } from './tensor-data';
import { transposeValue } from './tensor-ops';

/** A block of rows of one parameter, stored in one graph constant.
 *
 *  The parameter is viewed as a matrix of `rowSize` columns (Linear [out, in]: rows are
 *  output channels; a bias: rowSize 1). The constant, as the graph consumes it (after any
 *  Transpose/Reshape node in front of it), is viewed the same way — transposed first when
 *  `transposed` (a MatMul weight is stored [in, out]). Parameter rows
 *  [paramRow, paramRow + rows) equal constant rows [constRow, constRow + rows). */
export interface ParamPart {
  /** null: the constant was computed by ops we cannot invert (import works, export refuses). */
  source: WeightSource | null;
  /** Dims of the constant as the graph consumes it. */
  constDims: number[];
  transposed: boolean;
  rowSize: number;
  paramRow: number;
  constRow: number;
  rows: number;
  /** Parameter row r = constant row r × rowScale[r] (a LayerScale gain folded into the
   *  Linear before it); absent: 1. */
  rowScale?: Float32Array;
  /** Parameter column k = constant column columnOrder[k] (patches flattened in another
   *  order than the Conv weight's (channel, y, x)); absent: the identity. */
  columnOrder?: Int32Array;
}

/** Parameters with no part in the graph (a LayerNorm without affine, a Linear without
 *  bias) hold the value the graph implies; export refuses to change them. */
export type ImpliedValue = 'zeros' | 'ones';

export interface ParamBinding {
  shape: number[];
  parts: ParamPart[];
  /** Value of the rows no part covers. */
  implied: ImpliedValue;
}

/** The constant's rows in parameter orientation: [constRows, rowSize]. */
export function constantAsRows(value: Float32Array, constDims: number[], transposed: boolean, rowSize: number): Float32Array {
  if (!transposed) return value;
  const total = numel(constDims);
  const rows = total / rowSize;
  // stored as [rowSize, rows]: transpose to [rows, rowSize]
  return transposeValue({ dataType: 1, dims: [rowSize, rows], data: value }, [1, 0]).data as Float32Array;
}

export function rowsAsConstant(rowsData: Float32Array, transposed: boolean, rowSize: number): Float32Array {
  if (!transposed) return rowsData;
  const rows = rowsData.length / rowSize;
  return transposeValue({ dataType: 1, dims: [rows, rowSize], data: rowsData }, [1, 0]).data as Float32Array;
}

/** A part's constant rows in parameter form (column order, then row scale). */
export function constantToParam(part: ParamPart, block: Float32Array): Float32Array {
  if (!part.rowScale && !part.columnOrder) return block;
  const { rowSize, rowScale, columnOrder } = part;
  const out = new Float32Array(block.length);
  for (let r = 0; r < part.rows; r++) {
    const s = rowScale ? rowScale[r] : 1;
    for (let k = 0; k < rowSize; k++) out[r * rowSize + k] = block[r * rowSize + (columnOrder ? columnOrder[k] : k)] * s;
  }
  return out;
}

/** The inverse of constantToParam, for writing parameters back; refuses a zero scale. */
export function paramToConstant(part: ParamPart, block: Float32Array, param: string): Float32Array {
  if (!part.rowScale && !part.columnOrder) return block;
  const { rowSize, rowScale, columnOrder } = part;
  const out = new Float32Array(block.length);
  for (let r = 0; r < part.rows; r++) {
    const s = rowScale ? rowScale[r] : 1;
    if (s === 0) throw new SpdfqError('E_ONNX', `cannot write '${param}': row ${r} is multiplied by a LayerScale gain of 0 in the graph, so no constant value reproduces it`);
    for (let k = 0; k < rowSize; k++) out[r * rowSize + (columnOrder ? columnOrder[k] : k)] = block[r * rowSize + k] / s;
  }
  return out;
}

/** Collects parameters as the recognizer finds them. */
export class ParamCollector {
  readonly weights = new Map<string, Float32Array>();
  readonly bindings = new Map<string, ParamBinding>();

  /** Add a parameter from parts; `values` gives each part's constant value. */
  add(name: string, shape: number[], parts: { part: ParamPart; value: TensorValue }[], implied: ImpliedValue = 'zeros'): void {
    if (this.weights.has(name)) throw new SpdfqError('E_ONNX', `parameter '${name}' was matched twice`);
    const data = new Float32Array(numel(shape));
    if (implied === 'ones') data.fill(1);
    for (const { part, value } of parts) {
      const rows = constantAsRows(value.data as Float32Array, part.constDims, part.transposed, part.rowSize);
      const block = rows.subarray(part.constRow * part.rowSize, (part.constRow + part.rows) * part.rowSize);
      data.set(constantToParam(part, block), part.paramRow * part.rowSize);
    }
    this.weights.set(name, data);
    this.bindings.set(name, { shape, parts: parts.map((p) => p.part), implied });
  }

  /** The original names of the constants a parameter was read from. */
  sourceNames(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const [name, b] of this.bindings) {
      out.set(name, [...new Set(b.parts.flatMap((p) => (p.source ? [p.source.name] : [])))]);
    }
    return out;
  }
}
