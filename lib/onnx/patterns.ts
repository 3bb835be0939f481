// Matchers for the three small patterns every ViT repeats: a Linear layer (MatMul + Add,
// or Gemm), a LayerNorm (the LayerNormalization op, or the decomposed form exporters emit
// below opset 17), and the MLP activation. The activation is matched by what it computes,
// not by its op sequence: the elementwise subgraph between fc1 and fc2 is evaluated on
// sample points and compared with each activation the engine runs (GELU erf and tanh,
// QuickGELU, ReLU, SiLU), which covers every ordering of Div/Mul/Add/Erf, Sigmoid forms
// and the opset-20 Gelu op alike.

import { OnnxNode } from './graph';
import { ParamPart } from './bindings';
import { attrFloat, attrInt, isElementwise, scalarOp, StaticEval } from './static-eval';
import { TensorValue } from './tensor-data';
import { MlpActivation, MLP_ACTIVATIONS } from '../vit-config';
import { geluErf, MLP_ACTIVATION_FUNCTIONS } from './tensor-ops';
import { unrecognized } from './unrecognized';

export interface ParamPiece {
  part: ParamPart;
  value: TensorValue;
}

export interface LinearMatch {
  nodes: OnnxNode[];
  input: string;
  output: string;
  inSize: number;
  outSize: number;
  /** Rows = output channels, rowSize = inSize. */
  weight: ParamPiece;
  bias: ParamPiece | null;
}

/** The value of a constant whose elements are all equal (a broadcast scalar). */
export function scalarConstant(ev: StaticEval, name: string): number | undefined {
  const v = ev.value(name);
  if (!v || v.data.length === 0) return undefined;
  const x = v.data[0];
  for (let i = 1; i < v.data.length; i++) if (v.data[i] !== x) return undefined;
  return x;
}

/** A constant vector of `size` floats that broadcasts along the last axis only
 *  ([size], [1, size], [1, 1, size]). */
function lastAxisVector(ev: StaticEval, name: string, size: number): TensorValue | undefined {
  const v = ev.value(name);
  if (!v || v.data.length !== size) return undefined;
  if (v.dims.length === 0 || v.dims[v.dims.length - 1] !== size) return undefined;
  if (!(v.data instanceof Float32Array)) return undefined;
  return v;
}

export function vectorPiece(ev: StaticEval, name: string, value: TensorValue): ParamPiece {
  const size = value.data.length;
  return {
    value,
    part: { source: ev.info(name)?.source ?? null, constDims: value.dims, transposed: false, rowSize: 1, paramRow: 0, constRow: 0, rows: size },
  };
}

function weightPiece(ev: StaticEval, name: string, value: TensorValue, transposed: boolean): ParamPiece {
  const [a, b] = value.dims;
  const [rows, rowSize] = transposed ? [b, a] : [a, b];
  return { value, part: { source: ev.info(name)?.source ?? null, constDims: value.dims, transposed, rowSize, paramRow: 0, constRow: 0, rows } };
}

function constMatrix(ev: StaticEval, name: string): TensorValue | undefined {
  const v = ev.value(name);
  return v && v.dims.length === 2 && v.data instanceof Float32Array ? v : undefined;
}

