// Multi-head self-attention, matched from its output back to its input:
//
//   branch ← layout ops ← proj Linear ← layout ops ← MatMul(P, V)
//   P ← Softmax(last axis) ← scalar scale ← MatMul(Q, Kᵀ)
//   Q, K, V ← layout ops (Split / Slice / Gather, Reshape, Transpose) ← q/k/v Linear(s) ← input
//
// The layouts of Q, Kᵀ and V (layout.ts) must read as [batch/head axes…, tokens, head dim]
// with the same batch/head arrangement, and the merged heads entering proj must be in
// head-major order. That makes the match independent of how an exporter wrote the
// reshapes, and yields which rows of which Linear are q, k and v — timm's fused qkv,
// HuggingFace's three Linear layers and torchvision's in_proj all map to one [3D, D] qkv.

import { OnnxNode } from './graph';
import { Factor, Layout, LayoutError, describeLayout, linearLayout, makeLayout, sameFactors } from './layout';
import { LinearMatch, matchLinear, ParamPiece, scalarConstant } from './patterns';
import { attrInt, StaticEval } from './static-eval';
import { StreamShape, isStreamLayout, isTokenwiseLayout, streamLayout, tokenChannel } from './stream';
import { LayoutTracer } from './trace';
import { unrecognized } from './unrecognized';

export interface AttentionMatch {
  numHeads: number;
  headDim: number;
  /** qkv.weight [3D, D] rows q, k, v; each piece covers D rows. */
  qkvWeight: ParamPiece[];
  qkvBias: ParamPiece[];
  proj: LinearMatch;
  /** 'fused': one Linear (timm qkv, torchvision in_proj); 'separate': three (HuggingFace). */
  projections: 'fused' | 'separate';
  /** Batch and heads merged into one axis (torchvision's view(N, B·H, d)). */
  mergedBatchHeads: boolean;
}

/** Maximum relative deviation of the scale from 1/√d (float32 constants: ~1e-7). */
const SCALE_TOLERANCE = 1e-5;

const LAYOUT_ONLY = new Set(['Reshape', 'Transpose', 'Identity', 'Flatten', 'Squeeze', 'Unsqueeze', 'Dropout']);

/** Follow producers through pure layout ops (the tracer re-checks their meaning). */
export function skipLayoutOps(ev: StaticEval, tensor: string): string {
  let t = tensor;
  for (;;) {
    const n = ev.graph.producer.get(t);
    if (!n || !LAYOUT_ONLY.has(n.opType) || ev.isConstant(t)) return t;
    t = n.inputs[0];
  }
}

interface HeadView {
  channel: string;
  /** First row of this block in its Linear's output. */
  rowStart: number;
  heads: number;
  headDim: number;
  /** Roles of the batch/head axes, e.g. "b|h" (timm) or "bh" (torchvision). */
  leadSignature: string;
  lead: Factor[][];
  tokens: Factor[];
  dim: Factor[];
}

