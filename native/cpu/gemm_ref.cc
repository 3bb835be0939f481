// gemm_ref: THE TRUTH. Every other GEMM variant (AVX2, AVX-512, and whatever comes later)
// is tested against this function, so it is kept as plain, obviously-correct loops: no
// blocking, no SIMD, no cleverness. Accumulation is in double so that its own rounding
// error is negligible next to the float error of the kernels checked against it.
//
// Semantics (shared by all variants):
//   * C = alpha·op(A)·op(B) + beta·C, row-major, leading dimensions in elements.
//   * beta == 0: C is only written, never read (it may hold NaN or garbage).
//   * alpha == 0 or K == 0: the product is taken as exactly zero and A/B are not read
//     (BLAS convention), so C becomes beta·C (zeros when beta == 0).
#include "gemm.h"

namespace spdfq::cpu {

void gemm_ref(const GemmArgs& g) {
  for (int i = 0; i < g.M; ++i) {
    for (int j = 0; j < g.N; ++j) {
      double acc = 0.0;
      if (g.alpha != 0.0f) {
        for (int k = 0; k < g.K; ++k) {
          const float a = g.transA ? g.A[size_t(k) * g.lda + i] : g.A[size_t(i) * g.lda + k];
          const float b = g.transB ? g.B[size_t(j) * g.ldb + k] : g.B[size_t(k) * g.ldb + j];
          acc += double(a) * double(b);
        }
      }
      float& c = g.C[size_t(i) * g.ldc + j];
      const double r = double(g.alpha) * acc;
      c = g.beta == 0.0f ? float(r) : float(r + double(g.beta) * double(c));
    }
  }
}

}  // namespace spdfq::cpu
