#include "exec.h"

namespace spdfq::cpu {

void gemm_parallel(const Exec& ex, const GemmArgs& g) {
  if (ex.reference) {
    gemm_ref(g);
    return;
  }
  const int T = ex.threads();
  // Below ~1 MFLOP a thread hand-off costs more than it saves.
  const bool small = int64_t(g.M) * g.N * g.K < (int64_t(1) << 19);
  if (T == 1 || small) {
    gemm(g, ex.gemm);
    return;
  }
  const bool by_rows = g.M >= g.N || g.M >= 8 * T;
  const int64_t n = by_rows ? g.M : g.N;
  ex.parallel_rows(n, [&](int64_t b, int64_t e, int) {
    GemmArgs part = g;
    if (by_rows) {
      part.M = int(e - b);
      part.A = g.transA ? g.A + b : g.A + b * g.lda;
      part.C = g.C + b * g.ldc;
    } else {
      part.N = int(e - b);
      part.B = g.transB ? g.B + b * g.ldb : g.B + b;
      part.C = g.C + b;
    }
    gemm(part, ex.gemm);
  });
}

}  // namespace spdfq::cpu
