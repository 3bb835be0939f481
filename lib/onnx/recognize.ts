// Recognition of a ViT in an ONNX graph: checks the input, evaluates shapes at a probe
// batch, then matches embedding → blocks → head and assembles the engine's VitConfig and
// timm-named weights. Every failure is an E_ONNX error naming the node where matching
// stopped (unrecognized.ts).

import { SpdfqError } from '../errors';
import { completeVitConfig, MlpActivation, VitConfig, vitParamSpecs, shapeSize } from '../vit-config';
import { ParamBinding, ParamCollector } from './bindings';
import { describeNodes, OnnxGraph, OnnxNode, ValueInfo } from './graph';
import { describeLayout, Layout } from './layout';
import { LayerNormMatch, matchLayerNormFrom } from './patterns';
import { BlockMatch, matchBlock, residualAdd } from './recognize-block';
import { dataConsumers, EmbedMatch, matchEmbedding } from './recognize-embed';
import { toNumber } from './proto';
import { matchHead } from './recognize-head';
import { StaticEval } from './static-eval';
import { isStreamLayout, isTokenwiseLayout, StreamShape, streamLayout } from './stream';
import { LayoutTracer } from './trace';
import { DataType, dataTypeName } from './tensor-data';
import { SUPPORTED_FAMILIES } from './unrecognized';

/** Dynamic batch dimensions are evaluated at 2: a graph that hard-codes batch 1 in a
 *  Reshape fails at recognition instead of later in ONNX Runtime. */
export const PROBE_BATCH = 2;

export type VitFamily = 'timm' | 'huggingface' | 'torchvision';

export interface RecognizeOptions {
  /** Image size when the graph leaves height/width dynamic and no position embedding
   *  fixes them (a number for square images). */
  imageSize?: number | [number, number];
  /** Which graph output holds the logits, when there are several. */
  outputName?: string;
}

/** How the graph spelled the ops, for reports (`inspect`). */
export interface GraphForms {
  layerNorm: 'op' | 'decomposed' | 'none';
  gelu: 'op' | 'decomposed';
  projections: 'fused qkv' | 'separate q/k/v';
}

/** The architecture variant recognized, in the words of the code that builds it
 *  (`inspect` prints it; LayerScale is folded into the Linear layers at import). */
export interface ArchitectureVariant {
  activation: MlpActivation;
  normPlacement: 'pre' | 'post';
  patchEmbedding: string;
  layerScale: 'none' | 'attention' | 'MLP' | 'attention and MLP';
  attention: 'fused qkv' | 'separate q/k/v' | 'nn.MultiheadAttention (batch first)' | 'nn.MultiheadAttention (sequence first)';
}

export interface Recognition {
  config: VitConfig;
  weights: Map<string, Float32Array>;
  bindings: Map<string, ParamBinding>;
  sourceNames: Map<string, string[]>;
  family: VitFamily;
  forms: GraphForms;
  variant: ArchitectureVariant;
  inputName: string;
  outputName: string;
  /** The input's declared dims (numbers, symbolic names, or null when unknown). */
  inputDims: (number | string | null)[];
  /** A fixed batch size, when the graph's input declares one. */
  fixedBatch: number | null;
}

