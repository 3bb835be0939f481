// The residual stream of a ViT, [batch, tokens, embed dim], as a layout: the reference
// every block's input and output are checked against.

import { Factor, Layout, full, makeLayout, sameFactors } from './layout';

export interface StreamShape {
  /** The batch size the graph is evaluated at (static-eval.ts: PROBE_BATCH). */
  batch: number;
  tokens: number;
  embedDim: number;
}

export function tokenChannel(s: StreamShape): Factor[] {
  return full('n', s.tokens);
}

/** [batch, tokens, channel]; `channel` names the index so that tracing can tell which
 *  anchor a path reached (e.g. the stream before or after the final LayerNorm). */
export function streamLayout(s: StreamShape, channel: string): Layout {
  return makeLayout([full('b', s.batch), tokenChannel(s), full(channel, s.embedDim)]);
}

/** Is `l` the stream layout, whatever its channel is called? */
export function isStreamLayout(l: Layout, s: StreamShape): boolean {
  if (l.axes.length !== 3 || l.meanOver) return false;
  const [b, n, c] = l.axes;
  if (!sameFactors(b, full('b', s.batch)) || !sameFactors(n, tokenChannel(s)) || (l.offsets.n ?? 0) !== 0) return false;
  if (s.embedDim === 1) return c.length === 0;
  return c.length === 1 && c[0].size === s.embedDim && c[0].stride === 1 && (l.offsets[c[0].name] ?? 0) === 0;
}

/** A per-token tensor of the stream's channel: last axis the full channel, the other axes
 *  holding exactly the batch and token indices in any arrangement (torchvision's
 *  nn.MultiheadAttention works on [tokens, batch, D]). */
export function isTokenwiseLayout(l: Layout, s: StreamShape): boolean {
  if (l.axes.length < 1 || l.meanOver) return false;
  const c = l.axes[l.axes.length - 1];
  const channelOk = s.embedDim === 1 ? c.length === 0 : c.length === 1 && c[0].size === s.embedDim && c[0].stride === 1 && (l.offsets[c[0].name] ?? 0) === 0;
  if (!channelOk || (l.offsets.n ?? 0) !== 0) return false;
  const rest = l.axes.slice(0, -1).flat();
  const want = [...full('b', s.batch), ...tokenChannel(s)];
  return rest.length === want.length && want.every((w) => rest.some((f) => f.name === w.name && f.size === w.size && f.stride === w.stride));
}
