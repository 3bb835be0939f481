// AVX2 integer GEMM: 6×8 register tiles over half-panels (8 of the 16 columns of a
// qpack_b panel: the first or last 32 bytes of every 64-byte block).
//
// Without VNNI, u8×s8 dot products go through vpmaddubsw, whose int16 pair sums saturate:
// 255·(−128)·2 = −65280 does not fit. So the kernel is chosen by the operand ranges:
//
//   * U4 weights (0..15): vpmaddubsw is exact, |pair| ≤ 2·255·15 = 7650; two blocks'
//     pairs are added in int16 (≤ 15300) before one vpmaddwd by 1s widens to int32.
//   * S8 weights with a_max ≤ 127 (activations of 7 bits or fewer, e.g. w8a6, w6a6):
//     |pair| ≤ 2·127·128 = 32512 ≤ 32767, exact; then vpmaddwd by 1s.
//   * S8 weights with 8-bit activations: no vpmaddubsw at all. Both operands are widened
//     to int16 (vpmovzxbw / vpmovsxbw) and multiplied with vpmaddwd, whose pair sums
//     (|a0·b0 + a1·b1| ≤ 65280) are already int32, so nothing can saturate. Per column
//     the two int32 partials (k 0–1 and 2–3 of each quad) are kept in separate lanes and
//     added once per tile in the epilogue (vphaddd). Splitting B into nibbles so that
//     vpmaddubsw stays exact needs 2 vpmaddubsw + 2 vpmaddwd + 2 adds per 32 products
//     against 2 vpmaddwd + 2 adds here, and this needs no proof beyond "int16 × int16
//     fits int32". (An in-lane vpshufb instead of vpmovzxbw for A, and 4-row tiles
//     instead of 6, measured no faster on Zen 5.)
//
// The checker runs every kernel on the extreme values (A = a_max, B = −128 / 127 / 15)
// where any saturation would show.
//
// Build flags: -O3 -mavx2 -mfma
#include "qgemm.h"

#if defined(__x86_64__)

#include <immintrin.h>

#include <cstring>

namespace spdfq::cpu {
// Internal linkage for everything here (see gemm_pack.h: no cross-ISA merging of inlines).
namespace {

constexpr int kMR = 6;
constexpr int kNR = 8;
// A block small enough for a 256 KiB L2 next to the 8×K panel of B.
constexpr size_t kABlockBytes = 128 * 1024;

inline int32_t load_a4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// First n (1..4) bytes at p, zero-extended, reading nothing past p + n.
inline int32_t load_a_tail(const uint8_t* p, int n) {
  if (n >= 4) return load_a4(p);
  uint32_t v = p[0];
  if (n > 1) v |= uint32_t(p[1]) << 8;
  if (n > 2) v |= uint32_t(p[2]) << 16;
  return int32_t(v);
}

// Up to 8 int32/float at p; lanes past n are zero. Plain copies for the tail: vmaskmov
// is slow on AMD, and this only runs once per tile.
inline __m256i load8_i32(const int32_t* p, int n) {
  if (n >= 8) return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  alignas(32) int32_t t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < n; ++i) t[i] = p[i];
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(t));
}

inline __m256 load8_f32(const float* p, int n) {
  if (n >= 8) return _mm256_loadu_ps(p);
  alignas(32) float t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < n; ++i) t[i] = p[i];
  return _mm256_load_ps(t);
}

// Epilogue operands for the 8 (or nr < 8) columns of a tile.
struct ColTerms {
  __m256i off, zero;
  __m256 scale, bias;
  int nr;
};

inline ColTerms col_terms(const QGemmArgs& g, int j, int nr) {
  ColTerms t;
  t.nr = nr;
  t.off = g.col_off ? load8_i32(g.col_off + j, nr) : _mm256_setzero_si256();
  t.zero = g.row_sum ? load8_i32(g.col_zero + j, nr) : _mm256_setzero_si256();
  t.scale = g.Cf ? load8_f32(g.col_scale + j, nr) : _mm256_setzero_ps();
  t.bias = g.Cf && g.col_bias ? load8_f32(g.col_bias + j, nr) : _mm256_setzero_ps();
  return t;
}

