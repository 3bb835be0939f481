// Patch embedding and token assembly, matched forward from the image input:
//
//   image → Conv(kernel = stride = P) → Flatten/Reshape → Transpose → patches [B, G, D]
//   → Concat(axis 1) with Expand(cls_token) [, Expand(dist_token)] → Add(pos_embed) → x0
//
// Also accepted: no prefix tokens (mean-pooled ViTs), and the position embedding added to
// the patches before the Concat (timm no_embed_class), whose prefix rows are then zero.

import { ParamCollector } from './bindings';
import { OnnxNode } from './graph';
import { describeLayout, full, makeLayout, sameFactors } from './layout';
import { ParamPiece, vectorPiece } from './patterns';
import { attrInt, attrInts, attrString, StaticEval } from './static-eval';
import { LayoutTracer } from './trace';
import { TensorValue } from './tensor-data';
import { unrecognized } from './unrecognized';

export interface EmbedMatch {
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

export function matchEmbedding(ev: StaticEval, input: string, batch: number, params: ParamCollector): EmbedMatch {
  const users = dataConsumers(ev, input);
  const conv = users[0];
  if (users.length !== 1 || conv.opType !== 'Conv' || conv.inputs[0] !== input) {
    throw unrecognized(STAGE, `a patch-embedding Conv reading the image input '${input}'`, users[0] ?? null);
  }
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

  // Follow the patch tokens to the first op that is not a layout op, then prove their
  // layout is [batch, row-major patch index, channel].
  let patches = conv.outputs[0];
  let next = singleDataConsumer(ev, patches, 'a Flatten/Reshape of the patch grid', conv);
  while (LAYOUT_FORWARD.has(next.opType)) {
    patches = next.outputs[0];
    next = singleDataConsumer(ev, patches, 'Concat with the class token or Add of the position embedding', next);
  }
  const convLayout = makeLayout([full('b', batch), full('conv', D), [{ name: 'p', size: gh, stride: gw }], [{ name: 'p', size: gw, stride: 1 }]]);
  const traced = new LayoutTracer(ev, STAGE, new Map([[conv.outputs[0], convLayout]]), { target: 'the patch Conv' }).trace(patches);
  const want = makeLayout([full('b', batch), full('p', gh * gw), full('conv', D)]);
  if (traced.scale !== 1 || !traced.layout.axes.every((a, i) => want.axes[i] && sameFactors(a, want.axes[i])) || traced.layout.axes.length !== 3) {
    throw unrecognized(STAGE, `patch tokens as [batch, patches (row-major), ${D}] (conv.flatten(2).transpose(1, 2)); found ${describeLayout(traced.layout)}`, next);
  }

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
    channels: C,
    patchSize: kh,
    embedDim: D,
    gridHeight: gh,
    gridWidth: gw,
    classToken: prefix >= 1,
    distToken: prefix === 2,
    tokens,
    output: x,
  };
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
