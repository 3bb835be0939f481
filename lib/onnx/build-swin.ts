// Writes a torchvision Swin Transformer V1 ONNX graph from a SwinConfig and
// torchvision-named weights (lib/swin.ts): the way to ship a Swin trained by the engine,
// and its fp32 export (export-swin.ts). The graph computes torchvision 0.14's forward
// (docs/swin.md, "Layout choices"), op for op where torch.onnx's form is short, and reads
// back through importSwinOnnx (recognize-swin.ts):
//
//   features.0   Conv(P, stride P) → Transpose to [B, H, W, C] → LayerNorm
//   block        norm1 → windows → qkv → q·scale·kᵀ + bias (+ mask) → Softmax → ·v → proj
//                → grid → residual; norm2 → mlp.0 → GELU → mlp.3 → residual
//   PatchMerging Pad odd sides → x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2]
//                → Concat → LayerNorm(4C) → reduction (no bias)
//   head         norm → mean over the grid → Gemm
//
// Windows: torchvision pads the grid at the bottom/right, rolls it by −window/2 in odd
// blocks and cuts it into windows with view/permute; torch.onnx writes that as a Pad,
// Slice + Concat pairs and Reshape/Transpose (≈ 15 ops per direction). Here, as in the
// native engine, the three are one Gather whose constant indices are swin-geometry.ts's
// windowSources (padding tokens read one zero row appended by a Pad); the reverse (merge
// windows, roll back, crop) is the Gather with the inverse indices. The relative position
// bias is written as torch.onnx constant-folds it, table[relative_position_index] as
// [1, heads, N, N]; the shift mask as the constant it folds to, [1, windows, 1, N, N].
//
// Hooks (SwinGraphHooks, the ViT's GraphHooks) let the quantized export put its quantizers
// at the engine's sites (native/core/swin_passes.h): the image, the norm1 output (before the
// window gather), q, k and v, the softmax output, the proj, fc1 and fc2 inputs, each merge's
// reduction input and the pooled head input; Linear and Conv weights through `weight`, or
// each Linear (head included) as nodes of the hook's own through `matmul` (MatMulNBits).
// Linear layers and the classifier are graph-layers.ts's linearNodes and classifierNodes,
// the ViT writer's own.

import { completeSwinConfig, SwinConfig, SwinConfigInput } from '../swin';
import { shapeSize } from '../vit-config';
import { GraphBuilder, valueInfo } from './graph-builder';
import { VitSite } from './build-vit';
import {
  activationNodes, classifierNodes, configError, GraphHooks, LayerFormOptions, LayerForms, layerNormNodes, linearNodes, reduceMean, resolveBatch, resolveLayerForms, weightMap, Weights,
} from './graph-layers';
import { relativePositionIndex, shiftMask, windowGeometry, WindowGeometry, windowSources } from './swin-geometry';
import { DataType } from './tensor-data';

export interface BuildSwinOptions extends LayerFormOptions {
  /** Default 17. Supported 14..23 (the oldest opset the importer was checked on is 14). */
  opset?: number;
  /** Default 'fused' (LayerNormalization) from opset 17, else 'decomposed'. */
  layerNorm?: 'fused' | 'decomposed';
  /** For GELU activations: 'formula' (Erf, as torch exports below opset 20) or 'op'
   *  (the opset-20 Gelu op). Default 'op' from opset 20. */
  gelu?: 'formula' | 'op';
  /** 'dynamic' (default) or a fixed batch size. */
  batch?: 'dynamic' | number;
  inputName?: string;
  outputName?: string;
  producer?: string;
  hooks?: SwinGraphHooks;
}

/** The engine's Swin sites (native/core/act_sites.h): the ViT's, and each patch merging's
 *  reduction input (`block` = the stage it follows). Blocks are numbered stage-major. */
export type SwinSite = VitSite | 'reduce_in';
export type SwinGraphHooks = GraphHooks<SwinSite>;

export const MIN_SWIN_OPSET = 14;
export const MAX_SWIN_OPSET = 23;

const WHO = 'buildSwinOnnx';
const invalid: (message: string) => never = configError(WHO);

/** The graph as ONNX bytes; throws E_CONFIG naming a bad option or a missing, extra or
 *  wrongly sized weight (torchvision names and shapes; relative_position_index ignored). */
