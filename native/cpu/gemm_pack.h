// Shared GotoBLAS/BLIS-style blocking for the SIMD GEMM variants.
//
// Everything here lives in an anonymous namespace on purpose: this header is included by
// translation units compiled with different ISA flags (gemm_avx2.cc with -mavx2,
// gemm_avx512.cc with -mavx512f…). Inline functions or templates with external linkage
// would be merged by the linker across those TUs, and the AVX-512 copy could end up
// being called on a CPU without AVX-512. Internal linkage gives each TU its own copy.
// For the same reason, SIMD TUs avoid out-of-line std:: templates (std::vector, …).
//
// Loop nest (C += A·B, per block; names as in BLIS):
//   jc: N in NC-wide blocks
//     pc: K in KC-deep blocks — pack B[pc:pc+kc, jc:jc+nc] into NR-wide panels
//       ic: M in MC-tall blocks
//         jr: NR-wide B panels   (the kc×NR panel stays in L1 across the ir loop)
//           ir: MR-tall rows of A (read in place from the MC×kc block that stays in L2)
//             micro-kernel: MR×NR tile of C in registers, kc rank-1 updates
//
// A is deliberately not packed: the micro-kernel only ever broadcasts single A elements
// (a memory operand of the FMA), so it can read them straight from A with any strides —
// row-major (element (i,k) at A[i*lda + k]) or transposed (A[k*lda + i]). That saves the
// transposing copy of A that classic packing would need for the common NN/NT cases —
// a real cost when N is small (N = 64 in attention: each A element feeds only 128 flops)
// — and measured, all four layouts still run within a few % of each other.
// B is always packed: it is what gets loaded as full vectors, it makes transB free in the
// kernel, and zero-padding the last panel keeps edge tiles in bounds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "gemm.h"

namespace spdfq::cpu {
namespace {

// Thread-local, 64-byte aligned scratch that only grows. The engine calls gemm from many
// threads at once (each on its own rows of C), so every thread needs its own buffer.
struct PackBuffer {
  float* data = nullptr;
  size_t capacity = 0;  // in floats
  ~PackBuffer() { std::free(data); }
  float* get(size_t n) {
    if (n > capacity) {
      std::free(data);
      // Round up so repeated slightly larger requests do not reallocate every time.
      size_t cap = n + n / 4 + 1024;
      cap = (cap + 15) & ~size_t(15);  // aligned_alloc needs a multiple of the alignment
      data = static_cast<float*>(std::aligned_alloc(64, cap * sizeof(float)));
      if (data == nullptr) std::abort();  // out of memory: nothing sensible left to do
      capacity = cap;
    }
    return data;
  }
};

// C = beta·C, for K == 0 or alpha == 0 (product taken as zero, A/B never read).
inline void gemm_scale_c(const GemmArgs& g) {
  for (int i = 0; i < g.M; ++i) {
    float* c = g.C + size_t(i) * g.ldc;
    if (g.beta == 0.0f) {
      for (int j = 0; j < g.N; ++j) c[j] = 0.0f;  // beta == 0 never reads C (may be NaN)
    } else if (g.beta != 1.0f) {
      for (int j = 0; j < g.N; ++j) c[j] *= g.beta;
    }
  }
}

constexpr int ceil_div(int a, int b) { return (a + b - 1) / b; }
constexpr int round_up(int a, int b) { return ceil_div(a, b) * b; }

// Splits `n` into the fewest blocks of at most `max_block`, of near-equal size rounded up
// to `unit`: K = 768 with KC ≤ 320 gives 3×256 rather than 320+320+128.
inline int balanced_block(int n, int max_block, int unit) {
  const int parts = ceil_div(n, max_block);
  return round_up(ceil_div(n, parts), unit);
}

// Arch provides:
//   MR, NR, KC, MC, NC                (ints; MC a multiple of MR, NC of NR)
//   pack_b(transB, B, ldb, k0, j0, kc, nc, dst): B[k0:k0+kc, j0:j0+nc] of op(B) into
//       ceil(nc/NR) panels, panel p at dst + p*kc*NR, row k at +k*NR, zero-padded to NR.
//   kernel(mr, nr, kc, a, rsa, csa, bp, c, ldc, alpha, beta): an mr×nr (≤ MR×NR) tile
//       C = alpha·A·Bp + beta·C, A element (i,k) at a[i*rsa + k*csa], Bp one panel;
//       beta == 0 must not read C.
template <class Arch>
void gemm_blocked(const GemmArgs& g) {
  if (g.M <= 0 || g.N <= 0) return;
  if (g.K <= 0 || g.alpha == 0.0f) {
    gemm_scale_c(g);
    return;
  }
  constexpr int MR = Arch::MR, NR = Arch::NR;
  const ptrdiff_t rsa = g.transA ? 1 : g.lda;  // step between rows i of op(A)
  const ptrdiff_t csa = g.transA ? g.lda : 1;  // step between columns k of op(A)

  const int kc_max = balanced_block(g.K, Arch::KC, 1);
  const int mc_max = balanced_block(g.M, Arch::MC, MR);
  const int nc_max = balanced_block(g.N, Arch::NC, NR);
  static thread_local PackBuffer buf;
  float* bpack = buf.get(size_t(kc_max) * round_up(nc_max, NR));

  for (int jc = 0; jc < g.N; jc += nc_max) {
    const int nc = g.N - jc < nc_max ? g.N - jc : nc_max;
    for (int pc = 0; pc < g.K; pc += kc_max) {
      const int kc = g.K - pc < kc_max ? g.K - pc : kc_max;
      const float beta = pc == 0 ? g.beta : 1.0f;  // later K blocks accumulate
      Arch::pack_b(g.transB, g.B, g.ldb, pc, jc, kc, nc, bpack);
      for (int ic = 0; ic < g.M; ic += mc_max) {
        const int mc = g.M - ic < mc_max ? g.M - ic : mc_max;
        for (int jr = 0; jr < nc; jr += NR) {
          const int nr = nc - jr < NR ? nc - jr : NR;
          const float* bp = bpack + size_t(jr / NR) * kc * NR;
          for (int ir = 0; ir < mc; ir += MR) {
            const int mr = mc - ir < MR ? mc - ir : MR;
            const float* a = g.A + (ic + ir) * rsa + pc * csa;
            float* c = g.C + size_t(ic + ir) * g.ldc + (jc + jr);
            Arch::kernel(mr, nr, kc, a, rsa, csa, bp, c, g.ldc, g.alpha, beta);
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace spdfq::cpu
