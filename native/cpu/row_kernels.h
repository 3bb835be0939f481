// Row-wise kernels whose loops are reductions (softmax, LayerNorm) or polynomial-heavy
// (the MLP activations): plain C++ written once in row_kernels_impl.h and compiled three times — for
// AVX-512, AVX2+FMA and baseline x86-64 — with the table for this CPU chosen at run time,
// as for the GEMMs. (GCC's target_clones did not take effect on these internal-linkage
// loops, and without `omp simd reduction` a float sum is never vectorized: IEEE order.)
#pragma once

#include <cstdint>

#include "../core/vit_config.h"

namespace spdfq::cpu {

struct RowKernels {
  const char* name;
  /** In place: each of `rows` rows of length n becomes softmax(row). */
  void (*softmax_rows)(float* s, int rows, int n);
  /** In place: d ← p ⊙ (d − Σ_j p_j d_j) per row (the softmax backward). */
  void (*softmax_backward_rows)(float* d, const float* p, int rows, int n);
  /** y = (x − mean)·rstd·w + b per row of D; writes mean and rstd. */
  void (*layernorm_rows)(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b,
                         int64_t rows, int D, float eps);
  /** dx += rstd·(dŷ − mean(dŷ) − x̂·mean(dŷ·x̂)), dŷ = g·w, per row. */
  void (*layernorm_backward_rows)(float* dx, const float* g, const float* x, const float* w, const float* mean,
                                  const float* rstd, int64_t rows, int D);
  /** out[i] = f(inp[i]) on [b, e) for the MLP activation f (core/activation_math.h). */
  void (*activation)(float* out, const float* inp, int64_t b, int64_t e, Activation kind);
  /** dinp[i] += dout[i]·f'(inp[i]) on [b, e) (accumulate), or dinp[i] = … (overwrite). */
  void (*activation_grad)(float* dinp, const float* dout, const float* inp, int64_t b, int64_t e, Activation kind,
                          bool accumulate);
};

/** The best table this CPU runs (AVX-512, AVX2 or baseline), resolved once. */
const RowKernels& row_kernels();

namespace rows_avx512 {
extern const RowKernels kTable;
}
namespace rows_avx2 {
extern const RowKernels kTable;
}
namespace rows_generic {
extern const RowKernels kTable;
}

}  // namespace spdfq::cpu