/** A Linear layer producing `tensor`, or null when its producer is not one. */
export function matchLinear(ev: StaticEval, tensor: string): LinearMatch | null {
  const node = ev.graph.producer.get(tensor);
  if (!node) return null;
  if (node.opType === 'Gemm') {
    const w = constMatrix(ev, node.inputs[1]);
    if (!w || ev.isConstant(node.inputs[0])) return null;
    if (attrInt(node, 'transA', 0) !== 0 || attrFloat(node, 'alpha', 1) !== 1 || attrFloat(node, 'beta', 1) !== 1) return null;
    const transposed = attrInt(node, 'transB', 0) === 0; // B [in, out] unless transB
    const weight = weightPiece(ev, node.inputs[1], w, transposed);
    const outSize = weight.part.rows;
    let bias: ParamPiece | null = null;
    if (node.inputs[2]) {
      const b = lastAxisVector(ev, node.inputs[2], outSize);
      if (!b) return null;
      bias = vectorPiece(ev, node.inputs[2], b);
    }
    return { nodes: [node], input: node.inputs[0], output: tensor, inSize: weight.part.rowSize, outSize, weight, bias };
  }
  let matmul = node;
  let biasName: string | null = null;
  if (node.opType === 'Add') {
    const [a, b] = node.inputs;
    const pa = ev.graph.producer.get(a);
    const pb = ev.graph.producer.get(b);
    if (pa?.opType === 'MatMul' && ev.isConstant(b)) [matmul, biasName] = [pa, b];
    else if (pb?.opType === 'MatMul' && ev.isConstant(a)) [matmul, biasName] = [pb, a];
    else return null;
  }
  if (matmul.opType !== 'MatMul') return null;
  const w = constMatrix(ev, matmul.inputs[1]);
  if (!w || ev.isConstant(matmul.inputs[0])) return null;
  const weight = weightPiece(ev, matmul.inputs[1], w, true);
  const outSize = weight.part.rows;
  let bias: ParamPiece | null = null;
  if (biasName !== null) {
    const b = lastAxisVector(ev, biasName, outSize);
    if (!b) return null;
    bias = vectorPiece(ev, biasName, b);
  }
  return {
    nodes: biasName !== null ? [matmul, node] : [matmul],
    input: matmul.inputs[0],
    output: tensor,
    inSize: weight.part.rowSize,
    outSize,
    weight,
    bias,
  };
}

/** A residual branch scaled per channel before the residual Add: Mul(y, γ) with γ a
 *  constant [D] vector or scalar (timm/CaiT LayerScale). Returns y and γ as D values, or
 *  null when the branch ends otherwise. The import folds γ into the Linear producing y. */
export function matchLayerScale(ev: StaticEval, branch: string, D: number): { input: string; gamma: Float32Array } | null {
  let t = branch;
  while (['Identity', 'Dropout'].includes(ev.graph.producer.get(t)?.opType ?? '')) t = (ev.graph.producer.get(t) as OnnxNode).inputs[0];
  const n = ev.graph.producer.get(t);
  if (!n || n.opType !== 'Mul') return null;
  const [a, b] = n.inputs;
  if (ev.isConstant(a) === ev.isConstant(b)) return null;
  const [input, c] = ev.isConstant(b) ? [a, b] : [b, a];
  const vector = lastAxisVector(ev, c, D);
  const scalar = vector ? undefined : scalarConstant(ev, c);
  if (!vector && (scalar === undefined || (ev.value(c)?.data.length ?? 0) !== 1)) return null;
  return { input, gamma: vector ? Float32Array.from(vector.data as Float32Array) : new Float32Array(D).fill(scalar as number) };
}

export interface LayerNormMatch {
  input: string;
  output: string;
  eps: number;
  gamma: ParamPiece | null;
  beta: ParamPiece | null;
  nodes: OnnxNode[];
}

function only<T>(items: T[]): T | undefined {
  return items.length === 1 ? items[0] : undefined;
}

function isLastAxisMean(ev: StaticEval, node: OnnxNode, rank: number): boolean {
  if (node.opType !== 'ReduceMean' || attrInt(node, 'keepdims', 1) !== 1) return false;
  const axes = ev.reduceAxes(node);
  return !!axes && axes.length === 1 && axes[0] === rank - 1;
}

/** LayerNorm over the last axis applied to `x`, found from x's consumers; null if x is
 *  not normalized. `size` is the normalized width (the embedding dim). */
