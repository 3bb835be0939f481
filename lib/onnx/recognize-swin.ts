// Recognition of a torchvision Swin Transformer V1 (torchvision.models.swin_transformer,
// 0.14) in an ONNX graph: the patch embedding (Conv → Permute → LayerNorm), the stages of
// Swin blocks (recognize-swin-block.ts) separated by PatchMerging (2×2 strided slices →
// Concat → LayerNorm(4C) → Linear 4C → 2C without bias), and the head (LayerNorm → mean
// over the grid → Linear). It returns lib/swin.ts's SwinConfig and the weights under
// torchvision state_dict names. Every failure is an E_ONNX error naming the node where
// matching stopped.

import { SpdfqError } from '../errors';
import { completeSwinConfig, SwinConfig } from '../swin';
import { ParamBinding, ParamCollector } from './bindings';
import { OnnxGraph, OnnxNode } from './graph';
import { LayerNormMatch, matchLayerNormFrom, matchLinear } from './patterns';
import { addLayerNorm, addLinear } from './recognize-block';
import { dataConsumers } from './recognize-embed';
import { matchSwinBlock, SwinBlockMatch, SwinStageShape } from './recognize-swin-block';
import { shortestFloat32 } from './recognize';
import { attrInts, attrString, attrInt, StaticEval } from './static-eval';
import { mergeSource } from './swin-geometry';
import { firstDifference, MovementTracer } from './movement';
import { DataType, dataTypeName } from './tensor-data';
import { unrecognized } from './unrecognized';

/** Dynamic batch dimensions are evaluated at 2, as for ViTs (recognize.ts PROBE_BATCH). */
const SWIN_PROBE_BATCH = 2;
/** Large enough for Swin-B's stage-0 masks at 384 (144 windows of 12×12: 3.0 M). */
const SWIN_FOLD_LIMIT = 1 << 22;

export interface SwinRecognition {
  config: SwinConfig;
  weights: Map<string, Float32Array>;
  bindings: Map<string, ParamBinding>;
  sourceNames: Map<string, string[]>;
  forms: { layerNorm: 'op' | 'decomposed'; gelu: 'op' | 'decomposed'; pooling: string };
  inputName: string;
  outputName: string;
  inputDims: (number | string | null)[];
  fixedBatch: number | null;
}

/** A cheap look at the graph: does it have torchvision Swin's fingerprints (a relative
 *  position bias table or its gathered form next to a window partition)? Used to route a
 *  graph to this recognizer before the ViT one. Names only decide the route; recognition
 *  itself is structural. */
export function looksLikeSwin(graph: OnnxGraph): boolean {
  const names = [...graph.initializers.keys(), ...graph.nodes.map((n) => n.name)];
  if (names.some((n) => /relative_position_bias_table|relative_position_index|patch_merging|logit_scale|cpb_mlp|\/features\.\d+\/features\.\d+\.\d+\/attn/.test(n))) return true;
  // structural: a Conv reading the input, then a Transpose to channels last [0, 2, 3, 1]
  const conv = graph.nodes.find((n) => n.opType === 'Conv' && graph.inputs.some((i) => i.name === n.inputs[0]));
  const next = conv ? graph.consumersOf(conv.outputs[0]) : [];
  return next.length === 1 && next[0].opType === 'Transpose' && (attrInts(next[0], 'perm') ?? []).join() === '0,2,3,1';
}

