// The row kernels (row_kernels_impl.h) compiled for generic (baseline x86-64 or any other CPU).
#include <cmath>
#include <cstdint>

#include "../core/activation_math.h"
#include "row_kernels.h"

namespace spdfq::cpu::rows_generic {
#include "row_kernels_impl.h"
const RowKernels kTable = {"generic", softmax_rows, softmax_backward_rows, layernorm_rows, layernorm_backward_rows, activation,
                           activation_grad};
}  // namespace spdfq::cpu::rows_generic