export function matchLayerNormFrom(ev: StaticEval, x: string, size: number): LayerNormMatch | null {
  const rank = ev.shape(x)?.length ?? 0;
  const consumers = ev.graph.consumersOf(x);
  const fused = consumers.find((n) => n.opType === 'LayerNormalization' && n.inputs[0] === x);
  if (fused) {
    const axis = attrInt(fused, 'axis', -1);
    if ((axis < 0 ? axis + rank : axis) !== rank - 1) {
      throw unrecognized('a LayerNorm', `normalization over the last axis (axis -1), found axis ${axis}`, fused);
    }
    const g = lastAxisVector(ev, fused.inputs[1], size);
    if (!g) throw unrecognized('a LayerNorm', `a constant scale of ${size} values`, fused);
    let beta: ParamPiece | null = null;
    if (fused.inputs[2]) {
      const b = lastAxisVector(ev, fused.inputs[2], size);
      if (!b) throw unrecognized('a LayerNorm', `a constant bias of ${size} values`, fused);
      beta = vectorPiece(ev, fused.inputs[2], b);
    }
    return { input: x, output: fused.outputs[0], eps: attrFloat(fused, 'epsilon', 1e-5), gamma: vectorPiece(ev, fused.inputs[1], g), beta, nodes: [fused] };
  }
  // Decomposed: (x - mean(x)) / sqrt(mean((x - mean)^2) + eps) * gamma + beta
  const mean = consumers.find((n) => isLastAxisMean(ev, n, rank));
  if (!mean) return null;
  const fail = (expected: string, at: OnnxNode) => unrecognized('a decomposed LayerNorm', expected, at);
  const sub = consumers.find((n) => n.opType === 'Sub' && n.inputs[0] === x && n.inputs[1] === mean.outputs[0]);
  if (!sub) throw fail('Sub(x, ReduceMean(x)) after the mean', mean);
  const centered = sub.outputs[0];
  const cUsers = ev.graph.consumersOf(centered);
  const square = cUsers.find(
    (n) => (n.opType === 'Pow' && n.inputs[0] === centered && scalarConstant(ev, n.inputs[1]) === 2) || (n.opType === 'Mul' && n.inputs[0] === centered && n.inputs[1] === centered),
  );
  if (!square) throw fail('Pow(x - mean, 2) computing the variance', sub);
  const varNode = only(ev.graph.consumersOf(square.outputs[0]));
  if (!varNode || !isLastAxisMean(ev, varNode, rank)) throw fail('ReduceMean over the last axis (the variance)', varNode ?? square);
  const addEps = only(ev.graph.consumersOf(varNode.outputs[0]));
  const epsName = addEps?.opType === 'Add' ? addEps.inputs.find((i) => i !== varNode.outputs[0]) : undefined;
  const eps = epsName !== undefined ? scalarConstant(ev, epsName) : undefined;
  if (!addEps || eps === undefined) throw fail('Add(variance, eps) with a constant eps', addEps ?? varNode);
  const sqrt = only(ev.graph.consumersOf(addEps.outputs[0]));
  if (!sqrt || sqrt.opType !== 'Sqrt') throw fail('Sqrt(variance + eps)', sqrt ?? addEps);
  const nodes = [mean, sub, square, varNode, addEps, sqrt];
  let normalized: string;
  const div = cUsers.find((n) => n.opType === 'Div' && n.inputs[0] === centered && n.inputs[1] === sqrt.outputs[0]);
  if (div) {
    normalized = div.outputs[0];
    nodes.push(div);
  } else {
    const recip = only(ev.graph.consumersOf(sqrt.outputs[0]));
    const mul = recip?.opType === 'Reciprocal' ? cUsers.find((n) => n.opType === 'Mul' && n.inputs.includes(recip.outputs[0])) : undefined;
    if (!recip || !mul) throw fail('Div(x - mean, sqrt(variance + eps))', sqrt);
    normalized = mul.outputs[0];
    nodes.push(recip, mul);
  }
  // optional affine: Mul(gamma) then Add(beta)
  let output = normalized;
  let gamma: ParamPiece | null = null;
  let beta: ParamPiece | null = null;
  const affine = (op: string): ParamPiece | null => {
    const n = only(ev.graph.consumersOf(output));
    if (!n || n.opType !== op) return null;
    const other = n.inputs[0] === output ? n.inputs[1] : n.inputs[0];
    const v = lastAxisVector(ev, other, size);
    if (!v) return null;
    nodes.push(n);
    output = n.outputs[0];
    return vectorPiece(ev, other, v);
  };
  gamma = affine('Mul');
  beta = affine('Add');
  return { input: x, output, eps, gamma, beta, nodes };
}

