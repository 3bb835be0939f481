// The model as synthesis sees it, whatever its architecture: its input, its classes and the
// blocks whose taps APA and PSAQ-ViT's entropy read. A VitConfig is one as it is; a Swin's
// blocks are numbered stage-major (1-based in the options, as the ViT's), it has no class
// token and mean-pools (docs/swin.md, "Stage: synthesis").

import type { SwinConfig } from '../swin';
import type { VitConfig } from '../vit-config';

export type SynthModelShape = Pick<VitConfig, 'channels' | 'imageHeight' | 'imageWidth' | 'numClasses' | 'patchSize' | 'depth' | 'classToken' | 'pooling'>;

function isSwinConfig(c: VitConfig | SwinConfig): c is SwinConfig {
  return Array.isArray((c as SwinConfig).depths);
}

export function synthModelShape(c: VitConfig | SwinConfig): SynthModelShape {
  if (!isSwinConfig(c)) return c;
  return {
    channels: c.channels,
    imageHeight: c.imageHeight,
    imageWidth: c.imageWidth,
    numClasses: c.numClasses,
    patchSize: c.patchSize,
    depth: c.depths.reduce((a, d) => a + d, 0),
    classToken: false,
    pooling: 'mean',
  };
}
