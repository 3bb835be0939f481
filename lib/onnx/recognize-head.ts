// The classifier head, matched backward from the logits output:
//
//   logits ← head(pool(norm(x)))                       timm / HF / torchvision
//   logits ← (head(x[:, 0]) + head_dist(x[:, 1])) / 2  DeiT distilled
//
// pool is a token selection (Gather / Slice + Squeeze of the class token) or a mean over
// the patch tokens (ReduceMean after Slice) or over all tokens (vit-pytorch); norm is a LayerNorm on every token (timm
// `norm`) or on the pooled vector (timm `fc_norm`), or absent (post-norm models).

import { ParamCollector } from './bindings';
import { OnnxNode } from './graph';
import { describeLayout, full, Layout, sameFactors } from './layout';
import { LayerNormMatch, LinearMatch, matchLayerNormFrom, matchLinear, scalarConstant } from './patterns';
import { addLayerNorm, addLinear } from './recognize-block';
import { StaticEval } from './static-eval';
import { StreamShape, streamLayout } from './stream';
import { LayoutTracer } from './trace';
import { unrecognized } from './unrecognized';

export interface HeadMatch {
  pooling: 'token' | 'mean' | 'mean-all';
  finalNorm: 'tokens' | 'pooled' | 'none';
  numClasses: number;
  distilled: boolean;
}

const STAGE = 'the classifier head';
/** Channel names marking which anchor a pooled vector was traced to. */
const RAW = 'stream';
const NORMED = 'normed';