export function recognizeSwin(graph: OnnxGraph, options: { outputName?: string } = {}): SwinRecognition {
  const v2 = [...graph.initializers.keys(), ...graph.nodes.map((n) => n.name)].find((n) => /logit_scale|cpb_mlp/.test(n));
  if (v2) {
    throw new SpdfqError('E_ONNX', `'${v2}' belongs to a Swin Transformer V2 (cosine attention with a logit scale, continuous position bias MLP); the engine runs Swin V1 only (docs/swin.md)`);
  }
  if (graph.inputs.length !== 1) throw new SpdfqError('E_ONNX', `expected one image input, found ${graph.inputs.length}`);
  const input = graph.inputs[0];
  const dims = input.dims ?? [];
  if (input.elemType !== DataType.FLOAT || dims.length !== 4) {
    throw new SpdfqError('E_ONNX', `input '${input.name}': expected float32 images [batch, channels, height, width], found ${dataTypeName(input.elemType)} of rank ${dims.length}`);
  }
  const [, , Hd, Wd] = dims;
  if (typeof Hd !== 'number' || typeof Wd !== 'number' || typeof dims[1] !== 'number') {
    throw new SpdfqError('E_ONNX', `input '${input.name}' [${dims.map((d) => d ?? '?').join(', ')}]: a Swin export must fix channels, height and width (torchvision's attention masks depend on them)`);
  }
  const fixedBatch = typeof dims[0] === 'number' && dims[0] > 0 ? dims[0] : null;
  const B = fixedBatch ?? SWIN_PROBE_BATCH;
  const outputs = graph.outputs;
  const output = options.outputName !== undefined ? outputs.find((o) => o.name === options.outputName) : outputs.length === 1 ? outputs[0] : outputs.find((o) => o.name === 'logits');
  if (!output) throw new SpdfqError('E_ONNX', `cannot tell which output holds the logits among ${outputs.map((o) => `'${o.name}'`).join(', ')}; name it (outputName)`);
  const ev = new StaticEval(graph, new Map([[input.name, [B, dims[1], Hd, Wd]]]), { foldLimit: SWIN_FOLD_LIMIT });
  const params = new ParamCollector();

  const embed = matchSwinEmbedding(ev, input.name, params);
  let x = embed.output;
  let shape: SwinStageShape = { batch: B, height: embed.gridHeight, width: embed.gridWidth, channels: embed.embedDim };
  const depths: number[] = [];
  const blocks: SwinBlockMatch[][] = [];
  const norms: LayerNormMatch[] = [embed.norm];
  for (let s = 0; ; s++) {
    const layer = 1 + 2 * s;
    const stageBlocks: SwinBlockMatch[] = [];
    for (;;) {
      const b = matchSwinBlock(ev, x, shape, s, stageBlocks.length, layer, params);
      if (!b) break;
      stageBlocks.push(b);
      norms.push(...b.norms);
      x = b.output;
    }
    if (stageBlocks.length === 0) throw unrecognized(`Swin stage ${s}`, 'a Swin block (norm1 → window attention → residual Add) reading the stage input', dataConsumers(ev, x)[0] ?? null);
    depths.push(stageBlocks.length);
    blocks.push(stageBlocks);
    if (matchLayerNormFrom(ev, x, shape.channels)) break; // the head's norm
    const merge = matchPatchMerging(ev, x, shape, layer + 1, params);
    norms.push(merge.norm);
    x = merge.output;
    shape = merge.shape;
  }
  const head = matchSwinHead(ev, x, shape, output.name, 2 * depths.length - 1, params);
  norms.push(head.norm);

  const all = blocks.flat();
  const first = all[0];
  const odd = all.find((b) => b.window.join() !== first.window.join() || b.activation !== first.activation || b.qkvBias !== first.qkvBias);
  if (odd) throw new SpdfqError('E_ONNX', `the Swin blocks differ in window size, activation or qkv bias (${first.window.join('×')} ${first.activation} vs ${odd.window.join('×')} ${odd.activation}); the engine needs one of each`);
  const ratios = blocks.map((st, s) => st.map((b) => b.mlpDim / (embed.embedDim * 2 ** s))).flat();
  const mlpRatio = ratios[0];
  // torchvision: hidden = int(dim · mlp_ratio); one ratio must give every stage's width
  const bad = blocks.findIndex((st, s) => st.some((b) => Math.trunc(embed.embedDim * 2 ** s * mlpRatio) !== b.mlpDim));
  if (bad >= 0) throw new SpdfqError('E_ONNX', `stage ${bad}'s MLP width is not int(dim × ${mlpRatio}) as in stage 0; the engine uses one mlp_ratio`);
  const eps = norms[0].eps;
  if (norms.some((n) => Math.fround(n.eps) !== Math.fround(eps))) throw new SpdfqError('E_ONNX', `LayerNorm epsilons differ (${[...new Set(norms.map((n) => n.eps))].join(', ')}); the engine uses one epsilon`);
  const heads = blocks.map((st) => st[0].heads);
  const badHeads = blocks.findIndex((st) => st.some((b) => b.heads !== st[0].heads));
  if (badHeads >= 0) throw new SpdfqError('E_ONNX', `the blocks of stage ${badHeads} have different head counts`);
  let config: SwinConfig;
  try {
    config = completeSwinConfig({
      imageHeight: Hd, imageWidth: Wd, channels: dims[1], patchSize: embed.patchSize, embedDim: embed.embedDim, depths, numHeads: heads,
      windowSize: first.window, mlpRatio, qkvBias: first.qkvBias, layerNormEps: shortestFloat32(eps), numClasses: head.numClasses, activation: first.activation,
    });
  } catch (err) {
    throw new SpdfqError('E_ONNX', `the recognized Swin is not one the engine runs: ${(err as Error).message}`, { cause: err });
  }
  const decomposed = norms[0].nodes[0].opType !== 'LayerNormalization';
  return {
    config,
    weights: params.weights,
    bindings: params.bindings,
    sourceNames: params.sourceNames(),
    forms: { layerNorm: decomposed ? 'decomposed' : 'op', gelu: all.some((b) => b.geluAsOp) ? 'op' : 'decomposed', pooling: head.pooling },
    inputName: input.name,
    outputName: output.name,
    inputDims: dims,
    fixedBatch,
  };
}

