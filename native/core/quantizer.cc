#include "quantizer.h"

#include <algorithm>

namespace spdfq::quant {

void fake_quant_tensor(float* x, int64_t n, const TensorQuant& q) {
  if (q.kind == QuantKind::Uniform) {
    for (int64_t i = 0; i < n; ++i) x[i] = fake_quant_uniform(x[i], q.scale, q.zero, q.qmin, q.qmax);
  } else if (q.kind == QuantKind::Log2) {
    const float levels = float(int64_t(1) << q.bits);
    for (int64_t i = 0; i < n; ++i) x[i] = fake_quant_log2(x[i], q.scale, levels);
  }
}

double lsq_step_gradient(const float* x, float* grad, int64_t n, const TensorQuant& q) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    // The forward's own arithmetic (fake_quant_uniform): divide, round half to even.
    const float v = x[i] / q.scale;
    const float r = round_half_even(v);
    const float code = r + q.zero;
    if (code < q.qmin) {
      sum += double(grad[i]) * (q.qmin - q.zero);
      grad[i] = 0.0f;
    } else if (code > q.qmax) {
      sum += double(grad[i]) * (q.qmax - q.zero);
      grad[i] = 0.0f;
    } else {
      sum += double(grad[i]) * (r - v);
    }
  }
  return sum;
}

TensorQuant uniform_from_range(float lo, float hi, int bits, bool is_signed_grid) {
  TensorQuant q;
  q.kind = QuantKind::Uniform;
  q.bits = bits;
  lo = std::min(lo, 0.0f);  // the grid must represent 0 exactly (padding, ReLU-like zeros)
  hi = std::max(hi, 0.0f);
  const float levels = float((int64_t(1) << bits) - 1);
  float scale = (hi - lo) / levels;
  if (!(scale > 1e-12f)) scale = 1e-8f;  // constant tensor: any positive scale is exact for 0
  q.scale = scale;
  q.qmin = is_signed_grid ? -float(int64_t(1) << (bits - 1)) : 0.0f;
  q.qmax = q.qmin + levels;
  q.zero = std::min(std::max(round_half_even(q.qmin - lo / scale), q.qmin), q.qmax);
  return q;
}

TensorQuant symmetric_from_absmax(float absmax, int bits) {
  TensorQuant q;
  q.kind = QuantKind::Uniform;
  q.bits = bits;
  const float half = float((int64_t(1) << (bits - 1)) - 1);
  q.scale = absmax > 1e-12f ? absmax / half : 1e-8f;
  q.zero = 0.0f;
  q.qmin = -half;
  q.qmax = half;
  return q;
}

}  // namespace spdfq::quant
