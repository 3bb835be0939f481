// The ViT architecture description shared by the engine, ONNX import and the workflow.
// Field meanings follow timm's VisionTransformer; every field is checked here, in
// TypeScript, so the native side can trust plain data (the pattern of lovell/sharp: validate in JavaScript, plain data in C++).

import { SpdfqError } from './errors';

/** 'mean': over the patch tokens (timm); 'mean-all': over every token, the class token
 *  included (vit-pytorch's pool='mean'). */
export type Pooling = 'token' | 'mean' | 'mean-all';
export type NormPlacement = 'pre' | 'post';
/** Where the final LayerNorm sits: on every token before pooling (timm `norm`),
 *  on the pooled vector (timm `fc_norm`, used with mean pooling), or nowhere. */
export type FinalNorm = 'tokens' | 'pooled' | 'none';
/** The MLP nonlinearity: GELU (erf), its tanh approximation, QuickGELU x·σ(1.702x) (CLIP),
 *  ReLU (nn.TransformerEncoderLayer's default), SiLU x·σ(x). */
export type MlpActivation = 'gelu' | 'gelu-tanh' | 'quick-gelu' | 'relu' | 'silu';
export const MLP_ACTIVATIONS: readonly MlpActivation[] = ['gelu', 'gelu-tanh', 'quick-gelu', 'relu', 'silu'];

export interface VitConfig {
  imageHeight: number;
  imageWidth: number;
  channels: number;
  patchSize: number;
  embedDim: number;
  depth: number;
  numHeads: number;
  /** Hidden width of each MLP (timm: mlp_ratio × embedDim; HuggingFace: intermediate_size). */
  mlpDim: number;
  qkvBias: boolean;
  classToken: boolean;
  /** DeiT distillation token; the logits are then the mean of `head` on the class token
   *  and `head_dist` on the distillation token (DeiT's inference rule). */
  distToken: boolean;
  pooling: Pooling;
  normPlacement: NormPlacement;
  finalNorm: FinalNorm;
  layerNormEps: number;
  activation: MlpActivation;
  /** LayerNorm on each flattened patch before the patch projection (vit-pytorch). */
  patchInputNorm: boolean;
  /** LayerNorm on the patch projections (vit-pytorch; timm PatchEmbed `norm`). */
  patchOutputNorm: boolean;
  /** LayerNorm on the embedded tokens before block 0 (timm `norm_pre`, CLIP `ln_pre`). */
  embedNorm: boolean;
  numClasses: number;
}

/** Inputs accepted by `completeVitConfig`: `mlpRatio` may stand in for `mlpDim`,
 *  `imageSize` for a square image, and most fields have timm's defaults. */
export type VitConfigInput = Partial<VitConfig> & {
  imageSize?: number;
  mlpRatio?: number;
  /** Configs written before `activation` existed: 'erf' → 'gelu', 'tanh' → 'gelu-tanh'. */
  gelu?: 'erf' | 'tanh';
};

/** timm `vit_*` / `deit_*` defaults (timm/models/vision_transformer.py). */
export const VIT_DEFAULTS = {
  channels: 3,
  qkvBias: true,
  classToken: true,
  distToken: false,
  pooling: 'token' as Pooling,
  normPlacement: 'pre' as NormPlacement,
  layerNormEps: 1e-6,
  activation: 'gelu' as MlpActivation,
  mlpRatio: 4,
};

function fail(field: string, expected: string, received: unknown): never {
  throw new SpdfqError(
    'E_CONFIG',
    `ViT config field '${field}': expected ${expected}, received ${JSON.stringify(received)}`,
  );
}

function positiveInt(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) fail(field, 'a positive integer', v);
  return v;
}

function bool(field: string, v: unknown): boolean {
  if (typeof v !== 'boolean') fail(field, 'true or false', v);
  return v;
}

function oneOf<T extends string>(field: string, v: unknown, options: readonly T[]): T {
  if (typeof v !== 'string' || !(options as readonly string[]).includes(v)) {
    fail(field, `one of ${options.map((o) => `'${o}'`).join(', ')}`, v);
  }
  return v as T;
}

