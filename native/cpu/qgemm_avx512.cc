// AVX-512 VNNI integer GEMM: 6×64 register tile (6 rows × 4 zmm = 24 int32 accumulators,
// 4 zmm of B, 1 A broadcast). Each vpdpbusd multiplies 4 consecutive u8 of A (broadcast
// as one dword) with 4 s8 of B per column and adds the 4 products into the int32 lane:
// per 4 values of k a tile costs 24 vpdpbusd, 4 loads of B and 6 broadcasts of A.
// vpdpbusd (not the saturating vpdpbusds) never saturates: 4 products of at most
// 255·128 each fit easily, and the int32 lane wraps, which the exactness argument in
// qgemm.h allows for.
//
// 4-bit weights: one 64-byte block holds two k-quads as nibbles (qpack_b), split with an
// and / shift+and into two vpdpbusd operands; nibbles are 0..15, valid s8 as they are.
//
// Blocking: no K blocking — a tile accumulates the whole K in registers, so the epilogue
// (zero-point correction, dequantization) runs once per output and C is written once.
// The 64×K panel of B (≤ 192 KiB at K = 3072) is reused by every row tile of an MC-row
// block of A kept in L2. A is read in place (never packed): broadcasts take any stride.
//
// Build flags: -O3 -mavx512f -mavx512vl -mavx512bw -mavx512dq -mavx512vnni -mfma -mavx2
// (the dispatcher requires cpu_features().avx512_vnni, which implies all of them).
#include "qgemm.h"

#if defined(__x86_64__)

// GCC 12 false positive: _mm512_undefined_ps() (self-initialized on purpose) inside
// conversion intrinsics trips -Wmaybe-uninitialized once they are inlined.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

namespace spdfq::cpu {
// Internal linkage for everything here: inline functions with external linkage would be
// merged with same-named copies from baseline TUs by the linker (see gemm_pack.h).
namespace {

constexpr int kMR = 6;
constexpr int kNV = 4;  // zmm (16 columns each) per tile row
constexpr int kNR = 16 * kNV;
// Bytes of A per M block: with the B panel (≤ 192 KiB) it stays within a 1 MiB L2.
constexpr size_t kABlockBytes = 384 * 1024;

inline __mmask16 lane_mask(int n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

inline int32_t load_a4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// The first n (1..4) bytes at p, zero-extended: the K tail of a row, read without
// touching memory past it (the next row, or a guard page after the last one).
inline int32_t load_a_tail(const uint8_t* p, int n) {
  if (n >= 4) return load_a4(p);
  uint32_t v = p[0];
  if (n > 1) v |= uint32_t(p[1]) << 8;
  if (n > 2) v |= uint32_t(p[2]) << 16;
  return int32_t(v);
}

// Epilogue operands for one 16-column vector of a tile (masked past N).
struct ColTerms {
  __m512i off, zero;
  __m512 scale, bias;
  __mmask16 m;
};

inline ColTerms col_terms(const QGemmArgs& g, int j, __mmask16 m) {
  ColTerms t;
  t.m = m;
  t.off = g.col_off ? _mm512_maskz_loadu_epi32(m, g.col_off + j) : _mm512_setzero_si512();
  t.zero = g.row_sum ? _mm512_maskz_loadu_epi32(m, g.col_zero + j) : _mm512_setzero_si512();
  t.scale = g.Cf ? _mm512_maskz_loadu_ps(m, g.col_scale + j) : _mm512_setzero_ps();
  t.bias = g.Cf && g.col_bias ? _mm512_maskz_loadu_ps(m, g.col_bias + j) : _mm512_setzero_ps();
  return t;
}

// v = acc − row_sum[i]·col_zero + col_off, then stored as int32 or dequantized.
inline void finish(const QGemmArgs& g, __m512i acc, const ColTerms& t, int i, int j) {
  acc = _mm512_add_epi32(acc, t.off);
  if (g.row_sum) acc = _mm512_sub_epi32(acc, _mm512_mullo_epi32(_mm512_set1_epi32(g.row_sum[i]), t.zero));
  if (g.Cf) {
    const __m512 y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), t.scale, t.bias);
    _mm512_mask_storeu_ps(g.Cf + i * g.ldc + j, t.m, y);
  } else {
    _mm512_mask_storeu_epi32(g.C32 + i * g.ldc + j, t.m, acc);
  }
}

// Every accumulator goes through `finish` by value: handing the array to a helper by
// reference made g++ keep it in memory, spilling all 24 accumulators in the k loop.
#define SPDFQ_QSTORE_TILE()                                                  \
  _Pragma("GCC unroll 4") for (int v = 0; v < NV; ++v) {                    \
    const ColTerms t = col_terms(g, j0 + 16 * v, v == NV - 1 ? tail : __mmask16(0xFFFF)); \
    _Pragma("GCC unroll 8") for (int i = 0; i < M; ++i) finish(g, acc[i][v], t, i0 + i, j0 + 16 * v); \
  }

// M×(16·NV) tile, S8 weights: a = A row i0, bp = first of NV consecutive panels.
template <int M, int NV>
void kernel_s8(const QGemmArgs& g, const uint8_t* a, const uint8_t* bp, size_t pstride, int i0,
               int j0, __mmask16 tail) {
  const int K = g.B.K;
  __m512i acc[M][NV];
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_si512();
  const uint8_t* ar[M];
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) ar[i] = a + i * g.lda;
  const uint8_t* bv[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) bv[v] = bp + v * pstride;

