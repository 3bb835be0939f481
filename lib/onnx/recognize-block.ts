// One transformer block, matched from the residual stream tensor that enters it:
//
//   pre-norm  (timm, HF, torchvision, nn.TransformerEncoderLayer(norm_first=True)):
//             x1 = x + attn(norm1(x));  x2 = x1 + mlp(norm2(x1))
//   post-norm (timm ResPostBlock, nn.TransformerEncoderLayer's default):
//             x1 = norm1(x + attn(x));  x2 = norm2(x1 + mlp(x1))
//
// The residual Add is found among the stream tensor's readers; its other operand is the
// branch, matched backward (recognize-attention.ts, matchMlp below). A branch may end in a
// LayerScale (γ ⊙ branch), which is folded into the Linear before it.

import { ParamCollector } from './bindings';
import { OnnxNode } from './graph';
import { describeLayout, Layout, linearLayout } from './layout';
import { MlpActivation } from '../vit-config';
import { LayerNormMatch, LinearMatch, ParamPiece, matchActivation, matchLayerNormFrom, matchLayerScale, matchLinear } from './patterns';
import { matchAttention, skipLayoutOps, AttentionMatch } from './recognize-attention';
import { StaticEval } from './static-eval';
import { isStreamLayout, isTokenwiseLayout, StreamShape, streamLayout } from './stream';
import { LayoutTracer } from './trace';
import { unrecognized } from './unrecognized';

export interface BlockMatch {
  output: string;
  normPlacement: 'pre' | 'post';
  attention: AttentionMatch;
  mlpDim: number;
  activation: MlpActivation;
  layerNorms: LayerNormMatch[];
  /** Which branches carried a LayerScale (folded into proj / fc2). */
  layerScale: { attention: boolean; mlp: boolean };
  /** Graph forms, for reports. */
  geluAsOp: boolean;
}

/** The residual Add reading the stream tensor `x`, or null if there is none (the head). */
export function residualAdd(ev: StaticEval, x: string, stage: string): OnnxNode | null {
  const adds = ev.graph.consumersOf(x).filter((n) => n.opType === 'Add' && n.inputs.every((i) => !ev.isConstant(i)) && n.inputs.includes(x));
  if (adds.length > 1) throw unrecognized(stage, `one residual Add reading '${x}' (found ${adds.length})`, adds[1]);
  return adds[0] ?? null;
}

function otherInput(n: OnnxNode, x: string): string {
  return n.inputs[0] === x ? n.inputs[1] : n.inputs[0];
}

export function matchBlock(ev: StaticEval, x: string, stream: StreamShape, index: number, params: ParamCollector): BlockMatch | null {
  const stage = `block ${index}`;
  const add1 = residualAdd(ev, x, stage);
  if (!add1) return null;
  const D = stream.embedDim;
  const ln1 = matchLayerNormFrom(ev, x, D);
  const pre = ln1 !== null;
  const attnScale = matchLayerScale(ev, otherInput(add1, x), D);
  const attention = matchAttention(ev, attnScale?.input ?? otherInput(add1, x), pre ? ln1.output : x, stream, `the attention of block ${index}`);
  let x1 = add1.outputs[0];
  const norms: LayerNormMatch[] = [];
  if (pre) norms.push(ln1);
  else {
    const post1 = matchLayerNormFrom(ev, x1, D);
    if (!post1) throw unrecognized(stage, 'a LayerNorm after the attention residual Add (post-norm block) or before the attention (pre-norm)', add1);
    norms.push(post1);
    x1 = post1.output;
  }
  const add2 = residualAdd(ev, x1, stage);
  if (!add2) throw unrecognized(stage, 'the MLP residual Add after the attention', ev.graph.consumersOf(x1)[0] ?? null);
  let mlpInput = x1;
  if (pre) {
    const ln2 = matchLayerNormFrom(ev, x1, D);
    if (!ln2) throw unrecognized(stage, 'the LayerNorm before the MLP (norm2)', ev.graph.consumersOf(x1).find((n) => n !== add2) ?? add2);
    norms.push(ln2);
    mlpInput = ln2.output;
  }
  const mlpScale = matchLayerScale(ev, otherInput(add2, x1), D);
  const mlp = matchMlp(ev, mlpScale?.input ?? otherInput(add2, x1), mlpInput, stream, `the MLP of block ${index}`);
  let output = add2.outputs[0];
  if (!pre) {
    const post2 = matchLayerNormFrom(ev, output, D);
    if (!post2) throw unrecognized(stage, 'a LayerNorm after the MLP residual Add (post-norm block)', add2);
    norms.push(post2);
    output = post2.output;
  }

  const p = `blocks.${index}.`;
  addLayerNorm(params, `${p}norm1`, norms[0], D);
  params.add(`${p}attn.qkv.weight`, [3 * D, D], attention.qkvWeight);
  if (attention.qkvBias.length > 0) params.add(`${p}attn.qkv.bias`, [3 * D], attention.qkvBias);
  addLinear(params, `${p}attn.proj`, attention.proj, attnScale?.gamma);
  addLayerNorm(params, `${p}norm2`, norms[1], D);
  addLinear(params, `${p}mlp.fc1`, mlp.fc1);
  addLinear(params, `${p}mlp.fc2`, mlp.fc2, mlpScale?.gamma);
  return {
    output,
    normPlacement: pre ? 'pre' : 'post',
    attention,
    mlpDim: mlp.fc1.outSize,
    activation: mlp.activation,
    layerNorms: norms,
    layerScale: { attention: attnScale !== null, mlp: mlpScale !== null },
    geluAsOp: mlp.geluAsOp,
  };
}