/** Fill defaults and validate; throws SpdfqError('E_CONFIG') naming the field. */
export function completeVitConfig(input: VitConfigInput): VitConfig {
  if (input === null || typeof input !== 'object') fail('(config)', 'an object', input);
  const imageHeight = positiveInt('imageHeight', input.imageHeight ?? input.imageSize);
  const imageWidth = positiveInt('imageWidth', input.imageWidth ?? input.imageSize);
  const patchSize = positiveInt('patchSize', input.patchSize);
  const embedDim = positiveInt('embedDim', input.embedDim);
  const numHeads = positiveInt('numHeads', input.numHeads);
  if (embedDim % numHeads !== 0) fail('numHeads', `a divisor of embedDim ${embedDim}`, numHeads);
  if (imageHeight % patchSize !== 0 || imageWidth % patchSize !== 0) {
    fail('patchSize', `a divisor of the image size ${imageHeight}x${imageWidth}`, patchSize);
  }
  const mlpDim =
    input.mlpDim !== undefined
      ? positiveInt('mlpDim', input.mlpDim)
      : positiveInt('mlpRatio × embedDim', Math.round((input.mlpRatio ?? VIT_DEFAULTS.mlpRatio) * embedDim));
  const classToken = bool('classToken', input.classToken ?? VIT_DEFAULTS.classToken);
  const distToken = bool('distToken', input.distToken ?? VIT_DEFAULTS.distToken);
  if (distToken && !classToken) fail('distToken', 'false when classToken is false (DeiT has both)', distToken);
  const pooling = oneOf('pooling', input.pooling ?? (classToken ? 'token' : 'mean'), ['token', 'mean', 'mean-all'] as const);
  if (pooling === 'token' && !classToken) fail('pooling', "'mean' for a model without a class token", pooling);
  if (distToken && pooling !== 'token') fail('pooling', "'token' for a distilled DeiT", pooling);
  const normPlacement = oneOf('normPlacement', input.normPlacement ?? VIT_DEFAULTS.normPlacement, ['pre', 'post'] as const);
  const defaultFinalNorm: FinalNorm = normPlacement === 'post' ? 'none' : pooling === 'token' ? 'tokens' : 'pooled';
  const finalNorm = oneOf('finalNorm', input.finalNorm ?? defaultFinalNorm, ['tokens', 'pooled', 'none'] as const);
  const layerNormEps = input.layerNormEps ?? VIT_DEFAULTS.layerNormEps;
  if (typeof layerNormEps !== 'number' || !(layerNormEps > 0) || !Number.isFinite(layerNormEps)) {
    fail('layerNormEps', 'a positive finite number', layerNormEps);
  }
  return {
    imageHeight,
    imageWidth,
    channels: positiveInt('channels', input.channels ?? VIT_DEFAULTS.channels),
    patchSize,
    embedDim,
    depth: positiveInt('depth', input.depth),
    numHeads,
    mlpDim,
    qkvBias: bool('qkvBias', input.qkvBias ?? VIT_DEFAULTS.qkvBias),
    classToken,
    distToken,
    pooling,
    normPlacement,
    finalNorm,
    layerNormEps,
    activation: oneOf('activation', input.activation ?? legacyActivation(input.gelu) ?? VIT_DEFAULTS.activation, MLP_ACTIVATIONS),
    patchInputNorm: bool('patchInputNorm', input.patchInputNorm ?? false),
    patchOutputNorm: bool('patchOutputNorm', input.patchOutputNorm ?? false),
    embedNorm: bool('embedNorm', input.embedNorm ?? false),
    numClasses: positiveInt('numClasses', input.numClasses),
  };
}

function legacyActivation(gelu: unknown): MlpActivation | undefined {
  if (gelu === undefined) return undefined;
  return gelu === 'tanh' ? 'gelu-tanh' : gelu === 'erf' ? 'gelu' : fail('gelu', "'erf' or 'tanh' (or use 'activation')", gelu);
}

