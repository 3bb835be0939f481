// Linear layers as GEMMs on PyTorch's [out, in] weights:
//   forward  out = inp · wᵀ          (NT)
//   backward dinp += dout · w        (NN)
//            dw   += doutᵀ · inp     (TN)
//            db   += column sums of dout
#include <vector>

#include "ops.h"

namespace spdfq::cpu {

void linear_forward(float* out, const float* inp, const float* w, const float* b, int64_t rows, int I, int O,
                    const Exec& ex) {
  GemmArgs g;
  g.transA = false;
  g.transB = true;
  g.M = int(rows);
  g.N = O;
  g.K = I;
  g.A = inp;
  g.lda = I;
  g.B = w;
  g.ldb = I;
  g.C = out;
  g.ldc = O;
  g.beta = 0.0f;
  gemm_parallel(ex, g);
  if (b) {
    ex.parallel_rows(rows, [&](int64_t r0, int64_t r1, int) {
      for (int64_t r = r0; r < r1; ++r) {
        float* y = out + r * O;
        for (int o = 0; o < O; ++o) y[o] += b[o];
      }
    });
  }
}

void linear_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp, const float* w,
                     int64_t rows, int I, int O, const Exec& ex, bool accumulate_dinp) {
  if (dinp) {
    GemmArgs g;
    g.M = int(rows);
    g.N = I;
    g.K = O;
    g.A = dout;
    g.lda = O;
    g.B = w;
    g.ldb = I;
    g.C = dinp;
    g.ldc = I;
    g.beta = accumulate_dinp ? 1.0f : 0.0f;
    gemm_parallel(ex, g);
  }
  if (dw) {
    GemmArgs g;
    g.transA = true;
    g.M = O;
    g.N = I;
    g.K = int(rows);
    g.A = dout;
    g.lda = O;
    g.B = inp;
    g.ldb = I;
    g.C = dw;
    g.ldc = I;
    g.beta = 1.0f;
    gemm_parallel(ex, g);
  }
  if (db) {
    const int T = ex.threads();
    std::vector<float> part(size_t(T) * O, 0.0f);
    ex.parallel(T, [&](int64_t t, int) {
      int64_t r0, r1;
      split_range(rows, T, t, &r0, &r1);
      float* p = part.data() + t * O;
      for (int64_t r = r0; r < r1; ++r) {
        const float* g = dout + r * O;
        for (int o = 0; o < O; ++o) p[o] += g[o];
      }
    });
    for (int t = 0; t < T; ++t)
      for (int o = 0; o < O; ++o) db[o] += part[size_t(t) * O + o];
  }
}

}  // namespace spdfq::cpu
