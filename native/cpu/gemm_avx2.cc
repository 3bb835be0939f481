// AVX2+FMA GEMM: 6×16 register-blocked micro-kernel (6 rows × 2 ymm = 12 accumulators,
// 2 ymm for the B row, 1 for the A broadcast — 15 of 16 ymm), blocking in gemm_pack.h.
// 12 independent FMA chains cover latency 4–5 × 2 FMA pipes on Haswell…Zen.
//
// Build flags: -O3 -mavx2 -mfma
#include "gemm.h"

#if defined(__x86_64__)

#include <immintrin.h>

#include "gemm_pack.h"

namespace spdfq::cpu {
namespace {

constexpr int kMR = 6;
constexpr int kNR = 16;
constexpr int kNV = kNR / 8;  // ymm vectors per B row

// Lanes [0, n) all-ones, for vmaskmovps (n clamped to [0, 8]).
inline __m256i lane_mask(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Micro-kernel for an M×(≤8·NV) tile; see gemm_avx512.cc for the ROWS convention. Only
// the last vector may be partial (tail_n < 8 lanes): it goes through vmaskmovps, which
// never touches memory in masked-off lanes. Full vectors use plain unaligned moves
// because masked stores are slow on AMD.
template <int M, int NV, bool ROWS>
void ukernel(int kc, const float* a, ptrdiff_t rsa, ptrdiff_t csa, const float* bp, float* c,
             ptrdiff_t ldc, float alpha, float beta, int tail_n) {
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 8 * NV - 1), _MM_HINT_T0);
  }
  __m256 acc[M][NV];
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_setzero_ps();

  if constexpr (ROWS) {
    const float* ar[M];
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) ar[i] = a + i * rsa;
#pragma GCC unroll 2
    for (int k = 0; k < kc; ++k) {
      __m256 b[NV];
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) b[v] = _mm256_load_ps(bp + k * kNR + 8 * v);
#pragma GCC unroll 8
      for (int i = 0; i < M; ++i) {
        const __m256 ai = _mm256_broadcast_ss(ar[i] + k);
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_fmadd_ps(ai, b[v], acc[i][v]);
      }
    }
  } else {
#pragma GCC unroll 2
    for (int k = 0; k < kc; ++k) {
      const float* ak = a + k * csa;
      __m256 b[NV];
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) b[v] = _mm256_load_ps(bp + k * kNR + 8 * v);
#pragma GCC unroll 8
      for (int i = 0; i < M; ++i) {
        const __m256 ai = _mm256_broadcast_ss(ak + i);
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_fmadd_ps(ai, b[v], acc[i][v]);
      }
    }
  }

  const __m256 va = _mm256_set1_ps(alpha);
  const __m256 vb = _mm256_set1_ps(beta);
  const __m256i tm = lane_mask(tail_n);
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) {
    float* ci = c + i * ldc;
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      __m256 r = _mm256_mul_ps(acc[i][v], va);
      if (v < NV - 1 || tail_n == 8) {
        if (beta != 0.0f) r = _mm256_fmadd_ps(_mm256_loadu_ps(ci + 8 * v), vb, r);
        _mm256_storeu_ps(ci + 8 * v, r);
      } else {
        if (beta != 0.0f) r = _mm256_fmadd_ps(_mm256_maskload_ps(ci + 8 * v, tm), vb, r);
        _mm256_maskstore_ps(ci + 8 * v, tm, r);
      }
    }
  }
}

using KernelFn = void (*)(int, const float*, ptrdiff_t, ptrdiff_t, const float*, float*,
                          ptrdiff_t, float, float, int);

template <bool ROWS, int M>
constexpr KernelFn kRow[kNV] = {ukernel<M, 1, ROWS>, ukernel<M, 2, ROWS>};
template <bool ROWS>
constexpr const KernelFn* kByM[kMR] = {kRow<ROWS, 1>, kRow<ROWS, 2>, kRow<ROWS, 3>,
                                       kRow<ROWS, 4>, kRow<ROWS, 5>, kRow<ROWS, 6>};