export function recognizeVit(graph: OnnxGraph, options: RecognizeOptions = {}): Recognition {
  rejectForeignOps(graph);
  const input = imageInput(graph);
  const output = logitsOutput(graph, options.outputName);
  const dims = input.dims as (number | string | null)[];
  const fixedBatch = typeof dims[0] === 'number' && dims[0] > 0 ? dims[0] : null;
  const batch = fixedBatch ?? PROBE_BATCH;
  const probe = probeImageShape(graph, input, batch, options);
  const ev = new StaticEval(graph, new Map([[input.name, probe]]));

  const params = new ParamCollector();
  const embed = matchEmbedding(ev, input.name, batch, params);
  const entry = streamEntry(ev, embed.output, { batch, tokens: embed.tokens, embedDim: embed.embedDim }, params);
  const stream = entry.stream;
  const blocks: BlockMatch[] = [];
  let x = entry.tensor;
  for (;;) {
    const block = matchBlock(ev, x, stream, blocks.length, params);
    if (!block) break;
    blocks.push(block);
    x = block.output;
  }
  if (blocks.length === 0) {
    throw new SpdfqError('E_ONNX', `not a supported ViT graph: no transformer block (residual Add) reads the embedded tokens '${embed.output}'. Supported: ${SUPPORTED_FAMILIES}.`);
  }
  const prefix = (embed.classToken ? 1 : 0) + (embed.distToken ? 1 : 0);
  const head = matchHead(ev, x, output.name, stream, prefix, params);

  const first = blocks[0];
  const mismatch = blocks.find((b) => b.normPlacement !== first.normPlacement || b.activation !== first.activation || b.mlpDim !== first.mlpDim || b.attention.numHeads !== first.attention.numHeads);
  if (mismatch) {
    throw new SpdfqError('E_ONNX', `block ${blocks.indexOf(mismatch)} differs from block 0 (norm placement, activation, MLP width or heads); the engine needs identical blocks`);
  }
  const eps = first.layerNorms[0].eps;
  const embedNorms = [embed.inputNorm, embed.outputNorm, entry.norm].filter((n): n is LayerNormMatch => n !== null);
  const allNorms = [...embedNorms, ...blocks.flatMap((b) => b.layerNorms)];
  if (allNorms.some((n) => Math.fround(n.eps) !== Math.fround(eps))) {
    throw new SpdfqError('E_ONNX', `LayerNorm epsilons differ between layers (${[...new Set(allNorms.map((n) => n.eps))].join(', ')}); the engine uses one epsilon`);
  }
  let config: VitConfig;
  try {
    config = completeVitConfig({
      imageHeight: embed.gridHeight * embed.patchSize,
      imageWidth: embed.gridWidth * embed.patchSize,
      channels: embed.channels,
      patchSize: embed.patchSize,
      embedDim: embed.embedDim,
      depth: blocks.length,
      numHeads: first.attention.numHeads,
      mlpDim: first.mlpDim,
      qkvBias: params.weights.has('blocks.0.attn.qkv.bias'),
      classToken: embed.classToken,
      distToken: embed.distToken,
      pooling: head.pooling,
      normPlacement: first.normPlacement,
      finalNorm: head.finalNorm,
      layerNormEps: shortestFloat32(eps),
      activation: first.activation,
      patchInputNorm: embed.inputNorm !== null,
      patchOutputNorm: embed.outputNorm !== null,
      embedNorm: entry.norm !== null,
      numClasses: head.numClasses,
    });
  } catch (err) {
    throw new SpdfqError('E_ONNX', `the recognized architecture is not one the engine runs: ${(err as Error).message}`, { cause: err });
  }
  checkAllParams(config, params);
  const a = first.attention;
  const family: VitFamily = a.projections === 'separate' ? 'huggingface' : a.mergedBatchHeads ? 'torchvision' : 'timm';
  return {
    config,
    weights: params.weights,
    bindings: params.bindings,
    sourceNames: params.sourceNames(),
    family,
    variant: {
      activation: first.activation,
      normPlacement: first.normPlacement,
      patchEmbedding: describePatchEmbedding(embed),
      layerScale: describeLayerScale(blocks),
      attention: a.mergedBatchHeads ? `nn.MultiheadAttention (${entry.sequenceFirst ? 'sequence' : 'batch'} first)` : a.projections === 'fused' ? 'fused qkv' : 'separate q/k/v',
    },
    forms: {
      layerNorm: allNorms[0].nodes[0].opType === 'LayerNormalization' ? 'op' : 'decomposed',
      gelu: first.geluAsOp ? 'op' : 'decomposed',
      projections: a.projections === 'fused' ? 'fused qkv' : 'separate q/k/v',
    },
    inputName: input.name,
    outputName: output.name,
    inputDims: dims,
    fixedBatch,
  };
}

/** From the embedded tokens to the residual stream block 0 reads: an optional LayerNorm
 *  (timm norm_pre, CLIP ln_pre) and layout ops (nn.TransformerEncoder without batch_first
 *  reads [tokens, batch, D]), in either order. The stream's memory order is what the
 *  layout ops leave. */