/** Points where the activations differ by far more than float32 rounding (the closest
 *  pair, erf-GELU and tanh-GELU, by up to 2.9e-4). */
const ACTIVATION_PROBES = [-4, -2.7, -1.9, -1.3, -0.8, -0.35, 0, 0.2, 0.55, 1.05, 1.6, 2.4, 3.3];
/** Allowed deviation from the exact function: float32 constants (√2 as 1.4142135, 1.702)
 *  give ~1e-7. */
const ACTIVATION_TOLERANCE = 2e-5;
/** An activation is a handful of ops; a larger elementwise region is something else. */
const MAX_ACTIVATION_NODES = 40;

export interface ActivationMatch {
  input: string;
  kind: MlpActivation;
  nodes: OnnxNode[];
}

/** The elementwise subgraph that ends in `y` and reads one non-constant tensor (fc1's
 *  output), classified by evaluating it. */
export function matchActivation(ev: StaticEval, y: string): ActivationMatch {
  const region = new Set<OnnxNode>();
  const leaves = new Set<string>();
  const stack = [y];
  const seen = new Set<string>();
  while (stack.length > 0) {
    const t = stack.pop() as string;
    if (seen.has(t)) continue;
    seen.add(t);
    const n = ev.graph.producer.get(t);
    const scalarInputs = n ? n.inputs.filter((i) => ev.isConstant(i)).every((i) => scalarConstant(ev, i) !== undefined) : false;
    if (!n || ev.isConstant(t) || !isElementwise(n.opType) || !scalarInputs || (t !== y && isLinearOutput(ev, t))) {
      if (!ev.isConstant(t)) leaves.add(t);
      continue;
    }
    region.add(n);
    if (region.size > MAX_ACTIVATION_NODES) break;
    for (const i of n.inputs) if (i && !ev.isConstant(i)) stack.push(i);
  }
  const producer = ev.graph.producer.get(y) ?? null;
  if (region.size === 0 || region.size > MAX_ACTIVATION_NODES || leaves.size !== 1) {
    throw unrecognized('the MLP activation', `an elementwise activation between fc1 and fc2 (${MLP_ACTIVATIONS.join(', ')})`, producer);
  }
  const input = [...leaves][0];
  const order = ev.graph.nodes.filter((n) => region.has(n));
  const evaluate = (x: number): number => {
    const values = new Map<string, number>([[input, x]]);
    for (const n of order) {
      const args = n.inputs.map((i) => values.get(i) ?? scalarConstant(ev, i) ?? NaN);
      values.set(n.outputs[0], scalarOp(n, args) ?? NaN);
    }
    return values.get(y) ?? NaN;
  };
  const outputs = ACTIVATION_PROBES.map(evaluate);
  const maxError = (f: (x: number) => number) => Math.max(...ACTIVATION_PROBES.map((x, i) => Math.abs(outputs[i] - f(x))));
  const kind = MLP_ACTIVATIONS.find((k) => maxError(MLP_ACTIVATION_FUNCTIONS[k]) <= ACTIVATION_TOLERANCE);
  if (kind) return { input, kind, nodes: order };
  throw unrecognized(
    'the MLP activation',
    `one of ${MLP_ACTIVATIONS.join(', ')}; the subgraph computes f(-1.3) = ${outputs[3].toPrecision(6)}, f(1.05) = ${outputs[9].toPrecision(6)} (GELU: ${geluErf(-1.3).toPrecision(6)}, ${geluErf(1.05).toPrecision(6)})`,
    producer,
  );
}

/** fc1's output (MatMul + bias Add) ends the activation region even though the bias Add is
 *  elementwise: its other operand is a vector, not a scalar, so this is only a guard. */
function isLinearOutput(ev: StaticEval, t: string): boolean {
  const n = ev.graph.producer.get(t);
  return n?.opType === 'MatMul' || n?.opType === 'Gemm';
}
