// Element-wise layers: GELU (exact or tanh, math shared with CUDA in core/fast_math.h)
// and the residual add.
#include "../core/fast_math.h"
#include "ops.h"

namespace spdfq::cpu {

namespace {
constexpr int64_t kChunk = 1 << 14;  // elements per parallel task: large enough to amortize hand-off
}

void gelu_forward(float* out, const float* inp, int64_t n, GeluKind kind, const Exec& ex) {
  ex.parallel((n + kChunk - 1) / kChunk, [&](int64_t t, int) {
    const int64_t b = t * kChunk, e = b + kChunk < n ? b + kChunk : n;
    if (kind == GeluKind::Erf) {
      for (int64_t i = b; i < e; ++i) out[i] = gelu_erf(inp[i]);
    } else {
      for (int64_t i = b; i < e; ++i) out[i] = gelu_tanh(inp[i]);
    }
  });
}

void gelu_backward(float* dinp, const float* dout, const float* inp, int64_t n, GeluKind kind, const Exec& ex) {
  ex.parallel((n + kChunk - 1) / kChunk, [&](int64_t t, int) {
    const int64_t b = t * kChunk, e = b + kChunk < n ? b + kChunk : n;
    if (kind == GeluKind::Erf) {
      for (int64_t i = b; i < e; ++i) dinp[i] += dout[i] * gelu_erf_grad(inp[i]);
    } else {
      for (int64_t i = b; i < e; ++i) dinp[i] += dout[i] * gelu_tanh_grad(inp[i]);
    }
  });
}

void residual_forward(float* out, const float* a, const float* b, int64_t n, const Exec& ex) {
  ex.parallel((n + kChunk - 1) / kChunk, [&](int64_t t, int) {
    const int64_t s = t * kChunk, e = s + kChunk < n ? s + kChunk : n;
    for (int64_t i = s; i < e; ++i) out[i] = a[i] + b[i];
  });
}

}  // namespace spdfq::cpu