export function buildSwinOnnx(configInput: SwinConfig | SwinConfigInput, weightsInput: Weights, options: BuildSwinOptions = {}): Uint8Array {
  const c = completeSwinConfig(configInput);
  const forms = resolveLayerForms(WHO, c.activation, options, { min: MIN_SWIN_OPSET, max: MAX_SWIN_OPSET });
  const batch = resolveBatch(WHO, options.batch);
  const weights = weightMap(weightsInput);
  const g = new GraphBuilder();
  const swin = new SwinGraph(g, c, weights, forms, options.hooks ?? {});
  const inputName = options.inputName ?? 'input';
  const outputName = options.outputName ?? 'logits';
  g.renameOutput(swin.forward(inputName), outputName);
  const unused = [...weights.keys()].filter((k) => !swin.used.has(k) && !k.endsWith('relative_position_index'));
  if (unused.length > 0) invalid(`weights not used by this config (check the config): ${unused.slice(0, 8).join(', ')}${unused.length > 8 ? ` and ${unused.length - 8} more` : ''}`);
  return g.model({
    opset: forms.opset,
    graphName: 'swin',
    producer: options.producer ?? 'spdfq-native',
    docString: `torchvision Swin Transformer V1: ${JSON.stringify(c)}`,
    inputs: [valueInfo(inputName, DataType.FLOAT, [batch, c.channels, c.imageHeight, c.imageWidth])],
    outputs: [valueInfo(outputName, DataType.FLOAT, [batch, c.numClasses])],
  });
}

/** The token grid [B, H, W, C] between layers. */
interface Grid {
  tensor: string;
  height: number;
  width: number;
  channels: number;
}

class SwinGraph {
  /** Weight names read so far (the rest are reported as unused). */
  readonly used = new Set<string>();

  constructor(
    private readonly g: GraphBuilder,
    private readonly c: SwinConfig,
    private readonly w: Map<string, Float32Array>,
    private readonly f: LayerForms,
    private readonly hooks: SwinGraphHooks,
  ) {}

  private site(site: SwinSite, block: number | undefined, tensor: string): string {
    return this.hooks.activation ? this.hooks.activation(this.g, site, block, tensor) : tensor;
  }

  /** The patch Conv's weight as the graph stores it, through the weight hook. */
  private storedWeight(name: string, dims: number[], data: Float32Array, channelAxis: number): string {
    return this.hooks.weight?.(this.g, name, dims, data, channelAxis) ?? this.g.floatTensor(name, dims, data);
  }

  /** A weight by torchvision name, checked against its PyTorch shape. */
  private weight(name: string, shape: number[]): Float32Array {
    const w = this.w.get(name);
    if (!(w instanceof Float32Array) || w.length !== shapeSize(shape)) {
      invalid(`weight '${name}' [${shape.join(', ')}]: expected a Float32Array of ${shapeSize(shape)} values, received ${w instanceof Float32Array ? `${w.length} values` : typeof w}`);
    }
    this.used.add(name);
    return w;
  }

  private param(name: string, shape: number[]): string {
    return this.g.floatTensor(name, shape, this.weight(name, shape));
  }

  forward(input: string): string {
    const { g, c } = this;
    g.setScope('/features.0');
    const D = c.embedDim;
    const P = c.patchSize;
    const convW = this.storedWeight('features.0.0.weight', [D, c.channels, P, P], this.weight('features.0.0.weight', [D, c.channels, P, P]), 0);
    const conv = g.op('Conv', [this.site('patch_in', undefined, input), convW, this.param('features.0.0.bias', [D])], {
      kernel_shape: { ints: [P, P] },
      strides: { ints: [P, P] },
    });
    const channelsLast = g.op('Transpose', [conv], { perm: { ints: [0, 2, 3, 1] } });
    let x: Grid = { tensor: this.layerNorm(channelsLast, 'features.0.2', D), height: c.imageHeight / P, width: c.imageWidth / P, channels: D };
    let l = 0; // the stage-major block index the engine's sites use
    c.depths.forEach((depth, s) => {
      const layer = 1 + 2 * s;
      for (let i = 0; i < depth; i++) x = { ...x, tensor: this.block(x, s, l++, `features.${layer}.${i}`, i % 2 === 1) };
      if (s < c.depths.length - 1) x = this.patchMerging(x, s, `features.${layer + 1}`);
    });
    return this.head(x);
  }

  private layerNorm(x: string, name: string, size: number): string {
    const gamma = this.param(`${name}.weight`, [size]);
    const beta = this.param(`${name}.bias`, [size]);
    return layerNormNodes(this.g, x, gamma, beta, this.c.layerNormEps, this.f);
  }

