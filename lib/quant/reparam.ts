// RepQ-ViT's scale reparameterization of post-LayerNorm activations (RepQ-ViT, ICCV 2023,
// Sec. 3.2): per-channel quantizers (Δ_c, z_c) of a LayerNorm's output become one
// per-tensor quantizer (Δ̃ = mean Δ_c, z̃ = round(mean z_c)) by folding
//   r_c = Δ_c / Δ̃,  b_c = Δ̃ · (z̃ − z_c)
// into the LayerNorm (γ' = γ / r, β' = β / r − b) and the next Linear
// (W' = W · diag(r), bias' = bias + W' · b). The integers the quantizer produces are the
// same as per-channel quantization's, because z̃ is rounded to an integer (the official
// code does not round it).

import { ChannelQuantizer, TensorQuantizer } from '../native';

export interface ReparamResult {
  /** The per-tensor quantizer that replaces the per-channel ones. */
  quantizer: TensorQuantizer;
  gamma: Float32Array;
  beta: Float32Array;
  weight: Float32Array;
  bias: Float32Array;
}

/**
 * @param q per-channel quantizers of the LayerNorm output (one per feature)
 * @param gamma LayerNorm weight [D]; beta LayerNorm bias [D]
 * @param weight next Linear's weight [O, D] (PyTorch layout); bias [O] (zeros if absent)
 */
export function reparameterizeLayerNorm(
  q: ChannelQuantizer,
  gamma: Float32Array,
  beta: Float32Array,
  weight: Float32Array,
  bias: Float32Array,
): ReparamResult {
  const D = gamma.length;
  const O = weight.length / D;
  let sumScale = 0;
  let sumZero = 0;
  for (let c = 0; c < D; c++) {
    sumScale += q.scales[c];
    sumZero += q.zeros[c];
  }
  const scale = sumScale / D;
  const zero = Math.min(Math.max(Math.round(sumZero / D), q.qmin), q.qmax);
  const r = new Float64Array(D);
  const b = new Float64Array(D);
  for (let c = 0; c < D; c++) {
    r[c] = q.scales[c] / scale;
    b[c] = scale * (zero - q.zeros[c]);
  }
  const g2 = new Float32Array(D);
  const b2 = new Float32Array(D);
  for (let c = 0; c < D; c++) {
    g2[c] = gamma[c] / r[c];
    b2[c] = beta[c] / r[c] - b[c];
  }
  const w2 = new Float32Array(weight.length);
  const bias2 = new Float32Array(O);
  for (let o = 0; o < O; o++) {
    let acc = bias[o];
    for (let c = 0; c < D; c++) {
      const w = weight[o * D + c] * r[c];
      w2[o * D + c] = w;
      acc += w * b[c];
    }
    bias2[o] = acc;
  }
  return { quantizer: { kind: 'uniform', bits: q.bits, scale, zero, qmin: q.qmin, qmax: q.qmax }, gamma: g2, beta: b2, weight: w2, bias: bias2 };
}
