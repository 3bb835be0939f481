// Random ViT weights for tests, larger than timm's init so attention is not uniform:
// matrices ~ N(0, gain²/fan_in), vectors ~ N(0, 0.1²), LayerNorm weights around 1.

import { completeVitConfig, shapeSize, VitConfigInput, vitParamSpecs } from '../../lib/vit-config';
import { randn, rng } from './random';

export function scaledRandomWeights(config: VitConfigInput, seed: number, gain = 1): Map<string, Float32Array> {
  const full = completeVitConfig(config);
  const r = rng(seed);
  const out = new Map<string, Float32Array>();
  for (const s of vitParamSpecs(full)) {
    const fanIn = s.shape.length > 1 ? shapeSize(s.shape.slice(1)) : 1;
    const w = randn(shapeSize(s.shape), r, s.shape.length > 1 ? gain / Math.sqrt(fanIn) : 0.1);
    if (/norm\d?\.weight$/.test(s.name)) w.forEach((v, i) => (w[i] = 1 + v));
    out.set(s.name, w);
  }
  return out;
}
