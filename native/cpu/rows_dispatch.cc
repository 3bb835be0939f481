// Run-time choice of the row-kernel table. Compiled with plain flags, like gemm_dispatch.cc.
#include "cpu_features.h"
#include "row_kernels.h"

namespace spdfq::cpu {

const RowKernels& row_kernels() {
  static const RowKernels& best = cpu_features().avx512f    ? rows_avx512::kTable
                                  : cpu_features().avx2_fma ? rows_avx2::kTable
                                                            : rows_generic::kTable;
  return best;
}

}  // namespace spdfq::cpu
