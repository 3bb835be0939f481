// The row kernels (row_kernels_impl.h) compiled for avx512 (this file's own ISA flags, see CMakeLists.txt).
#include <cmath>
#include <cstdint>

#include "../core/activation_math.h"
#include "row_kernels.h"

namespace spdfq::cpu::rows_avx512 {
#include "row_kernels_impl.h"
const RowKernels kTable = {"avx512", softmax_rows, softmax_backward_rows, layernorm_rows, layernorm_backward_rows, activation,
                           activation_grad};
}  // namespace spdfq::cpu::rows_avx512