  /** x · Wᵀ (+ b) with W [out, in] stored transposed under its torchvision name (or the
   *  matmul hook's nodes). */
  private linear(x: string, name: string, inSize: number, outSize: number, bias = true): string {
    const w = this.weight(`${name}.weight`, [outSize, inSize]);
    return linearNodes(this.g, this.hooks, x, name, w, inSize, outSize, bias ? () => this.param(`${name}.bias`, [outSize]) : null);
  }

  private block(x: Grid, stage: number, l: number, p: string, shifted: boolean): string {
    const { g, c } = this;
    const C = x.channels;
    const geom = windowGeometry(x.height, x.width, c.windowSize, shifted);
    g.setScope(`/${p}/norm1`);
    const h = this.site('qkv_in', l, this.layerNorm(x.tensor, `${p}.norm1`, C));
    g.setScope(`/${p}/attn`);
    const windows = this.partition(h, geom, C);
    const attended = this.windowAttention(windows, geom, l, p, C, c.numHeads[stage]);
    const back = this.reverse(attended, geom, C);
    g.setScope(`/${p}/residual1`);
    const x1 = g.op('Add', [x.tensor, back]);
    g.setScope(`/${p}/norm2`);
    const h2 = this.site('fc1_in', l, this.layerNorm(x1, `${p}.norm2`, C));
    g.setScope(`/${p}/mlp`);
    const hidden = Math.trunc(C * c.mlpRatio); // torchvision: int(dim * mlp_ratio)
    const act = activationNodes(g, this.linear(h2, `${p}.mlp.0`, C, hidden), c.activation, this.f);
    const m = this.linear(this.site('fc2_in', l, act), `${p}.mlp.3`, hidden, C);
    g.setScope(`/${p}/residual2`);
    return g.op('Add', [x1, m]);
  }

  /** [B, H, W, C] → windows [B·nW, N, C]: pad, roll and cut in one Gather. */
  private partition(x: string, geom: WindowGeometry, C: number): string {
    const g = this.g;
    const src = windowSources(geom);
    const HW = geom.height * geom.width;
    let tokens = g.op('Reshape', [x, g.int64Tensor('tokens', [0, HW, C])]);
    // padding tokens read row HW: a zero row appended, as F.pad's zeros after norm1
    if (src.includes(-1)) tokens = g.op('Pad', [tokens, g.int64Tensor('pads', [0, 0, 0, 0, 1, 0])]);
    const index = g.int64Tensor('window_sources', Array.from(src, (t) => (t < 0 ? HW : t)));
    const gathered = g.op('Gather', [tokens, index], { axis: { int: 1 } });
    return g.op('Reshape', [gathered, g.int64Tensor('windows', [-1, geom.tokens, C])]);
  }

  /** Windows [B·nW, N, C] → [B, H, W, C]: merge windows, roll back and crop in one Gather
   *  (each grid token reads the window row that holds it). */
  private reverse(windows: string, geom: WindowGeometry, C: number): string {
    const g = this.g;
    const src = windowSources(geom);
    const dst = new Array<number>(geom.height * geom.width);
    src.forEach((t, k) => {
      if (t >= 0) dst[t] = k;
    });
    const rows = g.op('Reshape', [windows, g.int64Tensor('image_windows', [-1, src.length, C])]);
    const grid = g.op('Gather', [rows, g.int64Tensor('window_targets', dst)], { axis: { int: 1 } });
    return g.op('Reshape', [grid, g.int64Tensor('grid', [-1, geom.height, geom.width, C])]);
  }

