// Writes a clean timm-style ViT ONNX graph from a VitConfig and timm-named weights: the
// model the benchmark runs in ONNX Runtime, the opset-18/20 variants the import tests read
// back, and the way to ship models trained by the engine. The op sequences follow what
// torch.onnx emits for timm (LayerNormalization from opset 17, Gelu from 20), selectable per opset:
//
//   layerNorm 'fused'      LayerNormalization (opset ≥ 17)      | 'decomposed' ReduceMean…Sqrt…Div
//   gelu      'op'         Gelu(approximate) (opset ≥ 20)       | 'formula' (Erf or Tanh, as torch < 2 wrote it)
//   qkvSplit  'split'      Split + Squeeze (timm unbind)        | 'slice' Slice + Squeeze | 'gather' Gather
//
// Linear weights are stored transposed, [in, out], as MatMul reads them (what torch.onnx
// writes too), under the timm name; the head is a Gemm with transB = 1 on [out, in]. The
// patch embedding is a Conv, or — with a LayerNorm on each flattened patch
// (patchInputNorm) — im2col by Reshape/Transpose, the LayerNorm and a MatMul.

import { completeVitConfig, prefixTokens, shapeSize, tokenCount, VitConfig, VitConfigInput, vitParamSpecs } from '../vit-config';
import { GraphBuilder, valueInfo } from './graph-builder';
import { activationNodes, classifierNodes, configError, GraphHooks, layerNormNodes, LayerForms, linearNodes, reduceMean, resolveBatch, resolveLayerForms, weightMap, Weights } from './graph-layers';
import { DataType } from './tensor-data';

export type { GraphHooks } from './graph-layers';

export interface BuildVitOptions {
  /** Default opset 17. Supported 13..23. */
  opset?: number;
  /** Default 'fused' from opset 17, else 'decomposed'. */
  layerNorm?: 'fused' | 'decomposed';
  /** For GELU activations: 'formula' (Erf or Tanh, what torch exports below opset 20) or
   *  'op', the opset-20 Gelu op with the config's approximation. Default 'op' from opset 20. */
  gelu?: 'formula' | 'op';
  /** How q, k, v are taken from the fused projection. Default 'split'. */
  qkvSplit?: 'split' | 'slice' | 'gather';
  /** 'dynamic' (default) or a fixed batch size. */
  batch?: 'dynamic' | number;
  inputName?: string;
  outputName?: string;
  producer?: string;
  hooks?: VitGraphHooks;
}

/** The engine's activation quantization sites (native/quant/act_sites.h): the input of
 *  every Linear, the patch-embedding input, and both operands of both attention matmuls
 *  (q and k before the scale and the transpose; v; the softmax probabilities). */
export type VitSite = 'patch_in' | 'qkv_in' | 'q' | 'k' | 'v' | 'probs' | 'proj_in' | 'fc1_in' | 'fc2_in' | 'head_in';

export type VitGraphHooks = GraphHooks<VitSite>;

export const MIN_BUILD_OPSET = 13;
export const MAX_BUILD_OPSET = 23;

const invalid: (message: string) => never = configError('buildVitOnnx');

export function buildVitOnnx(configInput: VitConfigInput, weightsInput: Weights, options: BuildVitOptions = {}): Uint8Array {
  const c = completeVitConfig(configInput);
  const { opset, layerNorm, gelu } = resolveLayerForms('buildVitOnnx', c.activation, options, { min: MIN_BUILD_OPSET, max: MAX_BUILD_OPSET });
  const qkvSplit = options.qkvSplit ?? 'split';
  if (!['split', 'slice', 'gather'].includes(qkvSplit)) invalid(`qkvSplit must be 'split', 'slice' or 'gather', received ${String(qkvSplit)}`);
  const batch = resolveBatch('buildVitOnnx', options.batch);
  const weights = weightMap(weightsInput);
  for (const s of vitParamSpecs(c)) {
    const w = weights.get(s.name);
    if (!(w instanceof Float32Array) || w.length !== shapeSize(s.shape)) {
      invalid(`weight '${s.name}' [${s.shape.join(', ')}]: expected a Float32Array of ${shapeSize(s.shape)} values, received ${w instanceof Float32Array ? w.length : typeof w}`);
    }
  }
  const g = new GraphBuilder();
  const vit = new VitGraph(g, c, weights, { opset, layerNorm, gelu, qkvSplit }, options.hooks ?? {});
  const inputName = options.inputName ?? 'input';
  const outputName = options.outputName ?? 'logits';
  g.renameOutput(vit.forward(inputName), outputName);
  return g.model({
    opset,
    graphName: 'vit',
    producer: options.producer ?? 'spdfq-native',
    docString: `timm-style ViT: ${JSON.stringify(c)}`,
    inputs: [valueInfo(inputName, DataType.FLOAT, [batch, c.channels, c.imageHeight, c.imageWidth])],
    outputs: [valueInfo(outputName, DataType.FLOAT, [batch, c.numClasses])],
  });
}

