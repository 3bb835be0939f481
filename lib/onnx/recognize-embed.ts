// Patch embedding and token assembly, matched forward from the image input:
//
//   image → Conv(kernel = stride = P) → Flatten/Reshape → Transpose → patches [B, G, D]
//   or image → Reshape/Transpose (einops rearrange) → [LayerNorm] → Linear → patches
//   → [LayerNorm] → Concat(axis 1) with Expand(cls_token) [, Expand(dist_token)]
//   → Add(pos_embed) → x0
//
// Also accepted: no prefix tokens (mean-pooled ViTs), and the position embedding added to
// the patches before the Concat (timm no_embed_class), whose prefix rows are then zero.

import { ParamCollector } from './bindings';
import { OnnxNode } from './graph';
import { describeLayout, full, Layout, makeLayout, sameFactors } from './layout';
import { LayerNormMatch, LinearMatch, matchLayerNormFrom, matchLinear, ParamPiece, vectorPiece } from './patterns';
import { attrInt, attrInts, attrString, StaticEval } from './static-eval';
import { LayoutTracer } from './trace';
import { TensorValue } from './tensor-data';
import { unrecognized } from './unrecognized';

export interface EmbedMatch {
  /** 'conv', or 'linear': rearranged patches and a Linear (vit-pytorch). */
  projection: 'conv' | 'linear';
  /** LayerNorms on the flattened patches (before the projection) and on its output. */
  inputNorm: LayerNormMatch | null;
  outputNorm: LayerNormMatch | null;
  channels: number;
  patchSize: number;
  embedDim: number;
  gridHeight: number;
  gridWidth: number;
  classToken: boolean;
  distToken: boolean;
  tokens: number;
  /** The residual stream entering block 0. */
  output: string;
}

const STAGE = 'the patch embedding';
const SHAPE_ONLY = new Set(['Shape', 'Size']);
const LAYOUT_FORWARD = new Set(['Reshape', 'Flatten', 'Transpose', 'Identity', 'Squeeze', 'Unsqueeze', 'Dropout']);

/** Consumers that read values, not only the shape. */
export function dataConsumers(ev: StaticEval, tensor: string): OnnxNode[] {
  return ev.graph.consumersOf(tensor).filter((n) => !SHAPE_ONLY.has(n.opType));
}

function singleDataConsumer(ev: StaticEval, tensor: string, expected: string, at: OnnxNode): OnnxNode {
  const users = dataConsumers(ev, tensor);
  if (users.length !== 1) {
    throw unrecognized(STAGE, `${expected} as the only reader of '${tensor}' (found ${users.length === 0 ? 'none' : users.map((u) => u.opType).join(', ')})`, users[1] ?? at);
  }
  return users[0];
}

interface PatchTokens {
  projection: 'conv' | 'linear';
  inputNorm: LayerNormMatch | null;
  channels: number;
  patchSize: number;
  embedDim: number;
  gridHeight: number;
  gridWidth: number;
  /** [batch, patches (row-major), D] */
  tokens: string;
}

