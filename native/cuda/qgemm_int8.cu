// The integer tensor-core GEMM (see qgemm.h). Fragment layouts of mma.m16n8k32 for 8-bit
// operands (PTX ISA, "Matrix Fragments for mma.m16n8k32"), with g = lane/4, t = lane%4:
//   A (16×32, row): reg0 = row g, bytes 4t..4t+3; reg1 = row g+8, same; reg2 = row g,
//                   bytes 16+4t..; reg3 = row g+8, bytes 16+4t..
//   B (32×8, col):  reg0 = column g, k 4t..4t+3; reg1 = column g, k 16+4t..
//   C (16×8 s32):   c0, c1 = row g, columns 2t, 2t+1; c2, c3 = row g+8, same columns.
// Shared memory holds A as [m][k] and B as [n][k] (both K-contiguous, 80-byte rows: the
// eight rows a fragment load touches then fall in distinct banks), so every register is
// one aligned 32-bit shared load.
#include <cstring>
#include <string>

#include "../core/errors.h"
#include "cuda_check.h"
#include "qgemm.h"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#error "the spdfq CUDA backend needs sm_80 or newer (mma.sync m16n8k32, TF32 wmma)"
#endif

namespace spdfq::cuda {

namespace {

constexpr int kBM = 64, kBN = 64, kBK = 64, kThreads = 128;
constexpr int kLd = kBK + 16;  // shared row stride in bytes
constexpr int kChunks = kBM * (kBK / 16) / kThreads;  // 16-byte chunks per thread per operand (2)

// 16 bytes of row `row` (of `rows`) from byte column k: vector load when aligned and in
// range, else guarded bytes with zero padding.
__device__ __forceinline__ uint4 load_bytes(const uint8_t* base, int64_t ld, int row, int rows, int k, int K) {
  uint4 r = make_uint4(0u, 0u, 0u, 0u);
  if (row >= rows) return r;
  const uint8_t* p = base + int64_t(row) * ld + k;
  if (k + 16 <= K && (reinterpret_cast<uintptr_t>(p) & 15u) == 0) return *reinterpret_cast<const uint4*>(p);
  uint32_t w[4] = {0u, 0u, 0u, 0u};
#pragma unroll
  for (int j = 0; j < 16; ++j)
    if (k + j < K) w[j / 4] |= uint32_t(p[j]) << (8 * (j % 4));
  return make_uint4(w[0], w[1], w[2], w[3]);
}

// 16 weight values k..k+15 of a U4 row, unpacked to one byte each (k is a multiple of 16,
// so they are the 8 bytes from k/2).
__device__ __forceinline__ uint4 load_u4(const uint8_t* base, int64_t ld, int row, int rows, int k, int K) {
  uint4 r = make_uint4(0u, 0u, 0u, 0u);
  if (row >= rows) return r;
  const uint8_t* p = base + int64_t(row) * ld + k / 2;
  uint32_t packed[2] = {0u, 0u};
  if (k + 16 <= K && (reinterpret_cast<uintptr_t>(p) & 7u) == 0) {
    const uint2 v = *reinterpret_cast<const uint2*>(p);
    packed[0] = v.x;
    packed[1] = v.y;
  } else {
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int kk = k + 2 * j;
      uint32_t b = kk < K ? p[j] : 0u;
      if (kk + 1 >= K) b &= 0x0Fu;  // the high nibble of a row's last byte is padding
      packed[j / 4] |= b << (8 * (j % 4));
    }
  }
  // Byte i of `packed` holds values 2i (low) and 2i+1 (high) → output bytes 2i, 2i+1.
  uint32_t out[4];
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    const uint32_t src = packed[q / 2] >> (16 * (q % 2));  // packed bytes 2q, 2q+1 in the low 16 bits
    out[q] = (src & 0x0Fu) | ((src >> 4) & 0x0Fu) << 8 | ((src >> 8) & 0x0Fu) << 16 | ((src >> 12) & 0x0Fu) << 24;
  }
  return make_uint4(out[0], out[1], out[2], out[3]);
}