function streamEntry(ev: StaticEval, embedded: string, shape: StreamShape, params: ParamCollector): { tensor: string; stream: StreamShape; norm: LayerNormMatch | null; sequenceFirst: boolean } {
  const D = shape.embedDim;
  let t = embedded;
  let norm: LayerNormMatch | null = null;
  const anchors = new Map<string, Layout>([[embedded, streamLayout(shape, 'embed')]]);
  for (let steps = 0; steps < 16 && !residualAdd(ev, t, 'block 0'); steps++) {
    const ln: LayerNormMatch | null = norm ? null : matchLayerNormFrom(ev, t, D);
    if (ln) {
      // a LayerNorm over the channel keeps the layout: trace on from its output
      const l = new LayoutTracer(ev, 'the embedding', anchors, { target: 'the embedded tokens' }).trace(t).layout;
      anchors.set(ln.output, l);
      norm = ln;
      t = ln.output;
      continue;
    }
    const users = dataConsumers(ev, t);
    if (users.length !== 1 || !STREAM_LAYOUT_OPS.has(users[0].opType)) break;
    t = users[0].outputs[0];
  }
  const layout = new LayoutTracer(ev, 'the embedding', anchors, { target: 'the embedded tokens' }).trace(t).layout;
  const stream: StreamShape = { ...shape, lead: layout.axes.slice(0, -1) };
  if (layout.axes.length !== 3 || !isStreamLayout(layout, stream) || !isTokenwiseLayout(layout, stream)) {
    throw new SpdfqError('E_ONNX', `not a supported ViT graph: the residual stream entering block 0 is laid out as ${describeLayout(layout)}; expected [batch, tokens, ${D}] or [tokens, batch, ${D}]`);
  }
  if (norm) {
    params.add('norm_pre.weight', [D], norm.gamma ? [norm.gamma] : [], 'ones');
    params.add('norm_pre.bias', [D], norm.beta ? [norm.beta] : []);
  }
  const first = layout.axes[0][0];
  return { tensor: t, stream, norm, sequenceFirst: first?.name === 'n' };
}

const STREAM_LAYOUT_OPS = new Set(['Transpose', 'Reshape', 'Identity', 'Dropout', 'Squeeze', 'Unsqueeze']);

function describePatchEmbedding(e: EmbedMatch): string {
  const parts = e.projection === 'conv' ? ['Conv'] : ['rearrange', ...(e.inputNorm ? ['LayerNorm'] : []), 'Linear'];
  if (e.outputNorm) parts.push('LayerNorm');
  return parts.length === 1 ? 'conv' : parts.join(' + ');
}

function describeLayerScale(blocks: BlockMatch[]): ArchitectureVariant['layerScale'] {
  const attn = blocks.some((b) => b.layerScale.attention);
  const mlp = blocks.some((b) => b.layerScale.mlp);
  return attn && mlp ? 'attention and MLP' : attn ? 'attention' : mlp ? 'MLP' : 'none';
}

/** ORT-optimized files carry com.microsoft fused ops (SkipLayerNormalization, BiasGelu,
 *  FastGelu, Attention) whose semantics differ from the plain ops; refuse them by name. */
function rejectForeignOps(graph: OnnxGraph): void {
  const fused = graph.nodes.find((n) => n.opType === 'Attention' && n.domain === '');
  if (fused) {
    throw new SpdfqError(
      'E_ONNX',
      `${describeNodes([fused])}: the fused ONNX Attention op (opset 23) is not supported yet; export at opset ≤ 22 (torch.onnx.export(..., opset_version=17)) so attention is written as MatMul/Softmax. Supported: ${SUPPORTED_FAMILIES}.`,
    );
  }
  const foreign = graph.foreignNodes();
  if (foreign.length === 0) return;
  const byOp = new Map<string, OnnxNode[]>();
  for (const n of foreign) {
    const key = `${n.domain}.${n.opType}`;
    byOp.set(key, [...(byOp.get(key) ?? []), n]);
  }
  const list = [...byOp].map(([op, nodes]) => `${op} ×${nodes.length}`).join(', ');
  const msft = foreign.some((n) => n.domain === 'com.microsoft');
  throw new SpdfqError(
    'E_ONNX',
    `unsupported operators outside the ONNX standard: ${list} (e.g. ${describeNodes(foreign, 2)}). ` +
      (msft
        ? 'This looks like an ONNX Runtime-optimized model (fused ops); import the file as exported by PyTorch, before ORT graph optimization (or saved with graphOptimizationLevel "basic").'
        : `Supported: ${SUPPORTED_FAMILIES}.`),
  );
}

function imageInput(graph: OnnxGraph): ValueInfo {
  if (graph.inputs.length !== 1) {
    throw new SpdfqError('E_ONNX', `expected one image input, found ${graph.inputs.length}${graph.inputs.length ? `: ${graph.inputs.map((i) => `'${i.name}'`).join(', ')}` : ''}`);
  }
  const input = graph.inputs[0];
  if (input.elemType !== DataType.FLOAT) {
    throw new SpdfqError('E_ONNX', `input '${input.name}' is ${dataTypeName(input.elemType)}; expected float32 images (export the model in fp32)`);
  }
  if (!input.dims) throw new SpdfqError('E_ONNX', `input '${input.name}' declares no shape; expected [batch, channels, height, width]`);
  if (input.dims.length !== 4) {
    throw new SpdfqError(
      'E_ONNX',
      `input '${input.name}' has rank ${input.dims.length} [${input.dims.map((d) => d ?? '?').join(', ')}]; expected an image batch of rank 4 [batch, channels, height, width] (NCHW)`,
    );
  }
  return input;
}