export function matchHead(ev: StaticEval, x: string, output: string, stream: StreamShape, prefix: number, params: ParamCollector): HeadMatch {
  const D = stream.embedDim;
  let t = output;
  while (ev.graph.producer.get(t)?.opType === 'Identity') t = (ev.graph.producer.get(t) as OnnxNode).inputs[0];
  const last = ev.graph.producer.get(t) ?? null;

  // distilled DeiT: (head(x0) + head_dist(x1)) / 2
  let heads: LinearMatch[] = [];
  if (last && (last.opType === 'Div' || last.opType === 'Mul')) {
    const c = scalarConstant(ev, last.inputs[1]);
    const isHalf = c !== undefined && (last.opType === 'Div' ? c === 2 : c === 0.5);
    const sum = ev.graph.producer.get(last.inputs[0]);
    if (!isHalf || !sum || sum.opType !== 'Add') {
      throw unrecognized(STAGE, 'the classifier Linear, or (head + head_dist) / 2 of a distilled DeiT', last);
    }
    const a = matchLinear(ev, sum.inputs[0]);
    const b = matchLinear(ev, sum.inputs[1]);
    if (!a || !b) throw unrecognized(STAGE, 'two classifier Linear layers added (DeiT head and head_dist)', sum);
    heads = [a, b];
  } else {
    const h = matchLinear(ev, t);
    if (!h) throw unrecognized(STAGE, `the classifier Linear (Gemm, or MatMul + Add) producing the output '${output}'`, last);
    heads = [h];
  }

  const finalNorm = matchLayerNormFrom(ev, x, D);
  const anchors = new Map<string, Layout>([[x, streamLayout(stream, RAW)]]);
  if (finalNorm) anchors.set(finalNorm.output, streamLayout(stream, NORMED));

  const pooled = heads.map((h) => {
    if (h.inSize !== D) throw unrecognized(STAGE, `a classifier reading ${D} features (found ${h.inSize})`, h.nodes[0]);
    const fcNorm = matchLayerNormTo(ev, h.input, D);
    const vector = fcNorm ? fcNorm.input : h.input;
    const traced = new LayoutTracer(ev, STAGE, anchors, { allowMean: true, target: 'the token stream after the last block' }).trace(vector);
    return { head: h, fcNorm, layout: traced.layout, scale: traced.scale };
  });

  const describe = (l: Layout) => describeLayout(l) + (l.meanOver ? ` mean over tokens [${l.meanOver.start}, ${l.meanOver.start + l.meanOver.size})` : '');
  const tokenOf = (p: (typeof pooled)[number]): number | 'mean' | 'mean-all' => {
    const l = p.layout;
    const ok = p.scale === 1 && l.axes.length === 2 && sameFactors(l.axes[0], full('b', stream.batch)) && l.axes[1].length === 1 && l.axes[1][0].size === D && l.axes[1][0].stride === 1;
    if (!ok) throw unrecognized(STAGE, `a pooled feature vector [batch, ${D}] read from the token stream; found ${describe(l)}`, p.head.nodes[0]);
    if (l.meanOver) {
      const { start, size } = l.meanOver;
      if (start === prefix && size === stream.tokens - prefix) return 'mean';
      if (start === 0 && size === stream.tokens) return 'mean-all';
      throw unrecognized(STAGE, `mean pooling over the patch tokens [${prefix}, ${stream.tokens}) or over all tokens [0, ${stream.tokens}); found tokens [${start}, ${start + size})`, p.head.nodes[0]);
    }
    return l.offsets.n ?? 0;
  };
  const picks = pooled.map(tokenOf);
  const normedTokens = pooled.map((p) => p.layout.axes[1][0].name === NORMED);
  const normedPooled = pooled.map((p) => p.fcNorm !== null);
  if (normedTokens.some((v) => v !== normedTokens[0]) || normedPooled.some((v) => v !== normedPooled[0])) {
    throw unrecognized(STAGE, 'the same normalization in front of both heads', heads[1].nodes[0]);
  }
  if (normedTokens[0] && normedPooled[0]) {
    throw unrecognized(STAGE, 'one final LayerNorm (on the tokens, or on the pooled vector), not both', pooled[0].head.nodes[0]);
  }

  let distilled = false;
  let order = [0];
  if (heads.length === 2) {
    if (prefix !== 2 || !picks.includes(0) || !picks.includes(1)) {
      throw unrecognized(STAGE, `the two heads reading the class token (0) and the distillation token (1); found tokens ${picks.join(' and ')}`, last);
    }
    distilled = true;
    order = picks[0] === 0 ? [0, 1] : [1, 0];
  } else if (typeof picks[0] === 'number' && (picks[0] !== 0 || prefix < 1)) {
    throw unrecognized(STAGE, `the head reading the class token (token 0) or a mean over the patch tokens; found token ${picks[0]} with ${prefix} prefix token(s)`, heads[0].nodes[0]);
  }
  if (prefix === 2 && !distilled) throw unrecognized(STAGE, 'a distillation head reading token 1 (the graph has a distillation token)', last);

  const norm: LayerNormMatch | null = normedTokens[0] ? finalNorm : pooled[0].fcNorm;
  if (norm) addLayerNorm(params, normedTokens[0] ? 'norm' : 'fc_norm', norm, D);
  addLinear(params, 'head', pooled[order[0]].head);
  if (distilled) addLinear(params, 'head_dist', pooled[order[1]].head);

  const numClasses = heads[0].outSize;
  if (heads.some((h) => h.outSize !== numClasses)) throw unrecognized(STAGE, 'heads with the same number of classes', heads[1].nodes[0]);
  const outShape = ev.shape(output);
  if (!outShape || outShape.length !== 2 || outShape[1] !== numClasses) {
    throw unrecognized(STAGE, `logits of shape [batch, ${numClasses}] (found [${outShape?.join(', ') ?? '?'}])`, last);
  }
  return {
    pooling: typeof picks[0] === 'number' ? 'token' : picks[0],
    finalNorm: normedTokens[0] ? 'tokens' : normedPooled[0] ? 'pooled' : 'none',
    numClasses,
    distilled,
  };
}

/** The LayerNorm whose output is `y` (fc_norm), found by walking back to its input. */
function matchLayerNormTo(ev: StaticEval, y: string, D: number): LayerNormMatch | null {
  const p = ev.graph.producer.get(y);
  if (!p) return null;
  if (p.opType === 'LayerNormalization') {
    const m = matchLayerNormFrom(ev, p.inputs[0], D);
    return m && m.output === y ? m : null;
  }
  // decomposed: find Sub(z, ReduceMean(z)) a few steps up and re-match forward from z
  const stack: { t: string; depth: number }[] = [{ t: y, depth: 0 }];
  const seen = new Set<string>();
  while (stack.length > 0) {
    const { t, depth } = stack.pop() as { t: string; depth: number };
    const n = ev.graph.producer.get(t);
    if (!n || seen.has(t) || depth > 10) continue;
    seen.add(t);
    if (n.opType === 'Sub' && ev.graph.producer.get(n.inputs[1])?.opType === 'ReduceMean') {
      const m = matchLayerNormFrom(ev, n.inputs[0], D);
      if (m && m.output === y) return m;
    }
    for (const i of n.inputs) if (i && !ev.isConstant(i)) stack.push({ t: i, depth: depth + 1 });
  }
  return null;
}