// v = acc − row_sum[i]·col_zero + col_off, stored as int32 or dequantized.
inline void finish(const QGemmArgs& g, __m256i acc, const ColTerms& t, int i, int j) {
  acc = _mm256_add_epi32(acc, t.off);
  if (g.row_sum)
    acc = _mm256_sub_epi32(acc, _mm256_mullo_epi32(_mm256_set1_epi32(g.row_sum[i]), t.zero));
  if (g.Cf) {
    const __m256 y = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), t.scale, t.bias);
    float* c = g.Cf + i * g.ldc + j;
    if (t.nr >= 8) {
      _mm256_storeu_ps(c, y);
    } else {
      alignas(32) float tmp[8];
      _mm256_store_ps(tmp, y);
      for (int n = 0; n < t.nr; ++n) c[n] = tmp[n];
    }
  } else {
    int32_t* c = g.C32 + i * g.ldc + j;
    if (t.nr >= 8) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(c), acc);
    } else {
      alignas(32) int32_t tmp[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), acc);
      for (int n = 0; n < t.nr; ++n) c[n] = tmp[n];
    }
  }
}

inline __m256i load32(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// One k-quad of the widening kernel: A's 4 bytes as int16 (a0 a1 a2 a3, repeated in each
// 64-bit lane) against B's 8 columns × 4 k as int16, columns 0–3 in w0 and 4–7 in w1.
// acc0 lane 2c / 2c+1 get column c's a0·b0 + a1·b1 / a2·b2 + a3·b3; likewise acc1.
#define SPDFQ_WIDE_STEP(AVAL)                                                        \
  {                                                                                  \
    const __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bq))); \
    const __m256i w1 =                                                               \
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bq + 16))); \
    _Pragma("GCC unroll 8") for (int i = 0; i < M; ++i) {                            \
      const __m256i ai = _mm256_cvtepu8_epi16(_mm_set1_epi32(AVAL));                 \
      acc0[i] = _mm256_add_epi32(acc0[i], _mm256_madd_epi16(ai, w0));                \
      acc1[i] = _mm256_add_epi32(acc1[i], _mm256_madd_epi16(ai, w1));                \
    }                                                                                \
  }

// S8 weights, any u8 activations (int16 widening, see the top of the file).
template <int M>
void kernel_s8_wide(const QGemmArgs& g, const uint8_t* a, const uint8_t* bp, int i0, int j0,
                    int nr) {
  const int K = g.B.K;
  __m256i acc0[M], acc1[M];
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) acc0[i] = acc1[i] = _mm256_setzero_si256();
  const uint8_t* ar[M];
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) ar[i] = a + i * g.lda;
  // Partial quad first: with only the epilogue after the main loop, the accumulators
  // stay in registers (see qgemm_avx512.cc).
  const int G = K / 4;
  if (K & 3) {
    const uint8_t* bq = bp + 64 * G;
    SPDFQ_WIDE_STEP(load_a_tail(ar[i] + 4 * G, K & 3))
  }
  for (int q = 0; q < G; ++q) {
    const uint8_t* bq = bp + 64 * q;
    SPDFQ_WIDE_STEP(load_a4(ar[i] + 4 * q))
  }
  const ColTerms t = col_terms(g, j0, nr);
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) {
    // hadd gives columns 0 1 4 5 | 2 3 6 7; the qword permute restores 0..7.
    const __m256i v = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc0[i], acc1[i]), 0xD8);
    finish(g, v, t, i0 + i, j0);
  }
}
#undef SPDFQ_WIDE_STEP

// S8 weights with a_max ≤ 127: vpmaddubsw pairs cannot saturate.
template <int M>
void kernel_s8_7bit(const QGemmArgs& g, const uint8_t* a, const uint8_t* bp, int i0, int j0,
                    int nr) {
  const int K = g.B.K;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc[M];
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) acc[i] = _mm256_setzero_si256();
  const uint8_t* ar[M];
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) ar[i] = a + i * g.lda;
  const int G = K / 4;
  if (K & 3) {
    const __m256i b = load32(bp + 64 * G);
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
      const __m256i ai = _mm256_set1_epi32(load_a_tail(ar[i] + 4 * G, K & 3));
      acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(_mm256_maddubs_epi16(ai, b), ones));
    }
  }
  for (int q = 0; q < G; ++q) {
    const __m256i b = load32(bp + 64 * q);
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
      const __m256i ai = _mm256_set1_epi32(load_a4(ar[i] + 4 * q));
      acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(_mm256_maddubs_epi16(ai, b), ones));
    }
  }
  const ColTerms t = col_terms(g, j0, nr);
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) finish(g, acc[i], t, i0 + i, j0);
}

