// Element-wise layers: GELU (exact or tanh, math shared with CUDA in core/fast_math.h)
// and the residual add.
#include "../core/fast_math.h"
#include "ops.h"

namespace spdfq::cpu {

namespace {
constexpr int64_t kChunk = 1 << 14;  // elements per parallel task: large enough to amortize hand-off

// The loops are compiled for AVX-512, AVX2 and baseline x86-64, chosen at load time by
// the dynamic linker (GCC function multiversioning): GELU's erf/exp polynomials are a
// visible share of a pass and vectorize well.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SPDFQ_MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SPDFQ_MULTIVERSION
#endif

SPDFQ_MULTIVERSION void gelu_range(float* out, const float* inp, int64_t b, int64_t e, bool exact) {
  if (exact) {
    for (int64_t i = b; i < e; ++i) out[i] = gelu_erf(inp[i]);
  } else {
    for (int64_t i = b; i < e; ++i) out[i] = gelu_tanh(inp[i]);
  }
}

SPDFQ_MULTIVERSION void gelu_grad_range(float* dinp, const float* dout, const float* inp, int64_t b, int64_t e,
                                        bool exact) {
  if (exact) {
    for (int64_t i = b; i < e; ++i) dinp[i] += dout[i] * gelu_erf_grad(inp[i]);
  } else {
    for (int64_t i = b; i < e; ++i) dinp[i] += dout[i] * gelu_tanh_grad(inp[i]);
  }
}
}  // namespace

void gelu_forward(float* out, const float* inp, int64_t n, GeluKind kind, const Exec& ex) {
  ex.parallel((n + kChunk - 1) / kChunk, [&](int64_t t, int) {
    const int64_t b = t * kChunk, e = b + kChunk < n ? b + kChunk : n;
    gelu_range(out, inp, b, e, kind == GeluKind::Erf);
  });
}

void gelu_backward(float* dinp, const float* dout, const float* inp, int64_t n, GeluKind kind, const Exec& ex) {
  ex.parallel((n + kChunk - 1) / kChunk, [&](int64_t t, int) {
    const int64_t b = t * kChunk, e = b + kChunk < n ? b + kChunk : n;
    gelu_grad_range(dinp, dout, inp, b, e, kind == GeluKind::Erf);
  });
}

void residual_forward(float* out, const float* a, const float* b, int64_t n, const Exec& ex) {
  ex.parallel((n + kChunk - 1) / kChunk, [&](int64_t t, int) {
    const int64_t s = t * kChunk, e = s + kChunk < n ? s + kChunk : n;
    for (int64_t i = s; i < e; ++i) out[i] = a[i] + b[i];
  });
}

}  // namespace spdfq::cpu