  // The partial k-quad (K % 4 values) goes first: integer sums do not care about order,
  // and with nothing but the epilogue after the main loop g++ keeps all 24 accumulators
  // in registers (a tail block after it made it store them to the stack every iteration).
  const int G = K / 4;
  if (K & 3) {
    __m512i b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b[v] = _mm512_loadu_si512(bv[v] + 64 * G);
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
      const __m512i ai = _mm512_set1_epi32(load_a_tail(ar[i] + 4 * G, K & 3));
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbusd_epi32(acc[i][v], ai, b[v]);
    }
  }
#pragma GCC unroll 2
  for (int q = 0; q < G; ++q) {
    __m512i b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b[v] = _mm512_loadu_si512(bv[v] + 64 * q);
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
      const __m512i ai = _mm512_set1_epi32(load_a4(ar[i] + 4 * q));
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbusd_epi32(acc[i][v], ai, b[v]);
    }
  }
  SPDFQ_QSTORE_TILE()
}

// Same for U4 weights: per 64-byte block, low nibbles are k 8h..8h+3, high 8h+4..8h+7.
// The high half reloads the block instead of keeping the raw vectors alive, which would
// need 4 more zmm than the 32 there are (24 accumulators + 4 B + mask + A).
template <int M, int NV>
void kernel_u4(const QGemmArgs& g, const uint8_t* a, const uint8_t* bp, size_t pstride, int i0,
               int j0, __mmask16 tail) {
  const int K = g.B.K;
  const __m512i nib = _mm512_set1_epi8(0x0F);
  __m512i acc[M][NV];
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_si512();
  const uint8_t* ar[M];
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) ar[i] = a + i * g.lda;
  const uint8_t* bv[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) bv[v] = bp + v * pstride;

  const int H = K / 8;  // tail first, as in kernel_s8
  const int rem = K & 7;
  if (rem) {
    __m512i raw[NV], b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      raw[v] = _mm512_loadu_si512(bv[v] + 64 * H);
      b[v] = _mm512_and_si512(raw[v], nib);
    }
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
      const __m512i ai = _mm512_set1_epi32(load_a_tail(ar[i] + 8 * H, rem));
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbusd_epi32(acc[i][v], ai, b[v]);
    }
    if (rem > 4) {
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) b[v] = _mm512_and_si512(_mm512_srli_epi16(raw[v], 4), nib);
#pragma GCC unroll 8
      for (int i = 0; i < M; ++i) {
        const __m512i ai = _mm512_set1_epi32(load_a_tail(ar[i] + 8 * H + 4, rem - 4));
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbusd_epi32(acc[i][v], ai, b[v]);
      }
    }
  }
  for (int h = 0; h < H; ++h) {
    __m512i b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b[v] = _mm512_and_si512(_mm512_loadu_si512(bv[v] + 64 * h), nib);
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
      const __m512i ai = _mm512_set1_epi32(load_a4(ar[i] + 8 * h));
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbusd_epi32(acc[i][v], ai, b[v]);
    }
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      b[v] = _mm512_and_si512(_mm512_srli_epi16(_mm512_loadu_si512(bv[v] + 64 * h), 4), nib);
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
      const __m512i ai = _mm512_set1_epi32(load_a4(ar[i] + 8 * h + 4));
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbusd_epi32(acc[i][v], ai, b[v]);
    }
  }
  SPDFQ_QSTORE_TILE()
}

