// gemm(): argument checks shared by both kernels, then dispatch by GemmMath.
#include <string>

#include "../core/errors.h"
#include "cuda_check.h"
#include "gemm.h"

namespace spdfq::cuda {

namespace {
void check_ld(const char* name, int64_t ld, int64_t need) {
  if (ld < need)
    fail("E_TENSOR", std::string("CUDA gemm: ") + name + " = " + std::to_string(ld) + " is below the " +
                         std::to_string(need) + " the shape needs");
}
}  // namespace

void gemm(const GemmArgs& g, GemmMath math, cudaStream_t stream) {
  if (g.M < 0 || g.N < 0 || g.K < 0 || g.batch_outer < 1 || g.batch_inner < 1)
    fail("E_TENSOR", "CUDA gemm: M=" + std::to_string(g.M) + " N=" + std::to_string(g.N) + " K=" +
                         std::to_string(g.K) + " batch=" + std::to_string(g.batch_outer) + "x" +
                         std::to_string(g.batch_inner) + " (sizes must be ≥ 0, batches ≥ 1)");
  if (g.M == 0 || g.N == 0) return;
  if (int64_t(g.batch_outer) * g.batch_inner > (int64_t(1) << 31) - 1) fail("E_TENSOR", "CUDA gemm: too many batches");
  if (g.K > 0) {
    check_ld("lda", g.lda, g.transA ? g.M : g.K);
    check_ld("ldb", g.ldb, g.transB ? g.K : g.N);
  }
  check_ld("ldc", g.ldc, g.N);
  if (!g.C || (g.K > 0 && (!g.A || !g.B))) fail("E_TENSOR", "CUDA gemm: null matrix pointer");
  if ((g.M + 63) / 64 > 2147483647 || (g.N + 63) / 64 > 65535)
    fail("E_TENSOR", "CUDA gemm: N = " + std::to_string(g.N) + " exceeds the grid limit");
  if (math == GemmMath::Tf32)
    gemm_tf32(g, stream);
  else
    gemm_fp32(g, stream);
}

}  // namespace spdfq::cuda