__device__ __forceinline__ void mma_u8s8(int32_t (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

template <QWeightLayout L>
__global__ void __launch_bounds__(kThreads) k_qgemm(QGemmArgs g) {
  __shared__ __align__(16) uint8_t As[kBM * kLd];
  __shared__ __align__(16) uint8_t Bs[kBN * kLd];
  const int tid = int(threadIdx.x), lane = tid % 32, warp = tid / 32;
  const int wm = warp / 2, wn = warp % 2, gq = lane / 4, tq = lane % 4;
  const int m0 = int(blockIdx.x) * kBM, n0 = int(blockIdx.y) * kBN;
  const uint8_t* B = static_cast<const uint8_t*>(g.B);

  int32_t acc[2][4][4];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) acc[i][j][r] = 0;

  uint4 ra[kChunks], rb[kChunks];
  auto fetch = [&](int k0) {
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      const int chunk = tid + c * kThreads, row = chunk / 4, kc = (chunk % 4) * 16;
      ra[c] = load_bytes(g.A, g.lda, m0 + row, g.M, k0 + kc, g.K);
      rb[c] = L == QWeightLayout::S8 ? load_bytes(B, g.ldb, n0 + row, g.N, k0 + kc, g.K)
                                     : load_u4(B, g.ldb, n0 + row, g.N, k0 + kc, g.K);
    }
  };
  fetch(0);
  for (int k0 = 0; k0 < g.K; k0 += kBK) {
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      const int chunk = tid + c * kThreads, row = chunk / 4, kc = (chunk % 4) * 16;
      *reinterpret_cast<uint4*>(As + row * kLd + kc) = ra[c];
      *reinterpret_cast<uint4*>(Bs + row * kLd + kc) = rb[c];
    }
    __syncthreads();
    if (k0 + kBK < g.K) fetch(k0 + kBK);
#pragma unroll
    for (int ks = 0; ks < kBK; ks += 32) {
      uint32_t a[2][4], b[4][2];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const uint8_t* r0 = As + (wm * 32 + i * 16 + gq) * kLd + ks + 4 * tq;
        a[i][0] = *reinterpret_cast<const uint32_t*>(r0);
        a[i][1] = *reinterpret_cast<const uint32_t*>(r0 + 8 * kLd);
        a[i][2] = *reinterpret_cast<const uint32_t*>(r0 + 16);
        a[i][3] = *reinterpret_cast<const uint32_t*>(r0 + 8 * kLd + 16);
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const uint8_t* r0 = Bs + (wn * 32 + j * 8 + gq) * kLd + ks + 4 * tq;
        b[j][0] = *reinterpret_cast<const uint32_t*>(r0);
        b[j][1] = *reinterpret_cast<const uint32_t*>(r0 + 16);
      }
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) mma_u8s8(acc[i][j], a[i], b[j]);
    }
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int gm = m0 + wm * 32 + i * 16 + gq + (r >= 2 ? 8 : 0);
        const int gn = n0 + wn * 32 + j * 8 + 2 * tq + (r & 1);
        if (gm >= g.M || gn >= g.N) continue;
        uint32_t v = uint32_t(acc[i][j][r]);  // unsigned: wraps modulo 2³² like the CPU
        if (g.row_sum) v -= uint32_t(g.row_sum[gm]) * uint32_t(g.col_zero[gn]);
        if (g.col_off) v += uint32_t(g.col_off[gn]);
        const int32_t s = int32_t(v);
        if (g.Cf) {
          const float bias = g.col_bias ? g.col_bias[gn] : 0.0f;
          g.Cf[int64_t(gm) * g.ldc + gn] = __fmaf_rn(float(s), g.col_scale[gn], bias);
        } else {
          g.C32[int64_t(gm) * g.ldc + gn] = s;
        }
      }
}

}  // namespace

void qgemm(const QGemmArgs& g, cudaStream_t stream) {
  auto bad = [](const std::string& why) { fail("E_TENSOR", "CUDA qgemm: " + why); };
  if (g.M < 0 || g.N < 0 || g.K < 0) bad("negative size");
  if (g.M == 0 || g.N == 0) return;
  if (!g.A || !g.B) bad("null operand");
  if (g.lda < g.K) bad("lda " + std::to_string(g.lda) + " < K " + std::to_string(g.K));
  const int64_t row_bytes = g.layout == QWeightLayout::S8 ? g.K : qgemm_u4_row_bytes(g.K);
  if (g.ldb < row_bytes) bad("ldb " + std::to_string(g.ldb) + " < " + std::to_string(row_bytes) + " bytes");
  if ((g.C32 == nullptr) == (g.Cf == nullptr)) bad("exactly one of C32 and Cf must be given");
  if (g.Cf && !g.col_scale) bad("a float output needs col_scale");
  if ((g.row_sum == nullptr) != (g.col_zero == nullptr)) bad("row_sum and col_zero come together");
  if (g.ldc < g.N) bad("ldc < N");
  if ((g.N + kBN - 1) / kBN > 65535) bad("N exceeds the grid limit");
  const dim3 grid(unsigned((g.M + kBM - 1) / kBM), unsigned((g.N + kBN - 1) / kBN));
  if (g.layout == QWeightLayout::S8) {
    k_qgemm<QWeightLayout::S8><<<grid, dim3(kThreads), 0, stream>>>(g);
    CUDA_CHECK_LAUNCH("k_qgemm<S8>");
  } else {
    k_qgemm<QWeightLayout::U4><<<grid, dim3(kThreads), 0, stream>>>(g);
    CUDA_CHECK_LAUNCH("k_qgemm<U4>");
  }
}

void qgemm_pack_u4(const int8_t* vals, int64_t ldv, int N, int K, uint8_t* dst) {
  const int64_t rb = qgemm_u4_row_bytes(K);
  for (int n = 0; n < N; ++n) {
    uint8_t* row = dst + int64_t(n) * rb;
    std::memset(row, 0, size_t(rb));
    for (int k = 0; k < K; ++k) {
      const int v = vals[int64_t(n) * ldv + k];
      if (v < 0 || v > 15)
        fail("E_TENSOR", "CUDA qgemm_pack_u4: value " + std::to_string(v) + " at [" + std::to_string(n) + ", " +
                             std::to_string(k) + "] is outside 0..15");
      row[k / 2] |= uint8_t(k % 2 ? v << 4 : v);
    }
  }
}

}  // namespace spdfq::cuda