function logitsOutput(graph: OnnxGraph, wanted: string | undefined): ValueInfo {
  if (wanted !== undefined) {
    const o = graph.outputs.find((v) => v.name === wanted);
    if (!o) throw new SpdfqError('E_ONNX', `output '${wanted}' not found; the graph's outputs are ${graph.outputs.map((v) => `'${v.name}'`).join(', ')}`);
    return o;
  }
  if (graph.outputs.length === 1) return graph.outputs[0];
  const named = graph.outputs.find((v) => v.name === 'logits');
  if (named) return named;
  throw new SpdfqError('E_ONNX', `the graph has ${graph.outputs.length} outputs (${graph.outputs.map((v) => `'${v.name}'`).join(', ')}); name the logits output (outputName)`);
}

/** Concrete [B, C, H, W] for static evaluation: declared dims where fixed; otherwise C
 *  from the patch Conv's weight and H, W from options or the position embedding. */
function probeImageShape(graph: OnnxGraph, input: ValueInfo, batch: number, options: RecognizeOptions): number[] {
  const dims = input.dims as (number | string | null)[];
  const fixed = (i: number) => (typeof dims[i] === 'number' && (dims[i] as number) > 0 ? (dims[i] as number) : null);
  const conv = graph.consumersOf(input.name).find((n) => n.opType === 'Conv');
  const weight = conv ? graph.initializers.get(conv.inputs[1]) : undefined;
  const wDims = weight ? (weight.dims ?? []).map(toNumber) : null;
  const channels = fixed(1) ?? (wDims && wDims.length === 4 ? wDims[1] : null);
  let height = fixed(2);
  let width = fixed(3);
  if (options.imageSize !== undefined) {
    const [h, w] = typeof options.imageSize === 'number' ? [options.imageSize, options.imageSize] : options.imageSize;
    if ((height !== null && height !== h) || (width !== null && width !== w)) {
      throw new SpdfqError('E_CONFIG', `imageSize ${h}x${w} contradicts the graph's input size ${height}x${width}`);
    }
    [height, width] = [h, w];
  }
  if (height === null || width === null) {
    const side = wDims && wDims.length === 4 ? squareSideFromPositions(graph, wDims[0]) : null;
    if (side === null || !wDims) {
      throw new SpdfqError('E_ONNX', `input '${input.name}' has dynamic height/width and no square position embedding fixes them; pass imageSize (e.g. --image-size 224)`);
    }
    height = height ?? side * wDims[2];
    width = width ?? side * wDims[3];
  }
  if (channels === null) throw new SpdfqError('E_ONNX', `input '${input.name}' has a dynamic channel count and no patch Conv reads it`);
  return [batch, channels, height, width];
}

/** The patch grid side implied by a [1, T, D] position embedding: T = k + side² with
 *  k ∈ {0, 1, 2} prefix tokens (unique for side ≥ 1, since squares are ≥ 3 apart). */
function squareSideFromPositions(graph: OnnxGraph, embedDim: number): number | null {
  let best: number | null = null;
  let bestTokens = 0;
  for (const t of graph.initializers.values()) {
    const dims = (t.dims ?? []).map(toNumber);
    if (dims.length < 2 || dims[dims.length - 1] !== embedDim || dims.slice(0, -2).some((d) => d !== 1)) continue;
    const tokens = dims[dims.length - 2];
    for (let k = 0; k <= 2; k++) {
      const side = Math.round(Math.sqrt(tokens - k));
      if (side >= 1 && side * side === tokens - k && tokens > bestTokens) {
        best = side;
        bestTokens = tokens;
      }
    }
  }
  return best;
}

/** The shortest decimal that is the same float32 (9.99999997e-7 → 1e-6), so configs and
 *  reports show the epsilon the model was built with. */
export function shortestFloat32(x: number): number {
  const target = Math.fround(x);
  for (let p = 1; p <= 9; p++) {
    const c = Number(x.toPrecision(p));
    if (Math.fround(c) === target) return c;
  }
  return target;
}

function checkAllParams(config: VitConfig, params: ParamCollector): void {
  const specs = vitParamSpecs(config);
  for (const s of specs) {
    const w = params.weights.get(s.name);
    if (!w || w.length !== shapeSize(s.shape)) {
      throw new SpdfqError('E_ONNX', `internal error: parameter '${s.name}' [${s.shape.join(', ')}] was not matched (have ${w?.length ?? 'none'})`);
    }
  }
  const known = new Set(specs.map((s) => s.name));
  for (const name of params.weights.keys()) {
    if (!known.has(name)) throw new SpdfqError('E_ONNX', `internal error: matched parameter '${name}' is not part of the config`);
  }
}
