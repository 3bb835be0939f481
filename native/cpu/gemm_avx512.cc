// AVX-512F GEMM: 6×64 register-blocked micro-kernel (6 rows × 4 zmm = 24 accumulators,
// 4 zmm for the B row, 1 for the A broadcast — 29 of 32 zmm), blocking in gemm_pack.h.
//
// Why 6×64: per k step it issues 24 FMAs against 4 vector loads of B and 6 scalar
// broadcasts of A (10 loads per 24 FMAs, well under what Zen 4/5 or Skylake-X can load),
// and 24 independent accumulator chains cover FMA latency (4) × 2 pipes.
// NR = 64 also matches the attention head size (N = 64 in probs·v) exactly.
//
// Build flags: -O3 -mavx512f -mavx512vl -mavx512bw -mavx512dq -mfma [-mavx2] (only F is used;
// cpu_features requires the whole set before this variant is picked).
#include "gemm.h"

#if defined(__x86_64__)

// GCC 12 false positive: _mm512_undefined_ps() (self-initialized on purpose) inside
// unpack/shuffle intrinsics trips -Wmaybe-uninitialized once they are inlined.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "gemm_pack.h"

namespace spdfq::cpu {
namespace {

constexpr int kMR = 6;
constexpr int kNR = 64;
constexpr int kNV = kNR / 16;  // zmm vectors per B row

// Lanes [0, n) set, n clamped to [0, 16].
inline __mmask16 lane_mask(int n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

// Micro-kernel for an M×(≤16·NV) tile. ROWS: op(A) is row-major in memory (element (i,k)
// at a[i*rsa + k]); otherwise A is transposed in memory (element (i,k) at a[i + k*csa]).
// Only the last of the NV vectors is partial (`tail`): packed B rows are 64-aligned and
// zero-filled past the matrix edge, so B loads are full vectors, and C is only touched
// through the mask (masked-off lanes never fault).
template <int M, int NV, bool ROWS>
void ukernel(int kc, const float* a, ptrdiff_t rsa, ptrdiff_t csa, const float* bp, float* c,
             ptrdiff_t ldc, float alpha, float beta, __mmask16 tail) {
  // Warm the C tile while the k loop runs; it is needed only at the end. (A prefetch
  // past the end of C is harmless: prefetches never fault.)
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16 * NV - 1), _MM_HINT_T0);
  }
  __m512 acc[M][NV];
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();

  if constexpr (ROWS) {
    const float* ar[M];
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) ar[i] = a + i * rsa;
#pragma GCC unroll 2
    for (int k = 0; k < kc; ++k) {
      __m512 b[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) b[v] = _mm512_load_ps(bp + k * kNR + 16 * v);
#pragma GCC unroll 8
      for (int i = 0; i < M; ++i) {
        const __m512 ai = _mm512_set1_ps(ar[i][k]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, b[v], acc[i][v]);
      }
    }
  } else {
#pragma GCC unroll 2
    for (int k = 0; k < kc; ++k) {
      const float* ak = a + k * csa;
      __m512 b[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) b[v] = _mm512_load_ps(bp + k * kNR + 16 * v);
#pragma GCC unroll 8
      for (int i = 0; i < M; ++i) {
        const __m512 ai = _mm512_set1_ps(ak[i]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, b[v], acc[i][v]);
      }
    }
  }

  const __m512 va = _mm512_set1_ps(alpha);
  const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) {
    float* ci = c + i * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const __mmask16 m = v == NV - 1 ? tail : __mmask16(0xFFFF);
      __m512 r = _mm512_mul_ps(acc[i][v], va);
      if (beta != 0.0f) r = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, ci + 16 * v), vb, r);
      _mm512_mask_storeu_ps(ci + 16 * v, m, r);
    }
  }
}

using KernelFn = void (*)(int, const float*, ptrdiff_t, ptrdiff_t, const float*, float*,
                          ptrdiff_t, float, float, __mmask16);

// kTable[rows][m-1][nv-1]: every edge shape gets its own fully unrolled kernel.
template <bool ROWS, int M>
constexpr KernelFn kRow[kNV] = {ukernel<M, 1, ROWS>, ukernel<M, 2, ROWS>, ukernel<M, 3, ROWS>,
                                ukernel<M, 4, ROWS>};
template <bool ROWS>
constexpr const KernelFn* kByM[kMR] = {kRow<ROWS, 1>, kRow<ROWS, 2>, kRow<ROWS, 3>,
                                       kRow<ROWS, 4>, kRow<ROWS, 5>, kRow<ROWS, 6>};