// In-register transpose of 8 rows of 8 floats (r[i] ← column i).
inline void transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int q = 0; q < 2; ++q) {
    u[4 * q + 0] = _mm256_shuffle_ps(t[4 * q], t[4 * q + 2], 0x44);
    u[4 * q + 1] = _mm256_shuffle_ps(t[4 * q], t[4 * q + 2], 0xEE);
    u[4 * q + 2] = _mm256_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0x44);
    u[4 * q + 3] = _mm256_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0xEE);
  }
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
    r[j + 4] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
  }
}

struct Avx2Arch {
  static constexpr int MR = kMR, NR = kNR;
  // KC = 256: the kc×16 B panel is 16 KiB, half of a 32 KiB L1d. MC = 96: the 96×kc
  // A slice (96 KiB) fits even the 256 KiB L2 of Haswell/Skylake client cores.
  static constexpr int KC = 256, MC = 96, NC = 3072;

  static void pack_b(bool transB, const float* B, ptrdiff_t ldb, int k0, int j0, int kc,
                     int nc, float* dst) {
    for (int p = 0; p * kNR < nc; ++p) {
      float* panel = dst + size_t(p) * kc * kNR;
      const int jp = j0 + p * kNR;
      const int w = nc - p * kNR < kNR ? nc - p * kNR : kNR;
      const int nv = ceil_div(w, 8);
      if (!transB) {
        for (int k = 0; k < kc; ++k) {
          const float* src = B + size_t(k0 + k) * ldb + jp;
          for (int v = 0; v < nv; ++v) {
            const int n = w - 8 * v;
            _mm256_store_ps(panel + k * kNR + 8 * v,
                            n >= 8 ? _mm256_loadu_ps(src + 8 * v)
                                   : _mm256_maskload_ps(src + 8 * v, lane_mask(n)));
          }
        }
      } else {
        // B stored N×K: transpose 8×8 blocks; rows past w are zero, k past kc masked off.
        for (int v = 0; v < nv; ++v) {
          const int rows = w - 8 * v < 8 ? w - 8 * v : 8;
          for (int kb = 0; kb < kc; kb += 8) {
            const int kn = kc - kb < 8 ? kc - kb : 8;
            const __m256i km = lane_mask(kn);
            __m256 r[8];
            for (int i = 0; i < 8; ++i) {
              const float* src = B + size_t(jp + 8 * v + i) * ldb + (k0 + kb);
              r[i] = i >= rows ? _mm256_setzero_ps()
                     : kn == 8 ? _mm256_loadu_ps(src)
                               : _mm256_maskload_ps(src, km);
            }
            transpose8(r);
            for (int t = 0; t < kn; ++t) _mm256_store_ps(panel + (kb + t) * kNR + 8 * v, r[t]);
          }
        }
      }
    }
  }

  static void kernel(int mr, int nr, int kc, const float* a, ptrdiff_t rsa, ptrdiff_t csa,
                     const float* bp, float* c, ptrdiff_t ldc, float alpha, float beta) {
    const int nv = ceil_div(nr, 8);
    // One of rsa/csa is always 1; csa == 1 means op(A) rows are contiguous (ROWS).
    const KernelFn fn = csa == 1 ? kByM<true>[mr - 1][nv - 1] : kByM<false>[mr - 1][nv - 1];
    fn(kc, a, rsa, csa, bp, c, ldc, alpha, beta, nr - 8 * (nv - 1));
  }
};

}  // namespace

void gemm_avx2(const GemmArgs& g) { gemm_blocked<Avx2Arch>(g); }

}  // namespace spdfq::cpu

#else  // not x86-64: keep the symbol, never selected by the dispatcher

namespace spdfq::cpu {
void gemm_avx2(const GemmArgs& g) { gemm_ref(g); }
}  // namespace spdfq::cpu

#endif