export function matchEmbedding(ev: StaticEval, input: string, batch: number, params: ParamCollector): EmbedMatch {
  const users = dataConsumers(ev, input);
  const first = users[0];
  if (users.length !== 1) {
    throw unrecognized(STAGE, `one reader of the image input '${input}': a patch-embedding Conv, or the Reshape of a patch rearrangement`, users[1] ?? null);
  }
  const patch = first.opType === 'Conv' ? matchConvPatches(ev, first, input, batch, params) : matchRearrangedPatches(ev, input, batch, params);
  const { embedDim: D, gridHeight: gh, gridWidth: gw } = patch;
  let patches = patch.tokens;
  const outputNorm = matchLayerNormFrom(ev, patches, D);
  if (outputNorm) {
    params.add('patch_embed.norm.weight', [D], outputNorm.gamma ? [outputNorm.gamma] : [], 'ones');
    params.add('patch_embed.norm.bias', [D], outputNorm.beta ? [outputNorm.beta] : []);
    patches = outputNorm.output;
  }
  const next = singleDataConsumer(ev, patches, 'Concat with the class token, Add of the position embedding or a LayerNorm', ev.graph.producer.get(patches) ?? first);

  const grid = gh * gw;
  let prefixInputs: string[] = [];
  let posBeforeConcat = false;
  let x = patches;
  let node = next;
  let posName: string | undefined;
  if (node.opType === 'Add') {
    // position embedding on the patches first (no class token, or timm no_embed_class)
    posName = node.inputs.find((i) => i !== x);
    posBeforeConcat = true;
    x = node.outputs[0];
    const after = dataConsumers(ev, x);
    if (after.length === 1 && after[0].opType === 'Concat') node = after[0];
  }
  if (node.opType === 'Concat') {
    const rank = ev.shape(node.outputs[0])?.length ?? 3;
    const axis = attrInt(node, 'axis', 0);
    if ((axis < 0 ? axis + rank : axis) !== 1 || node.inputs[node.inputs.length - 1] !== x) {
      throw unrecognized(STAGE, 'Concat([cls_token, (dist_token,) patches], axis 1) with the patches last', node);
    }
    prefixInputs = node.inputs.slice(0, -1);
    if (prefixInputs.length < 1 || prefixInputs.length > 2) {
      throw unrecognized(STAGE, `one class token, or a class and a distillation token (found ${prefixInputs.length} prefix inputs)`, node);
    }
    x = node.outputs[0];
  } else if (!posBeforeConcat) {
    throw unrecognized(STAGE, 'Concat with the class token, or Add of the position embedding, after the patch tokens', node);
  }
  const prefix = prefixInputs.length;
  const tokens = prefix + grid;
  prefixInputs.forEach((t, i) => {
    const src = broadcastTokenSource(ev, t, D);
    if (!src) throw unrecognized(STAGE, `a learned token [1, 1, ${D}] broadcast over the batch (Expand) as Concat input ${i}`, ev.graph.producer.get(t) ?? node);
    params.add(i === 0 ? 'cls_token' : 'dist_token', [1, 1, D], [vectorPiece(ev, src, ev.value(src) as TensorValue)]);
  });
  if (!posBeforeConcat) {
    const add = singleDataConsumer(ev, x, 'Add of the position embedding', node);
    if (add.opType !== 'Add') throw unrecognized(STAGE, 'Add of the position embedding after the token Concat', add);
    posName = add.inputs.find((i) => i !== x);
    x = add.outputs[0];
  }
  const posRows = posBeforeConcat ? grid : tokens;
  const pos = posName !== undefined ? ev.value(posName) : undefined;
  if (!pos || !(pos.data instanceof Float32Array) || pos.data.length !== posRows * D || pos.dims[pos.dims.length - 1] !== D) {
    throw unrecognized(STAGE, `a constant position embedding of ${posRows}×${D} values`, ev.graph.producer.get(x) ?? node);
  }
  params.add('pos_embed', [1, tokens, D], [
    { value: pos, part: { source: ev.info(posName as string)?.source ?? null, constDims: pos.dims, transposed: false, rowSize: D, paramRow: posBeforeConcat ? prefix : 0, constRow: 0, rows: posRows } },
  ]);
  const shape = ev.shape(x);
  if (!shape || shape.length !== 3 || shape[1] !== tokens || shape[2] !== D) {
    throw unrecognized(STAGE, `embedded tokens of shape [batch, ${tokens}, ${D}]`, ev.graph.producer.get(x) ?? node);
  }
  return {
    projection: patch.projection,
    inputNorm: patch.inputNorm,
    outputNorm,
    channels: patch.channels,
    patchSize: patch.patchSize,
    embedDim: D,
    gridHeight: gh,
    gridWidth: gw,
    classToken: prefix >= 1,
    distToken: prefix === 2,
    tokens,
    output: x,
  };
}

