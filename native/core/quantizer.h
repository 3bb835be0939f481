// Quantizers as plain math shared by every backend (SPDFQ_HD): uniform affine (the ONNX
// QuantizeLinear/DequantizeLinear pair) and RepQ-ViT's log√2 for softmax outputs.
//
// Uniform (ONNX opset 13/21 semantics):
//   q = saturate(round_half_even(x / scale) + zero, qmin, qmax),   x̂ = (q − zero) · scale
// log√2 (RepQ-ViT, ICCV 2023, Sec. 3.3; its official code):
//   q = round(−2·log2(x/Δ)); q ≥ 2^b → x̂ = 0; else x̂ = Δ · 2^(−⌈q/2⌉) · (√2 if q is odd else 1)
#pragma once

#include <cmath>
#include <cstdint>

#include "fast_math.h"

namespace spdfq::quant {

enum class QuantKind : int32_t { None = 0, Uniform = 1, Log2 = 2 };

// One per-tensor quantizer; zero is an integer held in a float.
struct TensorQuant {
  QuantKind kind = QuantKind::None;
  int32_t bits = 8;
  float scale = 1.0f;
  float zero = 0.0f;
  float qmin = 0.0f, qmax = 255.0f;
};

// Round half to even for |x| < 2^22 under the default rounding mode, branch-free and
// vectorizable (adding 1.5·2^23 pushes the fraction bits out). The build never uses
// -ffast-math, so the compiler keeps the two additions.
SPDFQ_HD float round_half_even(float x) {
  const float magic = 12582912.0f;  // 1.5 · 2^23
  return (x + magic) - magic;
}

SPDFQ_HD float fake_quant_uniform(float x, float scale, float zero, float qmin, float qmax) {
  // ONNX order: divide (not multiply by a reciprocal), round half to even, then add the
  // zero point — rounding after adding an odd zero point would flip ties. The division
  // result is clamped to one step beyond the grid first, which keeps the magic-number
  // rounding exact and changes nothing after saturation.
  const float v = clampf(x / scale, qmin - zero - 1.0f, qmax - zero + 1.0f);
  const float q = clampf(round_half_even(v) + zero, qmin, qmax);
  return (q - zero) * scale;
}

SPDFQ_HD float fake_quant_log2(float x, float scale, float levels) {
  if (!(x > 0.0f)) return 0.0f;  // softmax outputs are ≥ 0; 0 (and NaN-free negatives) map to 0
  const float q = round_half_even(-2.0f * log2f(x / scale));
  if (q >= levels) return 0.0f;
  const float qc = q < 0.0f ? 0.0f : q;
  const float half = ceilf(qc * 0.5f);
  const float odd = qc - 2.0f * floorf(qc * 0.5f);  // 1 for odd levels
  return scale * exp2f(-half) * (odd > 0.5f ? 1.41421356237309505f : 1.0f);
}

// In place over n values (a contiguous run; strided sites call it per row).
void fake_quant_tensor(float* x, int64_t n, const TensorQuant& q);

// Learned step sizes (LSQ, Esser et al., ICLR 2020) for a uniform quantizer: with the
// rounding passed straight through, ∂ŷ/∂s is round(x/s) − x/s inside the grid, qmin − z
// below it and qmax − z above it, and ∂ŷ/∂x is 1 inside and 0 outside. Returns
// Σ_i grad_i·∂ŷ_i/∂s over n float inputs x, with grad = d loss/d ŷ, and zeroes grad_i where
// x_i is clipped (making it d loss/d x). Summed in order, in double: the result does not
// depend on the thread count.
double lsq_step_gradient(const float* x, float* grad, int64_t n, const TensorQuant& q);

// Uniform quantizer from a range [lo, hi] with b bits (RepQ-ViT / ONNX asymmetric form):
// scale = (hi − lo)/(2^b − 1), zero = round(−lo/scale) clamped to the grid.
TensorQuant uniform_from_range(float lo, float hi, int bits, bool is_signed_grid = false);
// Symmetric: zero 0, scale = max|x| / (2^(b−1) − 1) on the signed grid [−2^(b−1)+1, 2^(b−1)−1]
// (TensorRT's restricted range).
TensorQuant symmetric_from_absmax(float absmax, int bits);

}  // namespace spdfq::quant
