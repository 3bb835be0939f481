// Layers that every graph writer emits the same way, whatever the model around them
// (build-vit.ts, build-swin.ts): LayerNorm as the LayerNormalization op or decomposed as
// torch.onnx writes it below opset 17, the MLP activations, ReduceMean with its axes as an
// attribute or (opset ≥ 18) an input, Linear layers (MatMul on the weight stored
// transposed, or the hooks' own nodes: the quantized export's MatMulNBits) and the
// classifier Gemm; the hooks both writers call (GraphHooks); and the option checks that
// pick these forms from the opset.

import { SpdfqError } from '../errors';
import { MlpActivation } from '../vit-config';
import { AttrValue, GraphBuilder } from './graph-builder';
import { DataType } from './tensor-data';
import { transposeValue } from './tensor-ops';

export interface LayerForms {
  opset: number;
  layerNorm: 'fused' | 'decomposed';
  gelu: 'formula' | 'op';
}

export interface LayerFormOptions {
  opset?: number;
  layerNorm?: 'fused' | 'decomposed';
  gelu?: 'formula' | 'op';
}

export type Weights = Map<string, Float32Array> | Record<string, Float32Array>;

export function weightMap(weights: Weights): Map<string, Float32Array> {
  return weights instanceof Map ? weights : new Map(Object.entries(weights));
}

/** Throws E_CONFIG prefixed with the writer's name. */
export function configError(who: string): (message: string) => never {
  return (message: string) => {
    throw new SpdfqError('E_CONFIG', `${who}: ${message}`);
  };
}

/** The opset and the LayerNorm / GELU forms (defaults: LayerNormalization from opset 17,
 *  the Gelu op from opset 20, as torch.onnx writes them), checked against each other. */
export function resolveLayerForms(who: string, activation: MlpActivation, options: LayerFormOptions, opsets: { min: number; max: number }): LayerForms {
  const invalid: (message: string) => never = configError(who);
  const opset = options.opset ?? 17;
  if (!Number.isInteger(opset) || opset < opsets.min || opset > opsets.max) invalid(`opset must be an integer in [${opsets.min}, ${opsets.max}], received ${opset}`);
  const layerNorm = options.layerNorm ?? (opset >= 17 ? 'fused' : 'decomposed');
  if (layerNorm !== 'fused' && layerNorm !== 'decomposed') invalid(`layerNorm must be 'fused' or 'decomposed', received ${String(layerNorm)}`);
  if (layerNorm === 'fused' && opset < 17) invalid(`layerNorm 'fused' (LayerNormalization) needs opset ≥ 17, received ${opset}`);
  const isGelu = activation === 'gelu' || activation === 'gelu-tanh';
  const gelu = options.gelu ?? (opset >= 20 && isGelu ? 'op' : 'formula');
  if (gelu !== 'op' && gelu !== 'formula') invalid(`gelu must be 'formula' or 'op', received ${String(gelu)}`);
  if (gelu === 'op' && opset < 20) invalid(`gelu 'op' (the Gelu operator) needs opset ≥ 20, received ${opset}`);
  if (gelu === 'op' && !isGelu) invalid(`gelu 'op' applies to GELU activations; the config's activation is '${activation}'`);
  return { opset, layerNorm, gelu };
}

/** The graph input's batch dimension: a symbolic 'batch' or a fixed size. */
export function resolveBatch(who: string, batch: 'dynamic' | number | undefined): string | number {
  const b = batch ?? 'dynamic';
  if (b !== 'dynamic' && !(Number.isInteger(b) && b > 0)) configError(who)(`batch must be 'dynamic' or a positive integer, received ${String(b)}`);
  return b === 'dynamic' ? 'batch' : b;
}

/** ReduceMean over `axes`; `keepdims` false drops them (the attribute is written only then,
 *  as torch does). */
export function reduceMean(g: GraphBuilder, x: string, axes: number[], opset: number, keepdims = true): string {
  const keep: Record<string, AttrValue> = keepdims ? {} : { keepdims: { int: 0 } };
  return opset >= 18 ? g.op('ReduceMean', [x, g.int64Tensor('axes', axes)], keep) : g.op('ReduceMean', [x], { axes: { ints: axes }, ...keep });
}

/** LayerNorm over the last axis with the given scale and shift tensors. */
export function layerNormNodes(g: GraphBuilder, x: string, gamma: string, beta: string, eps: number, f: LayerForms): string {
  if (f.layerNorm === 'fused') return g.op('LayerNormalization', [x, gamma, beta], { axis: { int: -1 }, epsilon: { float: eps } });
  const centered = g.op('Sub', [x, reduceMean(g, x, [-1], f.opset)]);
  const variance = reduceMean(g, g.op('Pow', [centered, g.floatScalar('two', 2)]), [-1], f.opset);
  const std = g.op('Sqrt', [g.op('Add', [variance, g.floatScalar('eps', eps)])]);
  return g.op('Add', [g.op('Mul', [g.op('Div', [centered, std]), gamma]), beta]);
}

/** The MLP activation: GELU by its formula (erf or tanh, as torch < 2 wrote it) or the
 *  opset-20 Gelu op, QuickGELU, ReLU, SiLU. */