export function matchAttention(
  ev: StaticEval,
  branch: string,
  input: string,
  stream: StreamShape,
  stage: string,
): AttentionMatch {
  const D = stream.embedDim;
  const producerOf = (t: string): OnnxNode | null => ev.graph.producer.get(t) ?? null;

  const projOut = skipLayoutOps(ev, branch);
  const proj = matchLinear(ev, projOut);
  if (!proj) throw unrecognized(stage, 'the output projection (MatMul + Add, or Gemm) feeding the residual Add', producerOf(projOut));
  const pvOut = skipLayoutOps(ev, proj.input);
  const pv = producerOf(pvOut);
  if (!pv || pv.opType !== 'MatMul' || pv.inputs.some((i) => ev.isConstant(i))) {
    throw unrecognized(stage, 'MatMul(softmax(Q·Kᵀ), V) feeding the output projection', pv);
  }

  const softmax = softmaxOfProbabilities(ev, pv.inputs[0], stage);
  const { qk, scale } = scaledScores(ev, softmax, stage);

  // trace Q, Kᵀ and V back to the projections of the block input
  const linears = new Map<string, LinearMatch>();
  const onProjection = (m: LinearMatch, inLayout: Layout): Layout => {
    if (!isTokenwiseLayout(inLayout, stream)) {
      throw unrecognized(stage, `q/k/v projections applied to the block input [batch, tokens, ${D}]; found layout ${describeLayout(inLayout)}`, m.nodes[0]);
    }
    const name = `qkv${linears.size}:${m.output}`;
    linears.set(name, m);
    return linearLayout(inLayout, name, m.outSize);
  };
  const anchors = new Map([[input, streamLayout(stream, 'in')]]);
  const tracer = new LayoutTracer(ev, stage, anchors, { onLinear: onProjection, target: 'the q/k/v projections of the block input' });
  const q = tracer.trace(qk.inputs[0]);
  const k = tracer.trace(qk.inputs[1]);
  const v = tracer.trace(pv.inputs[1]);
  if (v.scale !== 1) throw unrecognized(stage, 'V without scaling', pv);

  const view = (l: Layout, which: string, transposed: boolean): HeadView => {
    try {
      return headView(l, stream, transposed);
    } catch (err) {
      if (err instanceof LayoutError) {
        throw unrecognized(stage, `${which} laid out as [batch, heads, tokens, head_dim] (${err.message}; found ${describeLayout(l)})`, which === 'V' ? pv : qk);
      }
      throw err;
    }
  };
  const Q = view(q.layout, 'Q', false);
  const K = view(k.layout, 'Kᵀ', true);
  const V = view(v.layout, 'V', false);
  if (Q.leadSignature !== K.leadSignature || Q.leadSignature !== V.leadSignature || Q.heads !== K.heads || Q.heads !== V.heads) {
    throw unrecognized(stage, `Q, Kᵀ and V with the same batch/head axes (found ${Q.leadSignature}, ${K.leadSignature}, ${V.leadSignature})`, qk);
  }
  const H = Q.heads;
  const d = Q.headDim;
  if (K.headDim !== d || V.headDim !== d || H * d !== D) {
    throw unrecognized(stage, `${H} heads of dim ${d} covering the embedding dim ${D}`, qk);
  }
  const totalScale = scale * q.scale * k.scale;
  if (Math.abs(totalScale * Math.sqrt(d) - 1) > SCALE_TOLERANCE) {
    throw unrecognized(stage, `attention scale 1/√${d} = ${(1 / Math.sqrt(d)).toPrecision(6)} (found ${totalScale.toPrecision(6)}; the engine uses timm's head_dim^-0.5)`, qk);
  }
  const blocks = [Q, K, V];
  const keys = new Set(blocks.map((b) => `${b.channel}@${b.rowStart}`));
  if (keys.size !== 3) throw unrecognized(stage, 'q, k and v taken from different rows of the projections', qk);

  checkHeadsMerged(ev, stage, branch, pv, proj, V, Q.tokens, stream);

  const piece = (b: HeadView, which: number, part: 'weight' | 'bias'): ParamPiece | null => {
    const lin = linears.get(b.channel) as LinearMatch;
    const src = part === 'weight' ? lin.weight : lin.bias;
    if (!src) return null;
    return { value: src.value, part: { ...src.part, paramRow: which * D, constRow: b.rowStart, rows: D } };
  };
  const qkvWeight = blocks.map((b, i) => piece(b, i, 'weight') as ParamPiece);
  const qkvBias = blocks.map((b, i) => piece(b, i, 'bias')).filter((p): p is ParamPiece => p !== null);
  return {
    numHeads: H,
    headDim: d,
    qkvWeight,
    qkvBias,
    proj,
    projections: linears.size === 1 ? 'fused' : 'separate',
    mergedBatchHeads: Q.leadSignature.split('|').some((axis) => axis.length > 1),
  };
}

/** Read a Q / Kᵀ / V layout: leading axes made of the batch and head indices only, then
 *  tokens and the head dim (swapped for Kᵀ). */
function headView(l: Layout, stream: StreamShape, transposed: boolean): HeadView {
  const r = l.axes.length;
  if (r < 2) throw new LayoutError(`rank ${r}`);
  const tokens = transposed ? l.axes[r - 1] : l.axes[r - 2];
  const dim = transposed ? l.axes[r - 2] : l.axes[r - 1];
  if (!sameFactors(tokens, tokenChannel(stream)) || (l.offsets.n ?? 0) !== 0) throw new LayoutError('the token axis is not all tokens in order');
  if (dim.length !== 1 || dim[0].stride !== 1 || !dim[0].name.startsWith('qkv')) throw new LayoutError('the head-dim axis is not a contiguous block of projection channels');
  const channel = dim[0].name;
  const headDim = dim[0].size;
  const lead = l.axes.slice(0, r - 2);
  let heads = 1;
  let batchSeen = false;
  const roles = lead.map((axis) =>
    axis
      .map((f) => {
        if (f.name === 'b' && f.stride === 1 && f.size === stream.batch) {
          batchSeen = true;
          return 'b';
        }
        if (f.name === channel && f.stride === headDim) {
          heads = f.size;
          return 'h';
        }
        throw new LayoutError(`unexpected index ${f.name} in the batch/head axes`);
      })
      .join(''),
  );
  if (stream.batch > 1 && !batchSeen) throw new LayoutError('no batch axis');
  return { channel, rowStart: l.offsets[channel] ?? 0, heads, headDim, leadSignature: roles.join('|'), lead, tokens, dim };
}

/** The Softmax over the keys behind the attention probabilities `probs` (Identity,
 *  Dropout and Cast in between are skipped). */
function softmaxOfProbabilities(ev: StaticEval, probs: string, stage: string): OnnxNode {
  const producerOf = (t: string): OnnxNode | null => ev.graph.producer.get(t) ?? null;
  for (;;) {
    const n = producerOf(probs);
    if (n && ['Identity', 'Dropout', 'Cast'].includes(n.opType)) probs = n.inputs[0];
    else if (n && isNanGuard(ev, n)) probs = n.inputs[2];
    else break;
  }
  const softmax = producerOf(probs);
  if (!softmax || softmax.opType !== 'Softmax') throw unrecognized(stage, 'Softmax producing the attention probabilities', softmax);
  const rank = ev.shape(softmax.inputs[0])?.length ?? 0;
  // before opset 13 Softmax defaults to axis 1 and flattens the trailing axes
  const axis = attrInt(softmax, 'axis', ev.graph.opset >= 13 ? -1 : 1);
  if ((axis < 0 ? axis + rank : axis) !== rank - 1) {
    throw unrecognized(stage, `Softmax over the last axis (the keys), found axis ${axis} of rank ${rank}`, softmax);
  }
  return softmax;
}

