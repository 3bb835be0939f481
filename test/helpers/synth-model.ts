// Tiny ViT and Swin weights of sizable scale for the synthesis and gradient tests, so
// attention is far from uniform and every loss has something to move.

import { completeVitConfig, shapeSize, VitConfigInput, vitParamSpecs } from '../../lib/vit-config';
import { completeSwinConfig, SwinConfigInput, swinParamSpecs } from '../../lib/swin';
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

/** The Swin's: Linear weights ~ 1.2/√fan-in, bias tables and 1-D parameters 0.3, LayerNorm
 *  weights around 1. */
export function sizableSwinWeights(config: SwinConfigInput, seed: number): Map<string, Float32Array> {
  const r = rng(seed);
  const out = new Map<string, Float32Array>();
  for (const s of swinParamSpecs(completeSwinConfig(config))) {
    const n = shapeSize(s.shape);
    const fanIn = s.shape.length > 1 && !s.name.endsWith('bias_table') ? shapeSize(s.shape.slice(1)) : 1;
    const w = randn(n, r, s.shape.length > 1 ? 1.2 / Math.sqrt(fanIn) : 0.3);
    if (/norm[^.]*\.weight$/.test(s.name)) for (let i = 0; i < n; i++) w[i] += 1;
    out.set(s.name, w);
  }
  return out;
}
