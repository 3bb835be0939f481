// LayerNorm forward/backward. Statistics in float with a two-pass mean/variance per row
// (rows are short, ≤ a few thousand), rstd saved for the backward as in llm.c.
#include <cmath>
#include <vector>

#include "ops.h"

namespace spdfq::cpu {

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w, const float* b,
                       int64_t rows, int D, float eps, const Exec& ex) {
  ex.parallel_rows(rows, [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* x = inp + r * D;
      float* y = out + r * D;
      float m = 0.0f;
      for (int i = 0; i < D; ++i) m += x[i];
      m /= D;
      float v = 0.0f;
      for (int i = 0; i < D; ++i) {
        const float d = x[i] - m;
        v += d * d;
      }
      v /= D;
      const float s = 1.0f / std::sqrt(v + eps);
      for (int i = 0; i < D; ++i) y[i] = (x[i] - m) * s * w[i] + b[i];
      mean[r] = m;
      rstd[r] = s;
    }
  });
}

void layernorm_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp, const float* w,
                        const float* mean, const float* rstd, int64_t rows, int D, const Exec& ex) {
  if (dinp) {
    ex.parallel_rows(rows, [&](int64_t r0, int64_t r1, int) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* x = inp + r * D;
        const float* g = dout + r * D;
        float* dx = dinp + r * D;
        const float m = mean[r], s = rstd[r];
        // dx = s·(dŷ − mean(dŷ) − x̂·mean(dŷ·x̂)), dŷ = g·w
        float sum_dy = 0.0f, sum_dy_xhat = 0.0f;
        for (int i = 0; i < D; ++i) {
          const float dy = g[i] * w[i];
          sum_dy += dy;
          sum_dy_xhat += dy * (x[i] - m) * s;
        }
        sum_dy /= D;
        sum_dy_xhat /= D;
        for (int i = 0; i < D; ++i) {
          const float xhat = (x[i] - m) * s;
          dx[i] += s * (g[i] * w[i] - sum_dy - xhat * sum_dy_xhat);
        }
      }
    });
  }
  if (dw || db) {
    // Column sums over rows: one partial per thread, reduced in a fixed order so results
    // do not depend on scheduling.
    const int T = ex.threads();
    std::vector<float> part(size_t(T) * 2 * D, 0.0f);
    ex.parallel(T, [&](int64_t t, int) {
      int64_t r0, r1;
      split_range(rows, T, t, &r0, &r1);
      float* pw = part.data() + t * 2 * D;
      float* pb = pw + D;
      for (int64_t r = r0; r < r1; ++r) {
        const float* x = inp + r * D;
        const float* g = dout + r * D;
        const float m = mean[r], s = rstd[r];
        for (int i = 0; i < D; ++i) {
          pw[i] += g[i] * (x[i] - m) * s;
          pb[i] += g[i];
        }
      }
    });
    for (int t = 0; t < T; ++t) {
      const float* pw = part.data() + size_t(t) * 2 * D;
      for (int i = 0; i < D; ++i) {
        if (dw) dw[i] += pw[i];
        if (db) db[i] += pw[D + i];
      }
    }
  }
}

}  // namespace spdfq::cpu