/** features.0: Conv(kernel = stride = P) → Permute(0, 2, 3, 1) → LayerNorm. */
function matchSwinEmbedding(ev: StaticEval, input: string, params: ParamCollector): { output: string; norm: LayerNormMatch; patchSize: number; embedDim: number; gridHeight: number; gridWidth: number } {
  const stage = 'the Swin patch embedding (features.0)';
  const users = dataConsumers(ev, input);
  const conv = users[0];
  if (users.length !== 1 || conv.opType !== 'Conv') throw unrecognized(stage, `a patch Conv as the only reader of the input '${input}'`, users[users.length === 1 ? 0 : 1] ?? null);
  const w = ev.value(conv.inputs[1]);
  if (!w || w.dims.length !== 4) throw unrecognized(stage, 'a constant Conv weight [D, C, P, P]', conv);
  const [D, C, kh, kw] = w.dims;
  const strides = attrInts(conv, 'strides') ?? [1, 1];
  const pads = attrInts(conv, 'pads') ?? [0, 0, 0, 0];
  if (kh !== kw) throw new SpdfqError('E_ONNX', `${stage}: the patch Conv has a non-square kernel ${kh}×${kw}; the engine supports square patches only (docs/swin.md)`);
  if (strides[0] !== kh || strides[1] !== kw || pads.some((p) => p !== 0) || attrInt(conv, 'group', 1) !== 1 || !['NOTSET', 'VALID'].includes(attrString(conv, 'auto_pad', 'NOTSET'))) {
    throw unrecognized(stage, `a non-overlapping patch Conv (stride = kernel ${kh}, no padding, group 1); found strides [${strides.join(', ')}], pads [${pads.join(', ')}]`, conv);
  }
  const cs = ev.shape(conv.outputs[0]) as number[];
  const [, , gh, gw] = cs;
  params.add('features.0.0.weight', [D, C, kh, kw], [{ value: w, part: { source: ev.info(conv.inputs[1])?.source ?? null, constDims: w.dims, transposed: false, rowSize: C * kh * kw, paramRow: 0, constRow: 0, rows: D } }]);
  const bias = conv.inputs[2] ? ev.value(conv.inputs[2]) : undefined;
  if (!bias || bias.data.length !== D) throw unrecognized(stage, `a constant Conv bias of ${D} values`, conv);
  params.add('features.0.0.bias', [D], [{ value: bias, part: { source: ev.info(conv.inputs[2])?.source ?? null, constDims: bias.dims, transposed: false, rowSize: 1, paramRow: 0, constRow: 0, rows: D } }]);
  let t = conv.outputs[0];
  for (;;) {
    const next = dataConsumers(ev, t);
    if (next.length !== 1 || !['Transpose', 'Reshape', 'Identity'].includes(next[0].opType)) break;
    t = next[0].outputs[0];
  }
  const B = cs[0];
  const got = new MovementTracer(ev, stage, conv.outputs[0], 'the patch Conv').trace(t);
  const want = new Float64Array(B * gh * gw * D);
  let k = 0;
  for (let b = 0; b < B; b++) for (let y = 0; y < gh; y++) for (let x = 0; x < gw; x++) for (let c = 0; c < D; c++) want[k++] = ((b * D + c) * gh + y) * gw + x + 1;
  if (got.dims.join() !== [B, gh, gw, D].join() || firstDifference(got.data, want) !== null) {
    throw unrecognized(stage, `the Conv output permuted to channels last [batch, ${gh}, ${gw}, ${D}] (Permute([0, 2, 3, 1]))`, ev.graph.producer.get(t) ?? conv);
  }
  const norm = matchLayerNormFrom(ev, t, D);
  if (!norm) throw unrecognized(stage, `a LayerNorm over the ${D} channels after the permute`, dataConsumers(ev, t)[0] ?? conv);
  addLayerNorm(params, 'features.0.2', norm, D);
  return { output: norm.output, norm, patchSize: kh, embedDim: D, gridHeight: gh, gridWidth: gw };
}

