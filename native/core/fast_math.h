// Element-wise math shared by every backend: the CPU kernels here and, later, the CUDA
// kernels (SPDFQ_HD marks functions usable on both). Written branch-free so that g++
// -O3 vectorizes the loops that call them at the baseline ISA, without libm calls.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define SPDFQ_HD __host__ __device__ __forceinline__
#elif defined(__GNUC__)
// Always inlined: the row kernels include these from files compiled with AVX-512 or AVX2
// flags, and an out-of-line copy from such a file could be the one the linker keeps for
// every caller (one definition rule), running AVX-512 code on a CPU without it.
#define SPDFQ_HD inline __attribute__((always_inline))
#else
#define SPDFQ_HD inline
#endif

namespace spdfq {

// Clamp written as comparisons (not fminf/fmaxf, whose NaN rules keep g++ from
// vectorizing them without -ffinite-math-only): compiles to vminps/vmaxps.
SPDFQ_HD float clampf(float x, float lo, float hi) {
  x = x < lo ? lo : x;
  return x > hi ? hi : x;
}

// exp(x) by Cody–Waite range reduction x = n·ln2 + r, |r| ≤ ln2/2, and a degree-6 Taylor
// polynomial for e^r (truncation error r^7/7! < 1.3e-7 relative): within ~2 ulp of expf.
SPDFQ_HD float fast_exp(float x) {
  x = clampf(x, -87.0f, 88.0f);
  // Round to nearest by the 1.5·2^23 trick (|x·log2 e| < 128): no floorf, which baseline
  // x86-64 (SSE2) cannot vectorize.
  const float magic = 12582912.0f;
  const float n = (x * 1.44269504088896341f + magic) - magic;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;  // ln2 split hi/lo
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
#if defined(__CUDA_ARCH__)
  scale = __int_as_float(bits);
#else
  std::memcpy(&scale, &bits, sizeof scale);
#endif
  return p * scale;
}

// erf(x) as Eigen's rational approximation on [-4, 4] (odd degree-13 over even degree-8);
// max abs error 4.2e-7 against double erf, checked in test/math.test.ts.
SPDFQ_HD float fast_erf(float a) {
  const float x = clampf(a, -4.0f, 4.0f);
  const float x2 = x * x;
  float p = -2.72614225801306e-10f;
  p = p * x2 + 2.77068142495902e-08f;
  p = p * x2 - 2.10102402082508e-06f;
  p = p * x2 - 5.69250639462346e-05f;
  p = p * x2 - 7.34990630326855e-04f;
  p = p * x2 - 2.95459980854025e-03f;
  p = p * x2 - 1.60960333262415e-02f;
  float q = -1.45660718464996e-05f;
  q = q * x2 - 2.13374055278905e-04f;
  q = q * x2 - 1.68282697438203e-03f;
  q = q * x2 - 7.37332916720468e-03f;
  q = q * x2 - 1.42647390514189e-02f;
  return x * p / q;
}

// tanh via e^{2u}: 1 − 2/(e^{2u}+1); |u| ≤ 9 keeps e^{2u} finite (tanh(9) = 1 − 3e-8).
SPDFQ_HD float fast_tanh(float u) {
  u = clampf(u, -9.0f, 9.0f);
  return 1.0f - 2.0f / (fast_exp(2.0f * u) + 1.0f);
}

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;  // 1/√(2π)
constexpr float kSqrt2OverPi = 0.79788456080286536f;  // √(2/π)
constexpr float kGeluTanhCubic = 0.044715f;           // Hendrycks & Gimpel's tanh form

// GELU exact: x·Φ(x), Φ(x) = ½(1 + erf(x/√2)); derivative Φ(x) + x·φ(x).
SPDFQ_HD float gelu_erf(float x) { return 0.5f * x * (1.0f + fast_erf(x * kInvSqrt2)); }
SPDFQ_HD float gelu_erf_grad(float x) {
  const float cdf = 0.5f * (1.0f + fast_erf(x * kInvSqrt2));
  const float pdf = kInvSqrt2Pi * fast_exp(-0.5f * x * x);
  return cdf + x * pdf;
}

// GELU tanh approximation: ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
SPDFQ_HD float gelu_tanh(float x) {
  const float u = kSqrt2OverPi * (x + kGeluTanhCubic * x * x * x);
  return 0.5f * x * (1.0f + fast_tanh(u));
}
SPDFQ_HD float gelu_tanh_grad(float x) {
  // With e = exp(2u): tanh = 1 − 2/(e+1) and sech² = 4e/(e+1)², the latter without the
  // cancellation of 1 − tanh² near |tanh| = 1.
  // fast_exp clamps its argument, so e stays finite and e·inv ≤ 1 never overflows.
  const float u = kSqrt2OverPi * (x + kGeluTanhCubic * x * x * x);
  const float e = fast_exp(2.0f * u);
  const float inv = 1.0f / (e + 1.0f);
  const float t = 1.0f - 2.0f * inv;
  const float sech2 = 4.0f * inv * (e * inv);
  const float du = kSqrt2OverPi * (1.0f + 3.0f * kGeluTanhCubic * x * x);
  return 0.5f * (1.0f + t) + 0.5f * x * sech2 * du;
}

// σ(x) = 1/(1 + e^{−x}); fast_exp clamps its argument, so the tails stay finite.
SPDFQ_HD float sigmoid(float x) { return 1.0f / (1.0f + fast_exp(-x)); }

constexpr float kQuickGeluSlope = 1.702f;  // CLIP's QuickGELU: x·σ(1.702x)

SPDFQ_HD float quick_gelu(float x) { return x * sigmoid(kQuickGeluSlope * x); }
SPDFQ_HD float quick_gelu_grad(float x) {
  const float s = sigmoid(kQuickGeluSlope * x);
  return s + kQuickGeluSlope * x * s * (1.0f - s);
}

SPDFQ_HD float silu(float x) { return x * sigmoid(x); }
SPDFQ_HD float silu_grad(float x) {
  const float s = sigmoid(x);
  return s * (1.0f + x * (1.0f - s));
}

// PyTorch's convention: the derivative at 0 is 0.
SPDFQ_HD float relu(float x) { return x > 0.0f ? x : 0.0f; }
SPDFQ_HD float relu_grad(float x) { return x > 0.0f ? 1.0f : 0.0f; }

}  // namespace spdfq