interface Forms extends LayerForms {
  qkvSplit: 'split' | 'slice' | 'gather';
}

class VitGraph {
  constructor(
    private readonly g: GraphBuilder,
    private readonly c: VitConfig,
    private readonly w: Map<string, Float32Array>,
    private readonly f: Forms,
    private readonly hooks: VitGraphHooks,
  ) {}

  private param(name: string, dims: number[]): string {
    return this.g.floatTensor(name, dims, this.w.get(name) as Float32Array);
  }

  private site(site: VitSite, block: number | undefined, tensor: string): string {
    return this.hooks.activation ? this.hooks.activation(this.g, site, block, tensor) : tensor;
  }

  /** The patch Conv's weight as stored (dims, data), through the weight hook. */
  private weight(name: string, dims: number[], data: Float32Array, channelAxis: number): string {
    return this.hooks.weight?.(this.g, name, dims, data, channelAxis) ?? this.g.floatTensor(name, dims, data);
  }

  forward(input: string): string {
    const { g, c } = this;
    const D = c.embedDim;
    g.setScope('/patch_embed');
    let x = c.patchInputNorm ? this.patchesByMatMul(input) : this.patchesByConv(input);
    if (c.patchOutputNorm) x = this.layerNorm(x, 'patch_embed.norm');
    const prefix = prefixTokens(c);
    if (prefix > 0) {
      g.setScope('/tokens');
      const batch = g.op('Slice', [g.op('Shape', [input]), g.int64Tensor('start', [0]), g.int64Tensor('end', [1])]);
      const shape = g.op('Concat', [batch, g.int64Tensor('one_d', [1, D])], { axis: { int: 0 } });
      const tokens = [g.op('Expand', [this.param('cls_token', [1, 1, D]), shape])];
      if (c.distToken) tokens.push(g.op('Expand', [this.param('dist_token', [1, 1, D]), shape]));
      x = g.op('Concat', [...tokens, x], { axis: { int: 1 } });
    }
    x = g.op('Add', [x, this.param('pos_embed', [1, tokenCount(c), D])]);
    if (c.embedNorm) {
      g.setScope('/norm_pre');
      x = this.layerNorm(x, 'norm_pre');
    }
    for (let i = 0; i < c.depth; i++) x = this.block(x, i);
    return this.head(x);
  }

  /** Conv(kernel = stride = P) → [B, patches, D] (timm's flatten(2).transpose(1, 2)). */
  private patchesByConv(input: string): string {
    const { g, c } = this;
    const D = c.embedDim;
    const convWeight = this.weight('patch_embed.proj.weight', [D, c.channels, c.patchSize, c.patchSize], this.w.get('patch_embed.proj.weight') as Float32Array, 0);
    const conv = g.op('Conv', [this.site('patch_in', undefined, input), convWeight, this.param('patch_embed.proj.bias', [D])], {
      kernel_shape: { ints: [c.patchSize, c.patchSize] },
      strides: { ints: [c.patchSize, c.patchSize] },
    });
    const flat = g.op('Reshape', [conv, g.int64Tensor('shape', [0, D, -1])]);
    return g.op('Transpose', [flat], { perm: { ints: [0, 2, 1] } });
  }

  /** im2col as [B, patches, C·P·P] in the Conv weight's (c, py, px) order, the
   *  LayerNorm on each patch, then the projection as a MatMul. */
  private patchesByMatMul(input: string): string {
    const { g, c } = this;
    const P = c.patchSize;
    const gh = c.imageHeight / P;
    const gw = c.imageWidth / P;
    const L = c.channels * P * P;
    const grid = g.op('Reshape', [input, g.int64Tensor('grid', [-1, c.channels, gh, P, gw, P])]);
    const rows = g.op('Transpose', [grid], { perm: { ints: [0, 2, 4, 1, 3, 5] } });
    const patches = g.op('Reshape', [rows, g.int64Tensor('patches', [-1, gh * gw, L])]);
    const normed = this.layerNorm(patches, 'patch_embed.norm_in', L);
    return this.linear(this.site('patch_in', undefined, normed), 'patch_embed.proj', L, c.embedDim);
  }

  private linear(x: string, name: string, inSize: number, outSize: number, bias = true): string {
    const w = this.w.get(`${name}.weight`) as Float32Array;
    return linearNodes(this.g, this.hooks, x, name, w, inSize, outSize, bias ? () => this.param(`${name}.bias`, [outSize]) : null);
  }

  private layerNorm(x: string, name: string, size = this.c.embedDim): string {
    const gamma = this.param(`${name}.weight`, [size]);
    const beta = this.param(`${name}.bias`, [size]);
    return layerNormNodes(this.g, x, gamma, beta, this.c.layerNormEps, this.f);
  }