/** Number of prefix tokens (class, distillation) before the patch tokens. */
export function prefixTokens(c: VitConfig): number {
  return (c.classToken ? 1 : 0) + (c.distToken ? 1 : 0);
}

export function patchGrid(c: VitConfig): { rows: number; cols: number } {
  return { rows: c.imageHeight / c.patchSize, cols: c.imageWidth / c.patchSize };
}

export function tokenCount(c: VitConfig): number {
  const g = patchGrid(c);
  return prefixTokens(c) + g.rows * g.cols;
}

export interface ParamSpec {
  /** timm parameter name, e.g. `blocks.3.attn.qkv.weight`. */
  name: string;
  /** PyTorch shape: Linear weights are [out, in], the patch conv [D, C, P, P]. */
  shape: number[];
}

/** The model's parameters in the engine's canonical order, with timm names and PyTorch
 *  shapes. This list is the contract between ONNX import, fixtures and the native arena. */
export function vitParamSpecs(c: VitConfig): ParamSpec[] {
  const D = c.embedDim;
  const L = c.channels * c.patchSize * c.patchSize;
  const specs: ParamSpec[] = [];
  if (c.patchInputNorm) specs.push({ name: 'patch_embed.norm_in.weight', shape: [L] }, { name: 'patch_embed.norm_in.bias', shape: [L] });
  specs.push({ name: 'patch_embed.proj.weight', shape: [D, c.channels, c.patchSize, c.patchSize] }, { name: 'patch_embed.proj.bias', shape: [D] });
  if (c.patchOutputNorm) specs.push({ name: 'patch_embed.norm.weight', shape: [D] }, { name: 'patch_embed.norm.bias', shape: [D] });
  if (c.classToken) specs.push({ name: 'cls_token', shape: [1, 1, D] });
  if (c.distToken) specs.push({ name: 'dist_token', shape: [1, 1, D] });
  specs.push({ name: 'pos_embed', shape: [1, tokenCount(c), D] });
  if (c.embedNorm) specs.push({ name: 'norm_pre.weight', shape: [D] }, { name: 'norm_pre.bias', shape: [D] });
  for (let i = 0; i < c.depth; i++) {
    const p = `blocks.${i}.`;
    specs.push({ name: `${p}norm1.weight`, shape: [D] }, { name: `${p}norm1.bias`, shape: [D] });
    specs.push({ name: `${p}attn.qkv.weight`, shape: [3 * D, D] });
    if (c.qkvBias) specs.push({ name: `${p}attn.qkv.bias`, shape: [3 * D] });
    specs.push({ name: `${p}attn.proj.weight`, shape: [D, D] }, { name: `${p}attn.proj.bias`, shape: [D] });
    specs.push({ name: `${p}norm2.weight`, shape: [D] }, { name: `${p}norm2.bias`, shape: [D] });
    specs.push({ name: `${p}mlp.fc1.weight`, shape: [c.mlpDim, D] }, { name: `${p}mlp.fc1.bias`, shape: [c.mlpDim] });
    specs.push({ name: `${p}mlp.fc2.weight`, shape: [D, c.mlpDim] }, { name: `${p}mlp.fc2.bias`, shape: [D] });
  }
  if (c.finalNorm === 'tokens') specs.push({ name: 'norm.weight', shape: [D] }, { name: 'norm.bias', shape: [D] });
  if (c.finalNorm === 'pooled') specs.push({ name: 'fc_norm.weight', shape: [D] }, { name: 'fc_norm.bias', shape: [D] });
  specs.push({ name: 'head.weight', shape: [c.numClasses, D] }, { name: 'head.bias', shape: [c.numClasses] });
  if (c.distToken) {
    specs.push({ name: 'head_dist.weight', shape: [c.numClasses, D] }, { name: 'head_dist.bias', shape: [c.numClasses] });
  }
  return specs;
}

export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