export function activationNodes(g: GraphBuilder, x: string, kind: MlpActivation, f: LayerForms): string {
  if (kind === 'relu') return g.op('Relu', [x]);
  if (kind === 'silu') return g.op('Mul', [x, g.op('Sigmoid', [x])]);
  if (kind === 'quick-gelu') return g.op('Mul', [x, g.op('Sigmoid', [g.op('Mul', [x, g.floatScalar('quick_gelu_slope', 1.702)])])]);
  if (f.gelu === 'op') return g.op('Gelu', [x], { approximate: { string: kind === 'gelu-tanh' ? 'tanh' : 'none' } });
  if (kind === 'gelu') {
    const e = g.op('Erf', [g.op('Div', [x, g.floatScalar('sqrt2', Math.SQRT2)])]);
    return g.op('Mul', [g.op('Mul', [x, g.op('Add', [e, g.floatScalar('one', 1)])]), g.floatScalar('half', 0.5)]);
  }
  // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
  const cube = g.op('Pow', [x, g.floatScalar('three', 3)]);
  const inner = g.op('Add', [x, g.op('Mul', [cube, g.floatScalar('k', 0.044715)])]);
  const t = g.op('Tanh', [g.op('Mul', [inner, g.floatScalar('sqrt_2_over_pi', Math.sqrt(2 / Math.PI))])]);
  return g.op('Mul', [g.op('Mul', [x, g.floatScalar('half', 0.5)]), g.op('Add', [t, g.floatScalar('one', 1)])]);
}

/** Extension points for graphs derived from a float model (the quantized exports): the
 *  ViT's (VitGraphHooks, build-vit.ts) and the Swin's (SwinGraphHooks, build-swin.ts),
 *  over their site names. */
export interface GraphHooks<Site extends string> {
  /** Called with the tensor at each site (`block` undefined for patch_in and head_in);
   *  returns the tensor to use from there on. */
  activation?(g: GraphBuilder, site: Site, block: number | undefined, tensor: string): string;
  /** Called for each Linear/Conv weight with its timm name and the dims and data as the
   *  graph stores it (MatMul weights [in, out]: channelAxis 1; the patch Conv and the head
   *  Gemm [out, …]: channelAxis 0). Returns the tensor to use instead of a float
   *  initializer, or null to keep the float weight. */
  weight?(g: GraphBuilder, name: string, dims: number[], data: Float32Array, channelAxis: number): string | null;
  /** Called for each Linear (the ViT's qkv, proj, fc1, fc2, head; the Swin's qkv, proj,
   *  mlp.0, mlp.3, each merge's reduction, head) with its weight name, input tensor `x`
   *  [..., inSize] and the weight as PyTorch holds it, [out, in]. Returns
   *  x · Wᵀ (without the bias) computed by nodes of its own (com.microsoft MatMulNBits),
   *  or null for the standard MatMul/Gemm through `weight`. */
  matmul?(g: GraphBuilder, name: string, x: string, weightOutIn: Float32Array, outSize: number, inSize: number): string | null;
  /** Called for each block's queries with the attention scale 1/√head_dim: returns the
   *  queries already multiplied by it (a quantized export folds the scale into the
   *  queries' DequantizeLinear, which lets runtimes run Q·Kᵀ on integers), or null for
   *  the `q` site followed by a Mul. */
  scaledQuery?(g: GraphBuilder, block: number, q: string, scale: number): string | null;
}

export const TRANSPOSED_DOC = 'stored transposed, [in, out], as MatMul reads it (PyTorch Linear weight is [out, in])';

/** A PyTorch Linear weight [out, in] as MatMul reads it, [in, out] (what torch.onnx writes). */
export function transposedWeight(w: Float32Array, outSize: number, inSize: number): Float32Array {
  return transposeValue({ dataType: DataType.FLOAT, dims: [outSize, inSize], data: w }, [1, 0]).data as Float32Array;
}

/** x · Wᵀ (+ b) for a Linear with PyTorch weight `w` [out, in] named `name`.weight: the
 *  matmul hook's own nodes where it writes them, else MatMul on the weight stored
 *  transposed (through the weight hook). `bias` makes the bias tensor, when there is one. */
export function linearNodes(
  g: GraphBuilder, hooks: GraphHooks<string>, x: string, name: string, w: Float32Array, inSize: number, outSize: number, bias: (() => string) | null,
): string {
  const weightName = `${name}.weight`;
  let y = hooks.matmul?.(g, weightName, x, w, outSize, inSize) ?? null;
  if (y === null) {
    const wt = transposedWeight(w, outSize, inSize);
    y = g.op('MatMul', [x, hooks.weight?.(g, weightName, [inSize, outSize], wt, 1) ?? g.floatTensor(weightName, [inSize, outSize], wt, TRANSPOSED_DOC)]);
  }
  return bias ? g.op('Add', [y, bias()]) : y;
}

/** The classifier x · Wᵀ + b on pooled features [B, inSize]: the matmul hook's nodes and an
 *  Add, else a Gemm (transB = 1) on the weight as PyTorch holds it, [out, in]. */
export function classifierNodes(g: GraphBuilder, hooks: GraphHooks<string>, x: string, name: string, w: Float32Array, inSize: number, outSize: number, bias: () => string): string {
  const weightName = `${name}.weight`;
  const custom = hooks.matmul?.(g, weightName, x, w, outSize, inSize);
  if (custom) return g.op('Add', [custom, bias()]);
  const stored = hooks.weight?.(g, weightName, [outSize, inSize], w, 0) ?? g.floatTensor(weightName, [outSize, inSize], w);
  return g.op('Gemm', [x, stored, bias()], { transB: { int: 1 } });
}
