// Parameter count and compute per image of a ViT config, for `inspect` reports.
// Multiply-adds count the matrix products only (patch Conv, q/k/v, Q·Kᵀ, P·V, proj, MLP,
// heads), as fvcore and the DeiT paper do; LayerNorm, softmax and GELU are a few percent
// and are left out. FLOPs = 2 × multiply-adds (DeiT-Tiny at 224: 1.26 G MACs, 2.5 GFLOPs).

import { patchGrid, shapeSize, tokenCount, VitConfig, vitParamSpecs } from '../vit-config';

export interface VitCost {
  parameters: number;
  multiplyAdds: number;
  flops: number;
}

export function vitCost(c: VitConfig): VitCost {
  const parameters = vitParamSpecs(c).reduce((s, p) => s + shapeSize(p.shape), 0);
  const D = c.embedDim;
  const T = tokenCount(c);
  const { rows, cols } = patchGrid(c);
  const patches = rows * cols;
  const patchEmbed = patches * D * c.channels * c.patchSize * c.patchSize;
  const attention = T * D * 3 * D + 2 * T * T * D + T * D * D;
  const mlp = 2 * T * D * c.mlpDim;
  const heads = (c.distToken ? 2 : 1) * D * c.numClasses;
  const multiplyAdds = patchEmbed + c.depth * (attention + mlp) + heads;
  return { parameters, multiplyAdds, flops: 2 * multiplyAdds };
}
