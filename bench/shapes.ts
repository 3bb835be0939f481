// Model shapes the benchmarks share.
import { VitConfigInput } from '../lib/vit-config';

/** DeiT-Tiny (timm deit_tiny_patch16_224): 12 blocks, D=192, 3 heads, 224², patch 16, 1000 classes. */
export const DEIT_TINY: VitConfigInput = {
  imageSize: 224, channels: 3, patchSize: 16, embedDim: 192, depth: 12, numHeads: 3, mlpRatio: 4, numClasses: 1000,
};

/** DeiT-Small (deit_small_patch16_224): 12 blocks, D=384, 6 heads. */
export const DEIT_SMALL: VitConfigInput = { ...DEIT_TINY, embedDim: 384, numHeads: 6 };

/** DeiT-Base (deit_base_patch16_224): 12 blocks, D=768, 12 heads. */
export const DEIT_BASE: VitConfigInput = { ...DEIT_TINY, embedDim: 768, numHeads: 12 };