using KernelFn = void (*)(const QGemmArgs&, const uint8_t*, const uint8_t*, size_t, int, int,
                          __mmask16);

// [m-1][nv-1]: every edge shape gets its own fully unrolled kernel.
#define SPDFQ_QROW(K, M) {K<M, 1>, K<M, 2>, K<M, 3>, K<M, 4>}
#define SPDFQ_QTABLE(K) \
  {SPDFQ_QROW(K, 1), SPDFQ_QROW(K, 2), SPDFQ_QROW(K, 3), \
   SPDFQ_QROW(K, 4), SPDFQ_QROW(K, 5), SPDFQ_QROW(K, 6)}
constexpr KernelFn kS8[kMR][kNV] = SPDFQ_QTABLE(kernel_s8);
constexpr KernelFn kU4[kMR][kNV] = SPDFQ_QTABLE(kernel_u4);
#undef SPDFQ_QTABLE
#undef SPDFQ_QROW
#undef SPDFQ_QSTORE_TILE

}  // namespace

void qgemm_avx512(const QGemmArgs& g) {
  const int M = g.M, N = g.B.N, K = g.B.K;
  if (M <= 0 || N <= 0) return;
  const KernelFn(*table)[kNV] = g.B.format == QWeightFormat::S8 ? kS8 : kU4;
  const size_t pstride = qpack_b_panel_stride(g.B.format, K);
  // Near-equal M blocks, each a multiple of kMR, of at most kABlockBytes of A.
  int mc_max = int(kABlockBytes / size_t(K > 0 ? K : 1));
  mc_max = mc_max < kMR ? kMR : mc_max / kMR * kMR;
  const int parts = (M + mc_max - 1) / mc_max;
  const int mc_blk = ((M + parts - 1) / parts + kMR - 1) / kMR * kMR;
  for (int ic = 0; ic < M; ic += mc_blk) {
    const int mc = M - ic < mc_blk ? M - ic : mc_blk;
    for (int jc = 0; jc < N; jc += kNR) {
      const int nr = N - jc < kNR ? N - jc : kNR;
      const int nv = (nr + 15) / 16;
      const __mmask16 tail = lane_mask(nr - 16 * (nv - 1));
      const uint8_t* bp = g.B.data + size_t(jc / 16) * pstride;
      for (int ir = 0; ir < mc; ir += kMR) {
        const int mr = mc - ir < kMR ? mc - ir : kMR;
        const int i0 = ic + ir;
        table[mr - 1][nv - 1](g, g.A + i0 * g.lda, bp, pstride, i0, jc, tail);
      }
    }
  }
}

}  // namespace spdfq::cpu

#else  // not x86-64: keep the symbol, never selected by the dispatcher

namespace spdfq::cpu {
void qgemm_avx512(const QGemmArgs& g) { qgemm_ref(g); }
}  // namespace spdfq::cpu

#endif