const MERGE_MOVEMENT = new Set(['Pad', 'Slice', 'Concat', 'Reshape', 'Transpose', 'Identity', 'Squeeze', 'Unsqueeze']);

/** PatchMerging: pad odd sides, x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2]
 *  concatenated on channels → LayerNorm(4C) → Linear(4C → 2C, no bias). */
function matchPatchMerging(ev: StaticEval, x: string, s: SwinStageShape, layer: number, params: ParamCollector): { output: string; norm: LayerNormMatch; shape: SwinStageShape } {
  const stage = `the Swin patch merging (features.${layer})`;
  const C = s.channels;
  const queue = dataConsumers(ev, x).filter((n) => MERGE_MOVEMENT.has(n.opType));
  if (queue.length === 0) throw unrecognized(stage, `the final LayerNorm (head) or PatchMerging's Pad/Slice of the ${s.height}×${s.width} grid`, dataConsumers(ev, x)[0] ?? null);
  let norm: LayerNormMatch | null = null;
  const seen = new Set<OnnxNode>();
  while (queue.length > 0 && !norm) {
    const n = queue.shift() as OnnxNode;
    if (seen.has(n)) continue;
    seen.add(n);
    const t = n.outputs[0];
    if (ev.shape(t)?.at(-1) === 4 * C) norm = matchLayerNormFrom(ev, t, 4 * C);
    if (!norm) queue.push(...dataConsumers(ev, t).filter((u) => MERGE_MOVEMENT.has(u.opType)));
  }
  if (!norm) throw unrecognized(stage, `a LayerNorm over the ${4 * C} concatenated channels`, [...seen].at(-1) ?? null);
  const H2 = Math.ceil(s.height / 2);
  const W2 = Math.ceil(s.width / 2);
  const got = new MovementTracer(ev, stage, x, 'the stage output').trace(norm.input);
  const want = new Float64Array(s.batch * H2 * W2 * 4 * C);
  let k = 0;
  for (let b = 0; b < s.batch; b++) {
    for (let i = 0; i < H2; i++) {
      for (let j = 0; j < W2; j++) {
        for (let part = 0; part < 4; part++) {
          const src = mergeSource(s.height, s.width, i, j, part);
          for (let c = 0; c < C; c++) want[k++] = src < 0 ? 0 : (b * s.height * s.width + src) * C + c + 1;
        }
      }
    }
  }
  if (got.dims.join() !== [s.batch, H2, W2, 4 * C].join() || firstDifference(got.data, want) !== null) {
    throw unrecognized(stage, `torchvision's 2×2 merge [batch, ${H2}, ${W2}, ${4 * C}] in the order x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2] (odd sides zero-padded); found ${got.dims.join() === [s.batch, H2, W2, 4 * C].join() ? 'another order' : `shape [${got.dims.join(', ')}]`}`, ev.graph.producer.get(norm.input) ?? null);
  }
  const mm = dataConsumers(ev, norm.output).find((n) => n.opType === 'MatMul' || n.opType === 'Gemm');
  const lin = mm ? matchLinear(ev, mm.outputs[0]) : null;
  if (!mm || !lin || lin.inSize !== 4 * C || lin.outSize !== 2 * C) throw unrecognized(stage, `the reduction Linear ${4 * C} → ${2 * C} reading the merge LayerNorm`, mm ?? dataConsumers(ev, norm.output)[0] ?? null);
  const biasAdd = dataConsumers(ev, lin.output).find((n) => n.opType === 'Add' && n.inputs.some((i) => ev.isConstant(i)));
  if (lin.bias || biasAdd) throw unrecognized(stage, 'the reduction Linear without bias (torchvision PatchMerging)', biasAdd ?? lin.nodes[0]);
  addLayerNorm(params, `features.${layer}.norm`, norm, 4 * C);
  params.add(`features.${layer}.reduction.weight`, [2 * C, 4 * C], [lin.weight]);
  return { output: lin.output, norm, shape: { batch: s.batch, height: H2, width: W2, channels: 2 * C } };
}

