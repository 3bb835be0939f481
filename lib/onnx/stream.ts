// The residual stream of a ViT: every token's embedding, indexed by batch, token and
// channel. Its memory order is whatever the model keeps between blocks — [batch, tokens,
// D] (timm, HF, torchvision), or [tokens, batch, D] (nn.TransformerEncoder without
// batch_first) — and is the reference every block's input and output are checked against.

import { Factor, Layout, full, makeLayout, sameFactors } from './layout';

export interface StreamShape {
  /** The batch size the graph is evaluated at (static-eval.ts: PROBE_BATCH). */
  batch: number;
  tokens: number;
  embedDim: number;
  /** The axes before the channel, in memory order; default [batch], [tokens]. */
  lead?: Factor[][];
}

export function tokenChannel(s: StreamShape): Factor[] {
  return full('n', s.tokens);
}

/** [batch, tokens] as a StreamShape's default lead axes. */
export function batchFirstLead(s: StreamShape): Factor[][] {
  return [full('b', s.batch), tokenChannel(s)];
}

/** The stream's layout; `channel` names the index so that tracing can tell which anchor a
 *  path reached (e.g. the stream before or after the final LayerNorm). */
export function streamLayout(s: StreamShape, channel: string): Layout {
  return makeLayout([...(s.lead ?? batchFirstLead(s)), full(channel, s.embedDim)]);
}

function isFullChannel(l: Layout, c: Factor[], s: StreamShape): boolean {
  if (s.embedDim === 1) return c.length === 0;
  return c.length === 1 && c[0].size === s.embedDim && c[0].stride === 1 && (l.offsets[c[0].name] ?? 0) === 0;
}

/** Is `l` the stream layout (same lead axes), whatever its channel is called? */
export function isStreamLayout(l: Layout, s: StreamShape): boolean {
  const lead = s.lead ?? batchFirstLead(s);
  if (l.axes.length !== lead.length + 1 || l.meanOver || (l.offsets.n ?? 0) !== 0) return false;
  if (!lead.every((a, i) => sameFactors(a, l.axes[i]))) return false;
  return isFullChannel(l, l.axes[lead.length], s);
}

/** A per-token tensor of the stream's channel: last axis the full channel, the other axes
 *  holding exactly the batch and token indices in any arrangement (nn.MultiheadAttention
 *  works on [tokens, batch, D]; a Linear may read tokens flattened to [batch·tokens, D]). */
export function isTokenwiseLayout(l: Layout, s: StreamShape): boolean {
  if (l.axes.length < 1 || l.meanOver) return false;
  if (!isFullChannel(l, l.axes[l.axes.length - 1], s) || (l.offsets.n ?? 0) !== 0) return false;
  const rest = l.axes.slice(0, -1).flat();
  const want = [...full('b', s.batch), ...tokenChannel(s)];
  return rest.length === want.length && want.every((w) => rest.some((f) => f.name === w.name && f.size === w.size && f.stride === w.stride));
}
