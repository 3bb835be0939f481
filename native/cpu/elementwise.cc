// Element-wise layers: the MLP activation (the loops are the ISA-specific row kernels,
// the math core/fast_math.h's, shared with CUDA) and the residual add.
#include "ops.h"
#include "row_kernels.h"

namespace spdfq::cpu {

namespace {
constexpr int64_t kChunk = 1 << 14;  // elements per parallel task: large enough to amortize hand-off

}  // namespace

void activation_forward(float* out, const float* inp, int64_t n, Activation kind, const Exec& ex) {
  ex.parallel((n + kChunk - 1) / kChunk, [&](int64_t t, int) {
    const int64_t b = t * kChunk, e = b + kChunk < n ? b + kChunk : n;
    row_kernels().activation(out, inp, b, e, kind);
  });
}

void activation_backward(float* dinp, const float* dout, const float* inp, int64_t n, Activation kind, const Exec& ex,
                         bool accumulate) {
  ex.parallel((n + kChunk - 1) / kChunk, [&](int64_t t, int) {
    const int64_t b = t * kChunk, e = b + kChunk < n ? b + kChunk : n;
    row_kernels().activation_grad(dinp, dout, inp, b, e, kind, accumulate);
  });
}

void residual_forward(float* out, const float* a, const float* b, int64_t n, const Exec& ex) {
  ex.parallel((n + kChunk - 1) / kChunk, [&](int64_t t, int) {
    const int64_t s = t * kChunk, e = s + kChunk < n ? s + kChunk : n;
    for (int64_t i = s; i < e; ++i) out[i] = a[i] + b[i];
  });
}

}  // namespace spdfq::cpu
