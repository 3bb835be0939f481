// One torchvision Swin V1 block (SwinTransformerBlock), matched from the residual stream
// tensor [B, H, W, C] that enters it:
//
//   x1 = x + proj(window_attention(partition(roll(pad(norm1(x))))))  reversed, rolled back, cropped
//   x2 = x1 + mlp.3(gelu(mlp.0(norm2(x1))))
//
// The compute ops are matched by structure (LayerNorm, Linear, MatMul, Softmax); the data
// movement between them is run on element ids (movement.ts) and compared with torchvision's
// index arithmetic (swin-geometry.ts). The relative position bias arrives as the gathered
// [1, heads, N, N] constant (torch folds table[index]); the table is read back from it and
// every duplicate entry must agree. A shifted block's mask must equal torchvision's.

import { ParamCollector } from './bindings';
import { SpdfqError } from '../errors';
import { describeNode, OnnxNode } from './graph';
import { LayerNormMatch, LinearMatch, matchActivation, matchLayerNormFrom, matchLinear, scalarConstant } from './patterns';
import { addLayerNorm, addLinear, residualAdd } from './recognize-block';
import { attrInt, StaticEval } from './static-eval';
import { relativePositionIndex, shiftMask, windowGeometry, WindowGeometry, windowSources } from './swin-geometry';
import { firstDifference, MovementTracer } from './movement';
import { DataType, numel, TensorValue } from './tensor-data';
import { MlpActivation } from '../vit-config';
import { unrecognized } from './unrecognized';

export interface SwinStageShape {
  batch: number;
  height: number;
  width: number;
  channels: number;
}

export interface SwinBlockMatch {
  output: string;
  heads: number;
  window: [number, number];
  mlpDim: number;
  activation: MlpActivation;
  qkvBias: boolean;
  norms: LayerNormMatch[];
  geluAsOp: boolean;
}

/** Relative tolerance on the attention scale head_dim^−0.5 (float32 constants). */
const SCALE_TOLERANCE = 1e-6;