/** `Where(IsNaN(p), 0, p)`: torch's export of scaled_dot_product_attention (TorchScript
 *  and dynamo) zeroes the NaN rows a fully masked query would give. The probabilities of
 *  a Softmax over finite scores are never NaN, so the guard is the identity here. */
function isNanGuard(ev: StaticEval, n: OnnxNode): boolean {
  if (n.opType !== 'Where' || n.inputs.length !== 3) return false;
  const cond = ev.graph.producer.get(n.inputs[0]);
  return cond?.opType === 'IsNaN' && cond.inputs[0] === n.inputs[2] && scalarConstant(ev, n.inputs[1]) === 0;
}

/** An additive attention mask that masks nothing: a tensor that evaluates (for the
 *  evaluation's batch) to zeros everywhere. HuggingFace transformers ≥ 5 passes an
 *  all-true mask to scaled_dot_product_attention for ViTs, exported as
 *  Add(scores, Where(mask, 0, −inf)). */
function isZeroMask(ev: StaticEval, t: string): boolean {
  const v = ev.value(t);
  return v !== undefined && v.data.every((x) => x === 0);
}

/** scores = scale · Q·Kᵀ before the Softmax: the MatMul and the constant scale factors
 *  between them (the scale may also sit on Q and/or Kᵀ; the tracer collects that part). */
function scaledScores(ev: StaticEval, softmax: OnnxNode, stage: string): { qk: OnnxNode; scale: number } {
  const producerOf = (t: string): OnnxNode | null => ev.graph.producer.get(t) ?? null;
  let scores = softmax.inputs[0];
  let scale = 1;
  for (;;) {
    const n = producerOf(scores);
    if (!n) break;
    if (n.opType === 'Identity' || n.opType === 'Cast') {
      scores = n.inputs[0];
      continue;
    }
    if (n.opType === 'Add') {
      const masked = isZeroMask(ev, n.inputs[1]) ? 0 : isZeroMask(ev, n.inputs[0]) ? 1 : -1;
      if (masked < 0) throw unrecognized(stage, 'attention scores without a mask (an added mask must be all zeros: masked attention is not supported)', n);
      scores = n.inputs[masked];
      continue;
    }
    if (n.opType !== 'Mul' && n.opType !== 'Div') break;
    const c1 = scalarConstant(ev, n.inputs[1]);
    const c0 = n.opType === 'Mul' ? scalarConstant(ev, n.inputs[0]) : undefined;
    if (c1 !== undefined) {
      scale = n.opType === 'Mul' ? scale * c1 : scale / c1;
      scores = n.inputs[0];
    } else if (c0 !== undefined) {
      scale *= c0;
      scores = n.inputs[1];
    } else break;
  }
  const qk = producerOf(scores);
  if (!qk || qk.opType !== 'MatMul') throw unrecognized(stage, 'MatMul(Q, Kᵀ) computing the attention scores', qk);
  return { qk, scale };
}

/** The product P·V, heads merged in head-major order, must be what the output projection
 *  reads, and the projection's output must be laid out as the residual stream. */
function checkHeadsMerged(ev: StaticEval, stage: string, branch: string, pv: OnnxNode, proj: LinearMatch, V: HeadView, tokenAxis: Factor[], stream: StreamShape): void {
  const D = stream.embedDim;
  const pvLayout = makeLayout([...V.lead, tokenAxis, V.dim], { [V.channel]: V.rowStart });
  const projAnchors = new Map([[pv.outputs[0], pvLayout]]);
  const onProj = (m: LinearMatch, inLayout: Layout): Layout => {
    const last = inLayout.axes[inLayout.axes.length - 1];
    const headMajor = last.length === 1 && last[0].name === V.channel && last[0].size === D && last[0].stride === 1 && (inLayout.offsets[V.channel] ?? 0) === V.rowStart;
    if (m.output !== proj.output || !headMajor) {
      throw unrecognized(stage, `the heads merged as [batch, tokens, heads·head_dim] (head-major) entering the output projection; found ${describeLayout(inLayout)}`, m.nodes[0]);
    }
    return linearLayout(inLayout, 'proj', m.outSize);
  };
  const out = new LayoutTracer(ev, stage, projAnchors, { onLinear: onProj, target: 'the attention output projection' }).trace(branch);
  if (out.scale !== 1 || !isStreamLayout(out.layout, stream)) {
    throw unrecognized(stage, `the attention output laid out as the residual stream [batch, tokens, ${D}]; found ${describeLayout(out.layout)}`, ev.graph.producer.get(branch) ?? null);
  }
}