/** Ops between the pool and the head: the flatten, as torch.onnx writes it (Flatten, Reshape,
 *  Squeeze) or as the dynamo exporter does (as_strided: a Reshape to 1-D, then a Gather of
 *  computed indices). */
const POOL_TO_HEAD = new Set(['Flatten', 'Reshape', 'Squeeze', 'Identity', 'Gather']);

/** norm → permute → AdaptiveAvgPool2d(1) (GlobalAveragePool, or ReduceMean over the grid)
 *  → flatten → head Linear. */
function matchSwinHead(ev: StaticEval, x: string, s: SwinStageShape, output: string, lastLayer: number, params: ParamCollector): { norm: LayerNormMatch; numClasses: number; pooling: string } {
  const stage = 'the Swin classifier head';
  const C = s.channels;
  const norm = matchLayerNormFrom(ev, x, C) as LayerNormMatch;
  let t = output;
  while (ev.graph.producer.get(t)?.opType === 'Identity') t = (ev.graph.producer.get(t) as OnnxNode).inputs[0];
  const head = matchLinear(ev, t);
  if (!head || head.inSize !== C) throw unrecognized(stage, `the classifier Linear (Gemm, or MatMul + Add) on ${C} pooled features producing '${output}'`, ev.graph.producer.get(t) ?? null);
  // pooled → head input: data movement only (checked below); the pool itself averages the whole grid
  let p = head.input;
  while (POOL_TO_HEAD.has(ev.graph.producer.get(p)?.opType ?? '')) p = (ev.graph.producer.get(p) as OnnxNode).inputs[0];
  const pool = ev.graph.producer.get(p);
  if (!pool || !['GlobalAveragePool', 'ReduceMean'].includes(pool.opType)) throw unrecognized(stage, 'the average pool over the grid (GlobalAveragePool or ReduceMean) before the head', pool ?? head.nodes[0]);
  const ids = new MovementTracer(ev, stage, norm.output, 'the final LayerNorm').trace(pool.inputs[0]);
  const rank = ids.dims.length;
  const axes = pool.opType === 'GlobalAveragePool' ? Array.from({ length: rank - 2 }, (_, i) => i + 2) : ev.reduceAxes(pool) ?? [];
  // every output of the mean must average one (batch, channel) over all H·W grid tokens
  const keptDims = ids.dims.map((d, i) => (axes.includes(i) ? 1 : d));
  const groups = new Map<number, Set<number>>();
  const strides = ids.dims.map((_, i) => ids.dims.slice(i + 1).reduce((a, b) => a * b, 1));
  for (let e = 0; e < ids.data.length; e++) {
    let key = 0;
    for (let a = 0, m = 1; a < rank; a++) {
      const c = axes.includes(a) ? 0 : Math.floor(e / strides[a]) % ids.dims[a];
      key = key * keptDims[a] + c;
      m *= keptDims[a];
    }
    const g = groups.get(key) ?? new Set<number>();
    g.add(ids.data[e]);
    groups.set(key, g);
  }
  const HW = s.height * s.width;
  const order: number[] = []; // pooled element → (b·C + c)
  for (const [, g] of [...groups].sort((a, b) => a[0] - b[0])) {
    const members = [...g].map((id) => id - 1);
    const first = members[0];
    const b = Math.floor(first / (HW * C));
    const c = first % C;
    const ok = members.length === HW && members.every((m) => Math.floor(m / (HW * C)) === b && m % C === c);
    if (!ok) throw unrecognized(stage, `a mean over the ${s.height}×${s.width} grid per image and channel; the pool averages other elements`, pool);
    order.push(b * C + c);
  }
  if (order.some((v, i) => v !== i)) throw unrecognized(stage, `pooled features in [batch, ${C}] order`, pool);
  // the head must read the pooled features as [batch, C] in order, whatever ops flatten them
  const read = new MovementTracer(ev, stage, pool.outputs[0], 'the pooled features').trace(head.input);
  const inOrder = Float64Array.from({ length: s.batch * C }, (_, k) => k + 1);
  if (read.dims.join() !== [s.batch, C].join() || firstDifference(read.data, inOrder) !== null) {
    throw unrecognized(stage, `the head reading the pooled features as [batch, ${C}] in order`, head.nodes[0]);
  }
  addLayerNorm(params, 'norm', norm, C);
  addLinear(params, 'head', head);
  void lastLayer;
  return { norm, numClasses: head.outSize, pooling: pool.opType };
}