/** A Linear's weight and bias; `rowScale` multiplies each output channel (a LayerScale
 *  folded in). */
export function addLinear(params: ParamCollector, name: string, m: LinearMatch, rowScale?: Float32Array): void {
  const scaled = (piece: ParamPiece): ParamPiece => (rowScale ? { ...piece, part: { ...piece.part, rowScale: rowScale.subarray(piece.part.paramRow, piece.part.paramRow + piece.part.rows) } } : piece);
  params.add(`${name}.weight`, [m.outSize, m.inSize], [scaled(m.weight)]);
  params.add(`${name}.bias`, [m.outSize], m.bias ? [scaled(m.bias)] : []);
}

export function addLayerNorm(params: ParamCollector, name: string, ln: LayerNormMatch, D: number): void {
  params.add(`${name}.weight`, [D], ln.gamma ? [ln.gamma] : [], 'ones');
  params.add(`${name}.bias`, [D], ln.beta ? [ln.beta] : []);
}

interface MlpMatch {
  fc1: LinearMatch;
  fc2: LinearMatch;
  activation: MlpActivation;
  geluAsOp: boolean;
}

/** branch ← layout ops ← fc2 ← activation ← fc1 ← layout ops ← input */
function matchMlp(ev: StaticEval, branch: string, input: string, stream: StreamShape, stage: string): MlpMatch {
  const D = stream.embedDim;
  const fc2Out = skipLayoutOps(ev, branch);
  const fc2 = matchLinear(ev, fc2Out);
  if (!fc2) throw unrecognized(stage, 'fc2 (MatMul + Add, or Gemm) feeding the residual Add', ev.graph.producer.get(fc2Out) ?? null);
  const act = matchActivation(ev, fc2.input);
  const fc1 = matchLinear(ev, act.input);
  if (!fc1) throw unrecognized(stage, 'fc1 (MatMul + Add, or Gemm) before the activation', ev.graph.producer.get(act.input) ?? null);
  if (fc1.inSize !== D || fc2.outSize !== D || fc2.inSize !== fc1.outSize) {
    throw unrecognized(stage, `fc1 [${D} → M] and fc2 [M → ${D}]; found ${fc1.inSize} → ${fc1.outSize} and ${fc2.inSize} → ${fc2.outSize}`, fc2.nodes[0]);
  }
  let fc1Layout: Layout | undefined;
  const onLinear = (m: LinearMatch, inLayout: Layout): Layout => {
    if (m.output === fc1.output && isTokenwiseLayout(inLayout, stream)) return (fc1Layout = linearLayout(inLayout, 'fc1', m.outSize));
    if (m.output === fc2.output && fc1Layout) {
      const last = inLayout.axes[inLayout.axes.length - 1];
      if (last.length === 1 && last[0].name === 'fc1' && last[0].size === fc1.outSize) return linearLayout(inLayout, 'fc2', m.outSize);
    }
    throw unrecognized(stage, `the MLP applied per token to [batch, tokens, ${D}]; found layout ${describeLayout(inLayout)}`, m.nodes[0]);
  };
  new LayoutTracer(ev, stage, new Map([[input, streamLayout(stream, 'in')]]), { onLinear, target: 'the MLP input' }).trace(fc1.output);
  // the activation is elementwise, so fc2 reads fc1's layout
  const anchors = new Map([[fc2.input, fc1Layout as Layout]]);
  const out = new LayoutTracer(ev, stage, anchors, { onLinear, target: 'fc2' }).trace(branch);
  if (out.scale !== 1 || !isStreamLayout(out.layout, stream)) {
    throw unrecognized(stage, `the MLP output laid out as the residual stream; found ${describeLayout(out.layout)}`, fc2.nodes[0]);
  }
  return { fc1, fc2, activation: act.kind, geluAsOp: act.nodes.some((n) => n.opType === 'Gelu') };
}