  /** ShiftedWindowAttention on windows [B·nW, N, C]. */
  private windowAttention(x: string, geom: WindowGeometry, l: number, p: string, C: number, heads: number): string {
    const g = this.g;
    const N = geom.tokens;
    const d = C / heads;
    const qkv = this.linear(x, `${p}.attn.qkv`, C, 3 * C, this.c.qkvBias);
    // qkv.reshape(B', N, 3, heads, d).permute(2, 0, 3, 1, 4); q, k, v = qkv[0], qkv[1], qkv[2]
    const split = g.op('Transpose', [g.op('Reshape', [qkv, g.int64Tensor('qkv_heads', [0, 0, 3, heads, d])])], { perm: { ints: [2, 0, 3, 1, 4] } });
    const [q, k, v] = [0, 1, 2].map((i) => g.op('Gather', [split, g.int64Tensor('index', [i], [])], { axis: { int: 0 } }));
    const scale = d ** -0.5;
    const scaled = this.hooks.scaledQuery?.(g, l, q, scale) ?? g.op('Mul', [this.site('q', l, q), g.floatScalar('scale', scale)]);
    let logits = g.op('MatMul', [scaled, g.op('Transpose', [this.site('k', l, k)], { perm: { ints: [0, 1, 3, 2] } })]);
    logits = g.op('Add', [logits, g.floatTensor(`${p}.attn.relative_position_bias`, [1, heads, N, N], this.relativePositionBias(p, geom, heads))]);
    const mask = shiftMask(geom);
    if (mask) {
      // attn.view(B, nW, heads, N, N) + mask.unsqueeze(1).unsqueeze(0), viewed back
      const nW = geom.windowsY * geom.windowsX;
      const perImage = g.op('Reshape', [logits, g.int64Tensor('image_logits', [-1, nW, heads, N, N])]);
      const masked = g.op('Add', [perImage, g.floatTensor(`${p}.attn.shift_mask`, [1, nW, 1, N, N], mask)]);
      logits = g.op('Reshape', [masked, g.int64Tensor('window_logits', [-1, heads, N, N])]);
    }
    const probs = this.site('probs', l, g.op('Softmax', [logits], { axis: { int: -1 } }));
    const out = g.op('Transpose', [g.op('MatMul', [probs, this.site('v', l, v)])], { perm: { ints: [0, 2, 1, 3] } });
    return this.linear(this.site('proj_in', l, g.op('Reshape', [out, g.int64Tensor('merge_heads', [0, 0, C])])), `${p}.attn.proj`, C, C);
  }

  /** table[relative_position_index] as [1, heads, N, N]: the constant torch.onnx folds. */
  private relativePositionBias(p: string, geom: WindowGeometry, heads: number): Float32Array {
    const [wh, ww] = geom.window;
    const table = this.weight(`${p}.attn.relative_position_bias_table`, [(2 * wh - 1) * (2 * ww - 1), heads]);
    const index = relativePositionIndex(geom.window);
    const NN = index.length;
    const out = new Float32Array(heads * NN);
    for (let h = 0; h < heads; h++) for (let ij = 0; ij < NN; ij++) out[h * NN + ij] = table[index[ij] * heads + h];
    return out;
  }

  /** PatchMerging: _patch_merging_pad, the four strided slices in torchvision's order,
   *  LayerNorm(4C), reduction 4C → 2C (without bias unless the config has reductionBias). */
  private patchMerging(x: Grid, stage: number, p: string): Grid {
    const g = this.g;
    const C = x.channels;
    g.setScope(`/${p}`);
    let t = x.tensor;
    const [padH, padW] = [x.height % 2, x.width % 2];
    if (padH + padW > 0) t = g.op('Pad', [t, g.int64Tensor('pads', [0, 0, 0, 0, 0, padH, padW, 0])]);
    // x0 = x[..., 0::2, 0::2, :], x1 = x[..., 1::2, 0::2, :], x2 = x[..., 0::2, 1::2, :], x3 = x[..., 1::2, 1::2, :]
    const parts = [[0, 0], [1, 0], [0, 1], [1, 1]].map(([dy, dx]) =>
      g.op('Slice', [t, g.int64Tensor('starts', [dy, dx]), g.int64Tensor('ends', [x.height + padH, x.width + padW]), g.int64Tensor('axes', [1, 2]), g.int64Tensor('steps', [2, 2])]),
    );
    const merged = g.op('Concat', parts, { axis: { int: -1 } });
    const normed = this.site('reduce_in', stage, this.layerNorm(merged, `${p}.norm`, 4 * C));
    const reduced = this.linear(normed, `${p}.reduction`, 4 * C, 2 * C, this.c.reductionBias === true);
    return { tensor: reduced, height: Math.ceil(x.height / 2), width: Math.ceil(x.width / 2), channels: 2 * C };
  }

  /** norm → AdaptiveAvgPool2d(1) over the grid → flatten → head. */
  private head(x: Grid): string {
    const { g, c } = this;
    const C = x.channels;
    g.setScope('/norm');
    const normed = this.layerNorm(x.tensor, 'norm', C);
    g.setScope('/head');
    const pooled = this.site('head_in', undefined, reduceMean(g, normed, [1, 2], this.f.opset, false));
    return classifierNodes(g, this.hooks, pooled, 'head', this.weight('head.weight', [c.numClasses, C]), C, c.numClasses, () => this.param('head.bias', [c.numClasses]));
  }
}
