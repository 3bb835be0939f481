// Tiny ViT weights of sizable scale for the synthesis tests (as the engine's gradient
// checks use), so attention is far from uniform and every loss has something to move.

import { completeVitConfig, shapeSize, VitConfigInput, vitParamSpecs } from '../../lib/vit-config';
import { randn, rng } from './random';

export function sizableWeights(config: VitConfigInput, seed: number): Map<string, Float32Array> {
  const full = completeVitConfig(config);
  const r = rng(seed);
  const out = new Map<string, Float32Array>();
  for (const s of vitParamSpecs(full)) {
    const n = shapeSize(s.shape);
    const fanIn = s.shape.length > 1 ? shapeSize(s.shape.slice(1)) : 1;
    const w = randn(n, r, s.shape.length > 1 ? 1.5 / Math.sqrt(fanIn) : 0.3);
    if (/norm\d?\.weight$/.test(s.name)) for (let i = 0; i < n; i++) w[i] += 1;
    out.set(s.name, w);
  }
  return out;
}