/** Conv(kernel = stride = P) → Flatten/Reshape → Transpose: [batch, patches, D]. */
function matchConvPatches(ev: StaticEval, conv: OnnxNode, input: string, batch: number, params: ParamCollector): PatchTokens {
  if (conv.inputs[0] !== input) throw unrecognized(STAGE, `a patch-embedding Conv reading the image input '${input}'`, conv);
  const w = ev.value(conv.inputs[1]);
  if (!w || w.dims.length !== 4 || !(w.data instanceof Float32Array)) {
    throw unrecognized(STAGE, 'a constant 4-D Conv weight [D, C, P, P]', conv);
  }
  const [D, C, kh, kw] = w.dims;
  const strides = attrInts(conv, 'strides') ?? [1, 1];
  const pads = attrInts(conv, 'pads') ?? [0, 0, 0, 0];
  const dilations = attrInts(conv, 'dilations') ?? [1, 1];
  const autoPad = attrString(conv, 'auto_pad', 'NOTSET');
  if (kh !== kw || strides[0] !== kh || strides[1] !== kw || pads.some((p) => p !== 0) || dilations.some((d) => d !== 1) || attrInt(conv, 'group', 1) !== 1 || (autoPad !== 'NOTSET' && autoPad !== 'VALID')) {
    throw unrecognized(STAGE, `a square, non-overlapping patch Conv (kernel = stride, no padding, group 1); found kernel ${kh}×${kw}, strides [${strides.join(', ')}], pads [${pads.join(', ')}]`, conv);
  }
  const convShape = ev.shape(conv.outputs[0]);
  if (!convShape || convShape.length !== 4) throw unrecognized(STAGE, 'a Conv output of known shape [B, D, H/P, W/P]', conv);
  const [, , gh, gw] = convShape;
  const weightPiece: ParamPiece = {
    value: w,
    part: { source: ev.info(conv.inputs[1])?.source ?? null, constDims: w.dims, transposed: false, rowSize: C * kh * kw, paramRow: 0, constRow: 0, rows: D },
  };
  params.add('patch_embed.proj.weight', [D, C, kh, kw], [weightPiece]);
  const bias = conv.inputs[2] ? ev.value(conv.inputs[2]) : undefined;
  if (conv.inputs[2] && (!bias || bias.data.length !== D)) throw unrecognized(STAGE, `a constant Conv bias of ${D} values`, conv);
  params.add('patch_embed.proj.bias', [D], bias ? [vectorPiece(ev, conv.inputs[2], bias)] : []);

  // Follow the patch tokens through the layout ops after the Conv, then prove their
  // layout is [batch, row-major patch index, channel].
  let patches = conv.outputs[0];
  let next = singleDataConsumer(ev, patches, 'a Flatten/Reshape of the patch grid', conv);
  for (;;) {
    const users = dataConsumers(ev, patches);
    if (users.length !== 1 || !LAYOUT_FORWARD.has(users[0].opType)) break;
    next = users[0];
    patches = next.outputs[0];
  }
  const convLayout = makeLayout([full('b', batch), full('conv', D), [{ name: 'p', size: gh, stride: gw }], [{ name: 'p', size: gw, stride: 1 }]]);
  const traced = new LayoutTracer(ev, STAGE, new Map([[conv.outputs[0], convLayout]]), { target: 'the patch Conv' }).trace(patches);
  const want = makeLayout([full('b', batch), full('p', gh * gw), full('conv', D)]);
  if (traced.scale !== 1 || !traced.layout.axes.every((a, i) => want.axes[i] && sameFactors(a, want.axes[i])) || traced.layout.axes.length !== 3) {
    throw unrecognized(STAGE, `patch tokens as [batch, patches (row-major), ${D}] (conv.flatten(2).transpose(1, 2)); found ${describeLayout(traced.layout)}`, next);
  }
  return { projection: 'conv', inputNorm: null, channels: C, patchSize: kh, embedDim: D, gridHeight: gh, gridWidth: gw, tokens: patches };
}

/** einops rearrange('b c (h p1) (w p2) -> b (h w) (p1 p2 c)') or any other Reshape /
 *  Transpose sequence that flattens non-overlapping P×P patches, then an optional
 *  LayerNorm over each flattened patch and a Linear: the Conv in another spelling. The
 *  flattening order of a patch is read from its layout and undone on the weights, so the
 *  engine sees the Conv's (channel, y, x) order. */
function matchRearrangedPatches(ev: StaticEval, input: string, batch: number, params: ParamCollector): PatchTokens {
  const inShape = ev.shape(input) as number[];
  const [, C, H, W] = inShape;
  let t = input;
  let next = dataConsumers(ev, t)[0];
  for (;;) {
    const users = dataConsumers(ev, t);
    if (users.length !== 1 || !LAYOUT_FORWARD.has(users[0].opType)) break;
    next = users[0];
    t = next.outputs[0];
  }
  const imageLayout = makeLayout([full('b', batch), full('c', C), full('y', H), full('x', W)]);
  let layout;
  try {
    layout = new LayoutTracer(ev, STAGE, new Map([[input, imageLayout]]), { target: 'the image input' }).trace(t).layout;
  } catch {
    throw unrecognized(STAGE, `a patch-embedding Conv, or Reshape/Transpose flattening P×P patches, reading the image input '${input}'`, dataConsumers(ev, input)[0]);
  }
  const patch = patchOrder(layout, batch, C, H, W);
  if (!patch) {
    throw unrecognized(STAGE, `patches flattened as [batch, patches (row-major), C·P·P] (einops 'b c (h p1) (w p2) -> b (h w) (p1 p2 c)'); found ${describeLayout(layout)}`, next);
  }
  const { P, order } = patch;
  const L = C * P * P;
  const inputNorm = matchLayerNormFrom(ev, t, L);
  const linIn = inputNorm ? inputNorm.output : t;
  const linear = linearReading(ev, linIn);
  if (!linear || linear.inSize !== L) {
    throw unrecognized(STAGE, `the patch Linear [${L} → D] reading the flattened patches`, dataConsumers(ev, linIn)[0] ?? next);
  }
  const D = linear.outSize;
  const reorder = (piece: ParamPiece): ParamPiece => ({ ...piece, part: { ...piece.part, columnOrder: order } });
  if (inputNorm) {
    // the LayerNorm's vectors as one row of L columns, so the same reordering applies
    const row = (piece: ParamPiece): ParamPiece => reorder({ ...piece, part: { ...piece.part, rowSize: L, rows: 1 } });
    params.add('patch_embed.norm_in.weight', [L], inputNorm.gamma ? [row(inputNorm.gamma)] : [], 'ones');
    params.add('patch_embed.norm_in.bias', [L], inputNorm.beta ? [row(inputNorm.beta)] : []);
  }
  params.add('patch_embed.proj.weight', [D, C, P, P], [reorder(linear.weight)]);
  params.add('patch_embed.proj.bias', [D], linear.bias ? [linear.bias] : []);
  const outShape = ev.shape(linear.output);
  if (!outShape || outShape.length !== 3) throw unrecognized(STAGE, `patch tokens of shape [batch, patches, ${D}]`, linear.nodes[0]);
  return { projection: 'linear', inputNorm, channels: C, patchSize: P, embedDim: D, gridHeight: H / P, gridWidth: W / P, tokens: linear.output };
}

