// What the two GEMM kernels share: the 64×64×32 block tile, the batch pointer arithmetic,
// the guarded global → register → shared-memory staging (which frees the kernels from any
// alignment or divisibility requirement), and the alpha/beta/bias epilogue.
//
// Shared-memory layout is canonical whatever the transposes: As[m][k] (row stride BK+4)
// and Bs[k][n] (row stride BN+4); each thread loads along the operand's contiguous axis,
// so global reads are coalesced in all four layouts. The +4 padding keeps wmma's 32-byte
// alignment for fragment loads (16-row and 8-column steps land on multiples of 32 bytes).
#pragma once

#include <cstdint>

#include "gemm.h"

namespace spdfq::cuda::gemm_detail {

constexpr int kBM = 64, kBN = 64, kBK = 32, kThreads = 128;
constexpr int kLdAs = kBK + 4;  // As row stride (floats)
constexpr int kLdBs = kBN + 4;  // Bs row stride
constexpr int kLdCs = kBN + 4;  // epilogue staging row stride
constexpr int kAPer = kBM * kBK / kThreads;  // A elements each thread stages per tile
constexpr int kBPer = kBK * kBN / kThreads;
constexpr int kSmemAB = kBM * kLdAs + kBK * kLdBs;
constexpr int kSmemC = kBM * kLdCs;
constexpr int kSmemFloats = kSmemAB > kSmemC ? kSmemAB : kSmemC;

// Pointers of batch matrix z.
struct BatchPtrs {
  const float* A;
  const float* B;
  float* C;
};

__device__ __forceinline__ BatchPtrs batch_ptrs(const GemmArgs& g, int z) {
  const int64_t o = z / g.batch_inner, i = z % g.batch_inner;
  return BatchPtrs{g.A + o * g.strideA_outer + i * g.strideA_inner, g.B + o * g.strideB_outer + i * g.strideB_inner,
                   g.C + o * g.strideC_outer + i * g.strideC_inner};
}

// Staging: each thread copies 16 elements of a tile per K step. Consecutive threads take
// consecutive addresses along the operand's contiguous axis (coalesced), so a thread's
// 16 elements share one coordinate ("fixed") and step through the other ("varying") with
// a constant stride: one pointer and two bounds per thread, no per-element index math.
//
//   A, not transposed (M×K): fixed k = tid%32, varying m = tid/32 + 4e
//   A, transposed (K×M):     fixed m = tid%64, varying k = tid/64 + 2e
//   B, transposed (N×K):     fixed k = tid%32, varying n = tid/32 + 4e
//   B, not transposed (K×N): fixed n = tid%64, varying k = tid/64 + 2e
struct Stager {
  const float* p;   // this thread's first element at the current K step
  int64_t step;     // between its elements
  int64_t advance;  // to the next K step
  int fixed, fixed_limit, fixed_adv;  // the fixed coordinate (global), its bound, its K-step advance
  int var, var_limit, var_adv, dvar;  // the first varying coordinate, ..., its per-element step
};

static_assert(kThreads == 128 && kBM == 64 && kBN == 64 && kBK == 32, "the Stager mappings assume these tiles");

// Operand X is A (is_a) or B; `trans` is whether it is stored transposed relative to op().
template <bool kIsA, bool kTrans>
__device__ __forceinline__ Stager make_stager(const float* X, int64_t ld, int rows_mn, int K, int mn0, int tid) {
  // Along K contiguous (A: !trans; B: trans) → fixed k, varying m/n; else fixed m/n, varying k.
  constexpr bool k_contig = kIsA ? !kTrans : kTrans;
  Stager s;
  if (k_contig) {
    const int k = tid % 32, v = tid / 32;
    s.p = X + int64_t(mn0 + v) * ld + k;
    s.step = 4 * ld;
    s.advance = kBK;
    s.fixed = k;
    s.fixed_limit = K;
    s.fixed_adv = kBK;
    s.var = mn0 + v;
    s.var_limit = rows_mn;
    s.var_adv = 0;
    s.dvar = 4;
  } else {
    const int f = tid % 64, k = tid / 64;
    s.p = X + int64_t(k) * ld + mn0 + f;
    s.step = 2 * ld;
    s.advance = int64_t(kBK) * ld;
    s.fixed = mn0 + f;
    s.fixed_limit = rows_mn;
    s.fixed_adv = 0;
    s.var = k;
    s.var_limit = K;
    s.var_adv = kBK;
    s.dvar = 2;
  }
  return s;
}

__device__ __forceinline__ void stage_load(float (&r)[kAPer], const Stager& s) {
  const bool fixed_ok = s.fixed < s.fixed_limit;
  const float* q = s.p;
#pragma unroll
  for (int e = 0; e < kAPer; ++e) {
    r[e] = fixed_ok && s.var + e * s.dvar < s.var_limit ? *q : 0.0f;
    q += s.step;
  }
}

__device__ __forceinline__ void stage_advance(Stager& s) {
  s.p += s.advance;
  s.fixed += s.fixed_adv;
  s.var += s.var_adv;
}

// Shared-memory positions of a thread's elements: As[m][k] (row stride kLdAs), Bs[k][n].
template <bool kTransA, class Convert>
__device__ __forceinline__ void store_a(float* As, const float (&r)[kAPer], int tid, Convert cvt) {
#pragma unroll
  for (int e = 0; e < kAPer; ++e) {
    if (!kTransA)
      As[(tid / 32 + 4 * e) * kLdAs + tid % 32] = cvt(r[e]);
    else
      As[(tid % 64) * kLdAs + tid / 64 + 2 * e] = cvt(r[e]);
  }
}

template <bool kTransB, class Convert>
__device__ __forceinline__ void store_b(float* Bs, const float (&r)[kBPer], int tid, Convert cvt) {
#pragma unroll
  for (int e = 0; e < kBPer; ++e) {
    if (kTransB)
      Bs[(tid % 32) * kLdBs + tid / 32 + 4 * e] = cvt(r[e]);
    else
      Bs[(tid / 64 + 2 * e) * kLdBs + tid % 64] = cvt(r[e]);
  }
}

// C[m, n] ← alpha·acc + beta·C[m, n] + bias[n]; C is not read when beta == 0.
__device__ __forceinline__ void write_c(const GemmArgs& g, float* C, int gm, int gn, float acc) {
  float* c = C + int64_t(gm) * g.ldc + gn;
  float v = g.alpha * acc;
  if (g.beta != 0.0f) v += g.beta * *c;
  if (g.bias) v += g.bias[gn];
  *c = v;
}

}  // namespace spdfq::cuda::gemm_detail