// U4 weights: low nibbles are k 8h..8h+3, high nibbles 8h+4..8h+7 of block h.
template <int M>
void kernel_u4(const QGemmArgs& g, const uint8_t* a, const uint8_t* bp, int i0, int j0, int nr) {
  const int K = g.B.K;
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i nib = _mm256_set1_epi8(0x0F);
  __m256i acc[M];
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) acc[i] = _mm256_setzero_si256();
  const uint8_t* ar[M];
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) ar[i] = a + i * g.lda;
  const int H = K / 8;
  const int rem = K & 7;
  if (rem) {
    const __m256i raw = load32(bp + 64 * H);
    const __m256i lo = _mm256_and_si256(raw, nib);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), nib);
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
      const __m256i a0 = _mm256_set1_epi32(load_a_tail(ar[i] + 8 * H, rem));
      const __m256i a1 = _mm256_set1_epi32(rem > 4 ? load_a_tail(ar[i] + 8 * H + 4, rem - 4) : 0);
      const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(a0, lo), _mm256_maddubs_epi16(a1, hi));
      acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(p, ones));
    }
  }
  for (int h = 0; h < H; ++h) {
    const __m256i raw = load32(bp + 64 * h);
    const __m256i lo = _mm256_and_si256(raw, nib);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), nib);
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
      const __m256i a0 = _mm256_set1_epi32(load_a4(ar[i] + 8 * h));
      const __m256i a1 = _mm256_set1_epi32(load_a4(ar[i] + 8 * h + 4));
      // Each vpmaddubsw lane ≤ 2·255·15 = 7650, so the int16 sum ≤ 15300: no saturation.
      const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(a0, lo), _mm256_maddubs_epi16(a1, hi));
      acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(p, ones));
    }
  }
  const ColTerms t = col_terms(g, j0, nr);
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) finish(g, acc[i], t, i0 + i, j0);
}

using KernelFn = void (*)(const QGemmArgs&, const uint8_t*, const uint8_t*, int, int, int);

constexpr KernelFn kWide[kMR] = {kernel_s8_wide<1>, kernel_s8_wide<2>, kernel_s8_wide<3>,
                                 kernel_s8_wide<4>, kernel_s8_wide<5>, kernel_s8_wide<6>};
constexpr KernelFn k7Bit[kMR] = {kernel_s8_7bit<1>, kernel_s8_7bit<2>, kernel_s8_7bit<3>,
                                 kernel_s8_7bit<4>, kernel_s8_7bit<5>, kernel_s8_7bit<6>};
constexpr KernelFn kU4[kMR] = {kernel_u4<1>, kernel_u4<2>, kernel_u4<3>,
                               kernel_u4<4>, kernel_u4<5>, kernel_u4<6>};

}  // namespace

void qgemm_avx2(const QGemmArgs& g) {
  const int M = g.M, N = g.B.N, K = g.B.K;
  if (M <= 0 || N <= 0) return;
  const KernelFn* table = g.B.format == QWeightFormat::U4 ? kU4 : g.a_max <= 127 ? k7Bit : kWide;
  const size_t pstride = qpack_b_panel_stride(g.B.format, K);
  int mc_max = int(kABlockBytes / size_t(K > 0 ? K : 1));
  mc_max = mc_max < kMR ? kMR : mc_max / kMR * kMR;
  const int parts = (M + mc_max - 1) / mc_max;
  const int mc_blk = ((M + parts - 1) / parts + kMR - 1) / kMR * kMR;
  for (int ic = 0; ic < M; ic += mc_blk) {
    const int mc = M - ic < mc_blk ? M - ic : mc_blk;
    for (int jc = 0; jc < N; jc += kNR) {
      const int nr = N - jc < kNR ? N - jc : kNR;
      // Half-panel: panel jc/16, first or second 32 bytes of each block.
      const uint8_t* bp = g.B.data ? g.B.data + size_t(jc / 16) * pstride + (jc % 16 ? 32 : 0)
                                   : nullptr;
      for (int ir = 0; ir < mc; ir += kMR) {
        const int mr = mc - ir < kMR ? mc - ir : kMR;
        const int i0 = ic + ir;
        table[mr - 1](g, g.A + i0 * g.lda, bp, i0, jc, nr);
      }
    }
  }
}

}  // namespace spdfq::cpu

#else  // not x86-64: keep the symbol, never selected by the dispatcher

namespace spdfq::cpu {
void qgemm_avx2(const QGemmArgs& g) { qgemm_ref(g); }
}  // namespace spdfq::cpu

#endif