// In-register transpose of 16 rows of 16 floats (r[i] ← column i).
inline void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // u[4q + j] holds column j (mod 4) of rows 4q..4q+3, one 128-bit lane per group of 4 columns.
  for (int q = 0; q < 4; ++q) {
    u[4 * q + 0] = _mm512_shuffle_ps(t[4 * q], t[4 * q + 2], 0x44);
    u[4 * q + 1] = _mm512_shuffle_ps(t[4 * q], t[4 * q + 2], 0xEE);
    u[4 * q + 2] = _mm512_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0x44);
    u[4 * q + 3] = _mm512_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0xEE);
  }
  for (int j = 0; j < 4; ++j) {
    const __m512 v0 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);
    const __m512 v1 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xDD);
    const __m512 v2 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
    const __m512 v3 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xDD);
    r[j] = _mm512_shuffle_f32x4(v0, v2, 0x88);
    r[j + 8] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
    r[j + 4] = _mm512_shuffle_f32x4(v1, v3, 0x88);
    r[j + 12] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
  }
}

struct Avx512Arch {
  static constexpr int MR = kMR, NR = kNR;
  // Blocking (upper bounds; gemm_blocked splits K, M, N into near-equal blocks):
  //  * KC = 256: the kc×64 B panel (64 KiB) overflows L1 into L2, but one k step needs
  //    only 256 B of it per 24 FMAs, far below L2→L1 bandwidth on Zen 4/5, while a deep
  //    kc halves the C-tile load/store round trips compared with kc = 128. Measured on a
  //    Zen 5 core, KC 96…384 × MC 96…384 all land within noise (±5%) of each other.
  //  * MC = 192: the MC×kc slice of A (192 KiB) stays in the 1 MiB L2 across the jr loop.
  //  * NC = 3072: the packed kc×nc B block (≤ 3 MiB per thread) — every ViT-Tiny/Base
  //    width up to the 3072-wide MLP fits one block, so B is packed once per K block.
  static constexpr int KC = 256, MC = 192, NC = 3072;

  static void pack_b(bool transB, const float* B, ptrdiff_t ldb, int k0, int j0, int kc,
                     int nc, float* dst) {
    for (int p = 0; p * kNR < nc; ++p) {
      float* panel = dst + size_t(p) * kc * kNR;
      const int jp = j0 + p * kNR;
      const int w = nc - p * kNR < kNR ? nc - p * kNR : kNR;
      const int nv = ceil_div(w, 16);
      if (!transB) {
        // op(B) row k is contiguous in memory: plain (masked) vector copies.
        for (int k = 0; k < kc; ++k) {
          const float* src = B + size_t(k0 + k) * ldb + jp;
          for (int v = 0; v < nv; ++v)
            _mm512_store_ps(panel + k * kNR + 16 * v,
                            _mm512_maskz_loadu_ps(lane_mask(w - 16 * v), src + 16 * v));
        }
      } else {
        // B is stored N×K: op(B)[k][j] = B[j*ldb + k]. Transpose 16×16 blocks in registers;
        // rows past w are zero, loads past kc are masked off.
        for (int v = 0; v < nv; ++v) {
          const int rows = w - 16 * v < 16 ? w - 16 * v : 16;
          for (int kb = 0; kb < kc; kb += 16) {
            const int kn = kc - kb < 16 ? kc - kb : 16;
            const __mmask16 km = lane_mask(kn);
            __m512 r[16];
            for (int i = 0; i < 16; ++i)
              r[i] = i < rows ? _mm512_maskz_loadu_ps(
                                    km, B + size_t(jp + 16 * v + i) * ldb + (k0 + kb))
                              : _mm512_setzero_ps();
            transpose16(r);
            for (int t = 0; t < kn; ++t) _mm512_store_ps(panel + (kb + t) * kNR + 16 * v, r[t]);
          }
        }
      }
    }
  }

  static void kernel(int mr, int nr, int kc, const float* a, ptrdiff_t rsa, ptrdiff_t csa,
                     const float* bp, float* c, ptrdiff_t ldc, float alpha, float beta) {
    const int nv = ceil_div(nr, 16);
    const __mmask16 tail = lane_mask(nr - 16 * (nv - 1));
    // One of rsa/csa is always 1; csa == 1 means op(A) rows are contiguous (ROWS).
    const KernelFn fn = csa == 1 ? kByM<true>[mr - 1][nv - 1] : kByM<false>[mr - 1][nv - 1];
    fn(kc, a, rsa, csa, bp, c, ldc, alpha, beta, tail);
  }
};

}  // namespace

void gemm_avx512(const GemmArgs& g) { gemm_blocked<Avx512Arch>(g); }

}  // namespace spdfq::cpu

#else  // not x86-64: keep the symbol, never selected by the dispatcher

namespace spdfq::cpu {
void gemm_avx512(const GemmArgs& g) { gemm_ref(g); }
}  // namespace spdfq::cpu

#endif