const MOVEMENT_OPS = new Set(['Identity', 'Dropout', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Transpose', 'Slice', 'Concat', 'Gather', 'Split', 'Pad']);

/** The nearest Linear behind `t` through data-movement ops (breadth first). */
function linearBehind(ev: StaticEval, t: string, limit = 64): LinearMatch | null {
  const queue = [t];
  const seen = new Set<string>();
  while (queue.length > 0 && seen.size < limit) {
    const x = queue.shift() as string;
    if (seen.has(x)) continue;
    seen.add(x);
    const m = matchLinear(ev, x);
    if (m) return m;
    const n = ev.graph.producer.get(x);
    if (n && MOVEMENT_OPS.has(n.opType)) queue.push(...n.inputs.slice(0, 1), ...(n.opType === 'Concat' ? n.inputs.slice(1) : []));
  }
  return null;
}

/** `t` itself, or the Reshape that is its only reader when that keeps the channels as the
 *  last axis: timm's Swin block adds the attention residual on [B, H, W, C], views it as
 *  [B, H·W, C] for norm2, the MLP and their residual, and views the sum back. A Reshape keeps
 *  the row-major element order, and LayerNorm, Linear and Add act on each row of C alone, so
 *  the view computes what torchvision's block computes on [B, H, W, C]. */
function tokenView(ev: StaticEval, t: string, C: number): string {
  const readers = ev.graph.consumersOf(t);
  if (readers.length !== 1 || readers[0].opType !== 'Reshape' || readers[0].inputs[0] !== t) return t;
  const shape = ev.shape(readers[0].outputs[0]);
  return shape && shape[shape.length - 1] === C ? readers[0].outputs[0] : t;
}

/** The nearest node of `op` behind `t` through data-movement ops. */
function nodeBehind(ev: StaticEval, t: string, accept: (n: OnnxNode) => boolean): OnnxNode | null {
  let x = t;
  for (let steps = 0; steps < 32; steps++) {
    const n = ev.graph.producer.get(x);
    if (!n) return null;
    if (accept(n)) return n;
    if (!MOVEMENT_OPS.has(n.opType)) return null;
    x = n.inputs[0];
  }
  return null;
}

/** Strips scalar Mul/Div in front of `t`: the tensor behind them and their product. */
function unscale(ev: StaticEval, t: string): { tensor: string; scale: number } {
  let scale = 1;
  for (;;) {
    const n = ev.graph.producer.get(t);
    if (!n || (n.opType !== 'Mul' && n.opType !== 'Div')) return { tensor: t, scale };
    const c1 = scalarConstant(ev, n.inputs[1]);
    const c0 = n.opType === 'Mul' ? scalarConstant(ev, n.inputs[0]) : undefined;
    if (c1 !== undefined && !ev.isConstant(n.inputs[0])) {
      scale = n.opType === 'Mul' ? scale * c1 : scale / c1;
      t = n.inputs[0];
    } else if (c0 !== undefined && !ev.isConstant(n.inputs[1])) {
      scale *= c0;
      t = n.inputs[1];
    } else return { tensor: t, scale };
  }
}

function expectIds(stage: string, what: string, got: TensorValue, want: Float64Array, wantDims: number[], at: OnnxNode | null, describe: (i: number) => string): void {
  const sameDims = got.dims.length === wantDims.length && got.dims.every((d, i) => d === wantDims[i]);
  const diff = sameDims ? firstDifference(got.data, want) : 0;
  if (diff !== null) {
    throw unrecognized(stage, `${what} [${wantDims.join(', ')}]; found ${sameDims ? `a different element order (first at ${describe(diff)})` : `shape [${got.dims.join(', ')}]`}`, at);
  }
}

export function matchSwinBlock(ev: StaticEval, x: string, s: SwinStageShape, stageIndex: number, blockIndex: number, layer: number, params: ParamCollector): SwinBlockMatch | null {
  const stage = `Swin stage ${stageIndex} block ${blockIndex} (features.${layer}.${blockIndex})`;
  const add1 = residualAdd(ev, x, stage);
  if (!add1) return null;
  const { batch: B, height: H, width: W, channels: C } = s;
  const ln1 = matchLayerNormFrom(ev, x, C);
  if (!ln1) throw unrecognized(stage, `norm1: a LayerNorm over the ${C} channels of the block input`, ev.graph.consumersOf(x).find((n) => n !== add1) ?? add1);
  const branch = add1.inputs[0] === x ? add1.inputs[1] : add1.inputs[0];

  // attention output projection and the P·V product before it
  const proj = linearBehind(ev, branch);
  if (!proj || proj.inSize !== C || proj.outSize !== C) throw unrecognized(stage, `the attention projection (Linear ${C} → ${C}) behind the residual Add`, ev.graph.producer.get(branch) ?? add1);
  const pv = nodeBehind(ev, proj.input, (n) => n.opType === 'MatMul' && !ev.isConstant(n.inputs[1]));
  const pvShape = pv ? ev.shape(pv.outputs[0]) : null;
  if (!pv || !pvShape || pvShape.length !== 4) throw unrecognized(stage, 'MatMul(attention probabilities, V) [windows·B, heads, N, head_dim] before the projection', ev.graph.producer.get(proj.input) ?? proj.nodes[0]);
  const [BW, heads, N, d] = pvShape;
  if (heads * d !== C) throw unrecognized(stage, `heads × head_dim = ${C}; found ${heads} × ${d}`, pv);

  // window size: the factorization of N whose torchvision partition the graph computes
  const qkv = linearBehind(ev, pv.inputs[1]);
  if (!qkv || qkv.inSize !== C || qkv.outSize !== 3 * C) throw unrecognized(stage, `the qkv Linear (${C} → ${3 * C}) behind V`, ev.graph.producer.get(pv.inputs[1]) ?? pv);
  const partition = new MovementTracer(ev, stage, ln1.output, 'the output of norm1').trace(qkv.input);
  const shifted = blockIndex % 2 === 1;
  let geom: WindowGeometry | null = null;
  for (let wh = 1; wh <= N && !geom; wh++) {
    if (N % wh !== 0) continue;
    const g = windowGeometry(H, W, [wh, N / wh], shifted);
    if (B * g.windowsY * g.windowsX !== BW) continue;
    const want = windowIds(g, B, C);
    if (partition.dims.length === 3 && firstDifference(partition.data, want) === null) geom = g;
  }
  if (!geom) {
    throw unrecognized(stage, `torchvision's window partition of the ${H}×${W} grid (zero pad at the bottom/right, roll by −window/2 in odd blocks, ${N}-token windows) feeding the qkv Linear; the ops between norm1 and qkv compute another order`, qkv.nodes[0]);
  }
  const [wh, ww] = geom.window;
  const nW = geom.windowsY * geom.windowsX;

  // window reverse: proj output [B·nW, N, C] → roll back → crop → residual branch
  const back = new MovementTracer(ev, stage, proj.output, 'the attention projection').trace(branch);
  expectIds(stage, "torchvision's window reverse (merge windows, roll back by +shift, crop the padding) into the residual Add", back, reverseIds(geom, B, C), [B, H, W, C], ev.graph.producer.get(branch) ?? add1, (i) => `element ${i}`);

  // heads: q, k, v from the qkv output and the merge of heads before proj
  const headsMerged = new MovementTracer(ev, stage, pv.outputs[0], 'P·V').trace(proj.input);
  expectIds(stage, 'the heads merged as [windows·B, N, heads·head_dim] (transpose(1, 2).reshape) entering proj', headsMerged, mergeHeadIds(BW, heads, N, d), [BW, N, C], proj.nodes[0], (i) => `element ${i}`);
  const probs = nodeBehind(ev, pv.inputs[0], (n) => n.opType === 'Softmax');
  if (!probs) throw unrecognized(stage, 'Softmax producing the attention probabilities', ev.graph.producer.get(pv.inputs[0]) ?? pv);
  const axis = attrInt(probs, 'axis', -1);
  if (axis !== -1 && axis !== 3) throw unrecognized(stage, 'Softmax over the last axis (the keys)', probs);
  const { qk, bias, mask } = scoreTerms(ev, stage, probs, BW, heads, N, B, nW);
  const qkvIds = new MovementTracer(ev, stage, qkv.output, 'the qkv Linear');
  const q = unscale(ev, qk.inputs[0]);
  const k = unscale(ev, qk.inputs[1]);
  expectIds(stage, 'q = qkv[..., 0:C] split into heads [windows·B, heads, N, head_dim]', qkvIds.trace(q.tensor), headIds(BW, heads, N, d, 0, false), [BW, heads, N, d], qk, (i) => `element ${i}`);
  expectIds(stage, 'kᵀ = qkv[..., C:2C] split into heads and transposed [windows·B, heads, head_dim, N]', qkvIds.trace(k.tensor), headIds(BW, heads, N, d, 1, true), [BW, heads, d, N], qk, (i) => `element ${i}`);
  expectIds(stage, 'v = qkv[..., 2C:3C] split into heads [windows·B, heads, N, head_dim]', qkvIds.trace(pv.inputs[1]), headIds(BW, heads, N, d, 2, false), [BW, heads, N, d], pv, (i) => `element ${i}`);
  const scale = q.scale * k.scale;
  if (Math.abs(scale * Math.sqrt(d) - 1) > SCALE_TOLERANCE) throw unrecognized(stage, `the attention scale head_dim^-0.5 = ${(1 / Math.sqrt(d)).toPrecision(6)} on Q·Kᵀ; found ${scale.toPrecision(6)}`, qk);

  // relative position bias: read the table back through torchvision's index
  const table = biasTable(stage, bias.value, [wh, ww], heads, bias.node);
  // the shift mask: torchvision's, exactly, or none when the block does not shift
  const wantMask = shiftMask(geom);
  if (!wantMask !== !mask) {
    throw unrecognized(stage, wantMask ? `the shifted-window mask added to the logits (shift ${geom.shift.join('×')})` : 'no mask (this block does not shift its windows)', mask?.node ?? probs);
  }
  if (wantMask && mask) {
    const diff = firstDifference(mask.value.data, wantMask);
    if (diff !== null) {
      const w = Math.floor(diff / (N * N));
      throw unrecognized(stage, `torchvision's shift mask (0 within a region, ${-100} across regions) for shift ${geom.shift.join('×')}; found ${mask.value.data[diff]} instead of ${wantMask[diff]} at window ${w}, query ${Math.floor(diff / N) % N}, key ${diff % N}`, mask.node);
    }
  }

  // MLP (timm runs it on the tokens viewed as [B, H·W, C]: the same rows, see tokenView)
  const x1 = tokenView(ev, add1.outputs[0], C);
  const add2 = residualAdd(ev, x1, stage);
  if (!add2) throw unrecognized(stage, 'the MLP residual Add after the attention residual', ev.graph.consumersOf(x1)[0] ?? add1);
  const ln2 = matchLayerNormFrom(ev, x1, C);
  if (!ln2) throw unrecognized(stage, 'norm2: a LayerNorm before the MLP', ev.graph.consumersOf(x1).find((n) => n !== add2) ?? add2);
  let mlpOut = add2.inputs[0] === x1 ? add2.inputs[1] : add2.inputs[0];
  while (['Identity', 'Dropout'].includes(ev.graph.producer.get(mlpOut)?.opType ?? '')) mlpOut = (ev.graph.producer.get(mlpOut) as OnnxNode).inputs[0];
  const fc2 = matchLinear(ev, mlpOut);
  if (!fc2) throw unrecognized(stage, 'mlp.3 (MatMul + Add) feeding the MLP residual Add', ev.graph.producer.get(mlpOut) ?? add2);
  let actIn = fc2.input;
  while (['Identity', 'Dropout'].includes(ev.graph.producer.get(actIn)?.opType ?? '')) actIn = (ev.graph.producer.get(actIn) as OnnxNode).inputs[0];
  const act = matchActivation(ev, actIn);
  const fc1 = matchLinear(ev, act.input);
  if (!fc1 || fc1.input !== ln2.output || fc1.inSize !== C || fc2.outSize !== C || fc2.inSize !== fc1.outSize) {
    throw unrecognized(stage, `mlp.0 [${C} → M] reading norm2 and mlp.3 [M → ${C}]`, fc1?.nodes[0] ?? ev.graph.producer.get(act.input) ?? fc2.nodes[0]);
  }

  const p = `features.${layer}.${blockIndex}.`;
  addLayerNorm(params, `${p}norm1`, ln1, C);
  const T = (2 * wh - 1) * (2 * ww - 1);
  params.add(`${p}attn.relative_position_bias_table`, [T, heads], [
    { value: { dataType: DataType.FLOAT, dims: [T, heads], data: table }, part: { source: null, constDims: [T, heads], transposed: false, rowSize: heads, paramRow: 0, constRow: 0, rows: T } },
  ]);
  params.add(`${p}attn.qkv.weight`, [3 * C, C], [qkv.weight]);
  if (qkv.bias) params.add(`${p}attn.qkv.bias`, [3 * C], [qkv.bias]);
  addLinear(params, `${p}attn.proj`, proj);
  addLayerNorm(params, `${p}norm2`, ln2, C);
  addLinear(params, `${p}mlp.0`, fc1);
  addLinear(params, `${p}mlp.3`, fc2);
  const out = add2.outputs[0];
  const grid = tokenView(ev, out, C);
  return { output: grid !== out && ev.shape(grid)?.join() === [B, H, W, C].join() ? grid : out, heads, window: [wh, ww], mlpDim: fc1.outSize, activation: act.kind, qkvBias: qkv.bias !== null, norms: [ln1, ln2], geluAsOp: act.nodes.some((n) => n.opType === 'Gelu') };
}

/** Ids of norm1's output [B, H, W, C] as the windows [B·nW, N, C] hold them. */
function windowIds(g: WindowGeometry, B: number, C: number): Float64Array {
  const src = windowSources(g);
  const out = new Float64Array(B * src.length * C);
  let k = 0;
  for (let b = 0; b < B; b++) {
    for (const t of src) for (let c = 0; c < C; c++) out[k++] = t < 0 ? 0 : (b * g.height * g.width + t) * C + c + 1;
  }
  return out;
}

/** Ids of the projection output [B·nW, N, C] as the residual branch [B, H, W, C] holds them. */
function reverseIds(g: WindowGeometry, B: number, C: number): Float64Array {
  const src = windowSources(g);
  const perImage = src.length;
  const out = new Float64Array(B * g.height * g.width * C);
  for (let b = 0; b < B; b++) {
    src.forEach((t, w) => {
      if (t < 0) return;
      for (let c = 0; c < C; c++) out[(b * g.height * g.width + t) * C + c] = (b * perImage + w) * C + c + 1;
    });
  }
  return out;
}

/** Ids of P·V [BW, heads, N, d] as proj's input [BW, N, heads·d] holds them. */
function mergeHeadIds(BW: number, heads: number, N: number, d: number): Float64Array {
  const out = new Float64Array(BW * N * heads * d);
  let k = 0;
  for (let w = 0; w < BW; w++) for (let n = 0; n < N; n++) for (let h = 0; h < heads; h++) for (let e = 0; e < d; e++) out[k++] = ((w * heads + h) * N + n) * d + e + 1;
  return out;
}

/** Ids of the qkv output [BW, N, 3C] as q / kᵀ / v per head hold them. */
function headIds(BW: number, heads: number, N: number, d: number, part: number, transposed: boolean): Float64Array {
  const C = heads * d;
  const out = new Float64Array(BW * heads * N * d);
  let k = 0;
  for (let w = 0; w < BW; w++) {
    for (let h = 0; h < heads; h++) {
      const [outer, inner] = transposed ? [d, N] : [N, d];
      for (let a = 0; a < outer; a++) {
        for (let b = 0; b < inner; b++) {
          const [n, e] = transposed ? [b, a] : [a, b];
          out[k++] = (w * N + n) * 3 * C + part * C + h * d + e + 1;
        }
      }
    }
  }
  return out;
}

interface ScoreTerm {
  node: OnnxNode;
  value: TensorValue;
}

/** Softmax input ← [Reshape] ← Add(mask) ← Reshape ← Add(bias) ← MatMul(Q, Kᵀ): the
 *  additive constants, classified by the shape of the logits they are added to. */
function scoreTerms(ev: StaticEval, stage: string, softmax: OnnxNode, BW: number, heads: number, N: number, B: number, nW: number): { qk: OnnxNode; bias: ScoreTerm; mask: ScoreTerm | null } {
  let t = softmax.inputs[0];
  let bias: ScoreTerm | null = null;
  let mask: ScoreTerm | null = null;
  for (let steps = 0; steps < 16; steps++) {
    const n = ev.graph.producer.get(t);
    if (!n) break;
    if (['Reshape', 'Identity', 'Squeeze', 'Unsqueeze'].includes(n.opType)) {
      t = n.inputs[0];
      continue;
    }
    if (n.opType === 'Add') {
      const ci = n.inputs.findIndex((i) => ev.isConstant(i));
      const value = ci >= 0 ? ev.value(n.inputs[ci]) : undefined;
      if (ci < 0 || !value) throw unrecognized(stage, 'a constant added to the attention logits (relative position bias or shift mask); the mask must be computable from the input shape', n);
      const at = ev.shape(n.outputs[0]) ?? [];
      const term = { node: n, value };
      if (broadcastsTo(value.dims, [1, heads, N, N]) && sameDims(at, [BW, heads, N, N]) && !bias) bias = term;
      else if (broadcastsTo(value.dims, [1, nW, 1, N, N]) && numel(value.dims) === nW * N * N && sameDims(at, [B, nW, heads, N, N]) && !mask) mask = term;
      else {
        throw unrecognized(stage, `the relative position bias [1, ${heads}, ${N}, ${N}] added to logits [${BW}, ${heads}, ${N}, ${N}], or the mask [1, ${nW}, 1, ${N}, ${N}] added to logits viewed as [${B}, ${nW}, ${heads}, ${N}, ${N}]; found a constant [${value.dims.join(', ')}] added to [${at.join(', ')}]`, n);
      }
      t = n.inputs[1 - ci];
      continue;
    }
    if (n.opType === 'Mul' && n.inputs.some((i) => ev.isConstant(i) && (ev.value(i)?.data.length ?? 0) === heads && heads > 1)) {
      throw new SpdfqError('E_ONNX', `${stage}: the attention logits are multiplied by a per-head constant at ${describeNode(n)}: this is Swin V2's cosine attention with a logit scale, which the engine does not run (stage 1 implements Swin V1 only; docs/swin.md)`);
    }
    if (n.opType === 'MatMul') {
      if (!bias) throw unrecognized(stage, 'the relative position bias added to Q·Kᵀ before the Softmax', n);
      return { qk: n, bias, mask };
    }
    break;
  }
  throw unrecognized(stage, 'Q·Kᵀ (MatMul) plus the relative position bias (and in shifted blocks the mask) feeding the Softmax', ev.graph.producer.get(t) ?? softmax);
}

function sameDims(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** `dims` equals `full` with leading size-1 axes dropped, or `full` itself. */
function broadcastsTo(dims: readonly number[], full: readonly number[]): boolean {
  const k = full.length - dims.length;
  return k >= 0 && full.slice(0, k).every((d) => d === 1) && dims.every((d, i) => d === full[k + i]);
}

/** The table [(2wh−1)(2ww−1), heads] from its gather bias[h, i, j] = table[index[i, j], h];
 *  every entry that appears more than once must carry the same value. */
function biasTable(stage: string, bias: TensorValue, window: [number, number], heads: number, at: OnnxNode): Float32Array {
  const [wh, ww] = window;
  const N = wh * ww;
  const index = relativePositionIndex(window);
  const T = (2 * wh - 1) * (2 * ww - 1);
  const table = new Float32Array(T * heads);
  const seen = new Uint8Array(T);
  for (let h = 0; h < heads; h++) {
    seen.fill(0);
    for (let ij = 0; ij < N * N; ij++) {
      const r = index[ij];
      const v = bias.data[h * N * N + ij];
      if (!seen[r]) {
        table[r * heads + h] = v;
        seen[r] = 1;
      } else if (!Object.is(table[r * heads + h], Math.fround(v))) {
        throw unrecognized(stage, `a relative position bias gathered from a ${T}×${heads} table by torchvision's relative_position_index for a ${wh}×${ww} window; entries of head ${h} at query ${Math.floor(ij / N)}, key ${ij % N} and an earlier pair with the same offset differ (${v} vs ${table[r * heads + h]})`, at);
      }
    }
  }
  return table;
}
