#include "adaround.h"

#include <algorithm>
#include <cmath>

namespace spdfq::quant {

void soft_rounding(float v, float* h, float* dh) {
  const float sig = 1.0f / (1.0f + std::exp(-v));
  const float raw = sig * (kAdaZeta - kAdaGamma) + kAdaGamma;
  *h = std::min(std::max(raw, 0.0f), 1.0f);
  *dh = raw > 0.0f && raw < 1.0f ? (kAdaZeta - kAdaGamma) * sig * (1.0f - sig) : 0.0f;
}

float soft_rounded_weight(float v, float base, const TensorQuant& q, float* dw_dv) {
  float h, dh;
  soft_rounding(v, &h, &dh);
  const float code = base + h + q.zero;
  // The clamp to the grid passes no gradient.
  *dw_dv = code >= q.qmin && code <= q.qmax ? q.scale * dh : 0.0f;
  return (std::min(std::max(code, q.qmin), q.qmax) - q.zero) * q.scale;
}

double rounding_regularizer(float v, float beta, float* dreg_dv) {
  float h, dh;
  soft_rounding(v, &h, &dh);
  const float u = 2.0f * h - 1.0f;
  const float au = std::fabs(u);
  *dreg_dv = au > 0.0f ? -beta * std::pow(au, beta - 1.0f) * (u > 0 ? 1.0f : -1.0f) * 2.0f * dh : 0.0f;
  return 1.0 - std::pow(double(au), double(beta));
}

}  // namespace spdfq::quant
