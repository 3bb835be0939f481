// LayerNorm forward/backward: rows in parallel, each row by the ISA-specific row kernels
// (row_kernels_impl.h: two-pass mean/variance, rstd saved for the backward as in llm.c);
// the weight gradients as per-thread column sums reduced in a fixed order.
#include <cmath>
#include <vector>

#include "ops.h"
#include "row_kernels.h"

namespace spdfq::cpu {

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w, const float* b,
                       int64_t rows, int D, float eps, const Exec& ex) {
  ex.parallel_rows(rows, [&](int64_t r0, int64_t r1, int) {
    row_kernels().layernorm_rows(out + r0 * D, mean + r0, rstd + r0, inp + r0 * D, w, b, r1 - r0, D, eps);
  });
}

void layernorm_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp, const float* w,
                        const float* mean, const float* rstd, int64_t rows, int D, const Exec& ex) {
  if (dinp) {
    ex.parallel_rows(rows, [&](int64_t r0, int64_t r1, int) {
      row_kernels().layernorm_backward_rows(dinp + r0 * D, dout + r0 * D, inp + r0 * D, w, mean + r0, rstd + r0, r1 - r0, D);
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