  private attention(h: string, p: string, block: number): string {
    const { g, c } = this;
    const D = c.embedDim;
    const H = c.numHeads;
    const d = D / H;
    g.setScope(`/${p}attn`);
    const qkv = this.linear(this.site('qkv_in', block, h), `${p}attn.qkv`, D, 3 * D, c.qkvBias);
    const heads = g.op('Transpose', [g.op('Reshape', [qkv, g.int64Tensor('shape', [0, 0, 3, H, d])])], { perm: { ints: [2, 0, 3, 1, 4] } });
    let q: string;
    let k: string;
    let v: string;
    const squeeze0 = (t: string) => g.op('Squeeze', [t, g.int64Tensor('axes', [0])]);
    if (this.f.qkvSplit === 'split') {
      const parts =
        this.f.opset >= 18
          ? g.node('Split', [heads], { axis: { int: 0 }, num_outputs: { int: 3 } }, 3)
          : g.node('Split', [heads, g.int64Tensor('split', [1, 1, 1])], { axis: { int: 0 } }, 3);
      [q, k, v] = parts.map(squeeze0);
    } else if (this.f.qkvSplit === 'slice') {
      [q, k, v] = [0, 1, 2].map((i) => squeeze0(g.op('Slice', [heads, g.int64Tensor('start', [i]), g.int64Tensor('end', [i + 1]), g.int64Tensor('axes', [0])])));
    } else {
      [q, k, v] = [0, 1, 2].map((i) => g.op('Gather', [heads, g.int64Tensor('index', [i], [])], { axis: { int: 0 } }));
    }
    const scale = 1 / Math.sqrt(d);
    const scaledQ = this.hooks.scaledQuery?.(g, block, q, scale) ?? g.op('Mul', [this.site('q', block, q), g.floatScalar('scale', scale)]);
    [k, v] = [this.site('k', block, k), this.site('v', block, v)];
    const scores = g.op('MatMul', [scaledQ, g.op('Transpose', [k], { perm: { ints: [0, 1, 3, 2] } })]);
    const probs = this.site('probs', block, g.op('Softmax', [scores], { axis: { int: -1 } }));
    const out = g.op('Transpose', [g.op('MatMul', [probs, v])], { perm: { ints: [0, 2, 1, 3] } });
    const merged = g.op('Reshape', [out, g.int64Tensor('shape', [0, 0, D])]);
    return this.linear(this.site('proj_in', block, merged), `${p}attn.proj`, D, D);
  }

  private mlp(h: string, p: string, block: number): string {
    const { g, c } = this;
    g.setScope(`/${p}mlp`);
    const hidden = activationNodes(g, this.linear(this.site('fc1_in', block, h), `${p}mlp.fc1`, c.embedDim, c.mlpDim), c.activation, this.f);
    return this.linear(this.site('fc2_in', block, hidden), `${p}mlp.fc2`, c.mlpDim, c.embedDim);
  }

  private block(x: string, i: number): string {
    const g = this.g;
    const p = `blocks.${i}.`;
    if (this.c.normPlacement === 'post') {
      g.setScope(`/${p}norm1`);
      const x1 = this.layerNorm(g.op('Add', [x, this.attention(x, p, i)]), `${p}norm1`);
      g.setScope(`/${p}norm2`);
      return this.layerNorm(g.op('Add', [x1, this.mlp(x1, p, i)]), `${p}norm2`);
    }
    g.setScope(`/${p}norm1`);
    const a = this.attention(this.layerNorm(x, `${p}norm1`), p, i);
    g.setScope(`/${p}residual1`);
    const x1 = g.op('Add', [x, a]);
    g.setScope(`/${p}norm2`);
    const m = this.mlp(this.layerNorm(x1, `${p}norm2`), p, i);
    g.setScope(`/${p}residual2`);
    return g.op('Add', [x1, m]);
  }

  private head(xIn: string): string {
    const { g, c } = this;
    let x = xIn;
    g.setScope('/norm');
    if (c.finalNorm === 'tokens') x = this.layerNorm(x, 'norm');
    g.setScope('/head');
    const token = (i: number) => g.op('Gather', [x, g.int64Tensor('token', [i], [])], { axis: { int: 1 } });
    const classifier = (t: string, name: string) =>
      classifierNodes(g, this.hooks, this.site('head_in', undefined, t), name, this.w.get(`${name}.weight`) as Float32Array, c.embedDim, c.numClasses, () => this.param(`${name}.bias`, [c.numClasses]));
    if (c.distToken) {
      const sum = g.op('Add', [classifier(token(0), 'head'), classifier(token(1), 'head_dist')]);
      return g.op('Div', [sum, g.floatScalar('two', 2)]);
    }
    let pooled: string;
    if (c.pooling !== 'token') {
      const prefix = c.pooling === 'mean' ? prefixTokens(c) : 0;
      const patches = prefix > 0 ? g.op('Slice', [x, g.int64Tensor('start', [prefix]), g.int64Tensor('end', [tokenCount(c)]), g.int64Tensor('axes', [1])]) : x;
      pooled = reduceMean(g, patches, [1], this.f.opset, false);
    } else pooled = token(0);
    if (c.finalNorm === 'pooled') {
      g.setScope('/fc_norm');
      pooled = this.layerNorm(pooled, 'fc_norm');
      g.setScope('/head');
    }
    return classifier(pooled, 'head');
  }
}