/** For a layout [b, (y/P, x/P), (a permutation of c, y%P, x%P)]: P and, for each column
 *  of the Conv order (c, py, px), the column of this layout holding it. */
function patchOrder(l: Layout, batch: number, C: number, H: number, W: number): { P: number; order: Int32Array } | null {
  if (l.axes.length !== 3 || l.meanOver || Object.values(l.offsets).some((o) => o !== 0)) return null;
  const [b, grid, within] = l.axes;
  if (!sameFactors(b, full('b', batch))) return null;
  const inner = (name: string) => within.find((f) => f.name === name);
  const py = inner('y');
  const px = inner('x');
  const P = py?.size ?? 1;
  if (!py || !px || py.stride !== 1 || px.stride !== 1 || px.size !== P || H % P !== 0 || W % P !== 0) return null;
  if (!sameFactors(grid, [...full('y', H / P).map((f) => ({ ...f, stride: P })), ...full('x', W / P).map((f) => ({ ...f, stride: P }))])) return null;
  const c = inner('c');
  if (within.length !== (C > 1 ? 3 : 2) || (C > 1 && (!c || c.size !== C || c.stride !== 1))) return null;
  // column index of (channel, y, x) in this layout's row-major order of `within`
  const order = new Int32Array(C * P * P);
  const digit = (name: string, ch: number, y: number, x: number) => (name === 'c' ? ch : name === 'y' ? y : x);
  for (let ch = 0; ch < C; ch++) {
    for (let y = 0; y < P; y++) {
      for (let x = 0; x < P; x++) {
        let col = 0;
        for (const f of within) col = col * f.size + digit(f.name, ch, y, x);
        order[(ch * P + y) * P + x] = col;
      }
    }
  }
  return { P, order };
}

/** The Linear (MatMul [+ bias Add], or Gemm) whose input is `x`, found from x's readers. */
function linearReading(ev: StaticEval, x: string): LinearMatch | null {
  const mm = dataConsumers(ev, x).find((n) => (n.opType === 'MatMul' || n.opType === 'Gemm') && n.inputs[0] === x);
  if (!mm) return null;
  const after = dataConsumers(ev, mm.outputs[0]);
  if (mm.opType === 'MatMul' && after.length === 1 && after[0].opType === 'Add') {
    const withBias = matchLinear(ev, after[0].outputs[0]);
    if (withBias) return withBias;
  }
  return matchLinear(ev, mm.outputs[0]);
}

/** The constant behind `cls.expand(B, -1, -1)` (Expand or Tile, maybe behind layout ops). */
function broadcastTokenSource(ev: StaticEval, tensor: string, D: number): string | undefined {
  let t = tensor;
  for (let steps = 0; steps < 8; steps++) {
    // walk through the broadcast first: with the batch evaluated, Expand's output is
    // itself a (folded) constant of B·D values
    const n = ev.graph.producer.get(t);
    if (n && ['Expand', 'Tile', 'Identity', 'Reshape', 'Unsqueeze', 'Cast'].includes(n.opType)) {
      t = n.inputs[0];
      continue;
    }
    const v = ev.isConstant(t) ? ev.value(t) : undefined;
    return v && v.data.length === D && v.data instanceof Float32Array ? t : undefined;
  }
  return undefined;
}
