// Adam and the cosine schedule (see adam.h).
#include "adam.h"

#include <cmath>

namespace spdfq::synth {

void adam_step(float* x, const float* g, float* m, float* v, int64_t n, int64_t t, float lr, float beta1, float beta2,
               float eps) {
  // torch.optim.Adam (non-fused, amsgrad off): step = lr / (1 − β1^t),
  // denom = sqrt(v) / sqrt(1 − β2^t) + eps.
  const double bc1 = 1.0 - std::pow(double(beta1), double(t));
  const double bc2 = 1.0 - std::pow(double(beta2), double(t));
  const float step = float(double(lr) / bc1);
  const float inv_sqrt_bc2 = float(1.0 / std::sqrt(bc2));
  const float a1 = 1.0f - beta1, a2 = 1.0f - beta2;
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    m[i] = beta1 * m[i] + a1 * gi;
    v[i] = beta2 * v[i] + a2 * gi * gi;
    x[i] -= step * m[i] / (std::sqrt(v[i]) * inv_sqrt_bc2 + eps);
  }
}

double cosine_lr(int step, int iters, int warmup, double base) {
  if (step < warmup) return base * double(step + 1) / double(warmup);
  const double e = step - warmup, es = iters - warmup;
  return 0.5 * (1.0 + std::cos(3.141592653589793 * e / es)) * base;
}

}  // namespace spdfq::synth
