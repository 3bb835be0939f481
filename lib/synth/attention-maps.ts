// The attention maps APA aligns, for reports ("attention maps beside their priors"): each
// aligned block's class-token (or mean-query) attention over the patches, renormalized over
// the patch tokens exactly as the loss sees it.

import { nativeAddon } from '../native';
import { VitModel } from '../vit';
import { prefixTokens, tokenCount } from '../vit-config';

/** Maps [blocks.length][B, heads, gridH·gridW] for `images` [B, C, H, W]; blocks are 1-based. */
export async function classAttentionMaps(
  model: VitModel,
  images: Float32Array,
  batch: number,
  blocks: number[],
  query: 'class' | 'mean',
): Promise<Float32Array[]> {
  const out = await model.forward(images, batch, { attention: true });
  const c = model.config;
  const N = tokenCount(c);
  return blocks.map((l) => nativeAddon().synthKernels.apaMaps(out.attention![l - 1], batch, c.numHeads, N, prefixTokens(c), query));
}
