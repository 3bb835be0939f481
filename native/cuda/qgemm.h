// Integer GEMM on tensor cores for quantized execution: u8 activations × int8 or 4-bit
// weights → int32, with the CPU integer GEMM's epilogue (native/cpu/qgemm.h):
//
//   acc[i,j] = Σ_k A[i,k] · B[j,k]                                exact, int32
//   v[i,j]   = acc − row_sum[i]·col_zero[j] + col_off[j]          (absent terms count as 0;
//                                                                  wraps modulo 2³² as on the CPU)
//   output   = v (C32), or fmaf(float(v), col_scale[j], col_bias[j]) (Cf)
//
// so for the same stored values the outputs are bit-identical to qgemm_ref, floats included
// (one int32 → float rounding, one fused multiply-add).
//
// Layouts (plain, unlike the CPU's SIMD panels): A is M×K row-major u8 (lda ≥ K bytes);
// B is the N×K weight (PyTorch's [out, in]) as S8 — one int8 per weight, row n at B + n·ldb,
// ldb ≥ K — or U4 — values 0..15 two per byte, row n at B + n·ldb (ldb ≥ ⌈K/2⌉ bytes),
// value k in byte k/2, the low nibble for even k (signed int4 is stored offset by +8 and
// the offset folded into col_zero/col_off, as on the CPU).
//
// Kernel: mma.sync m16n8k32 .u8 × .s8 → .s32 (sm_80+), 64×64 block tiles, K in steps of 64
// bytes, 128 threads (2×2 warps of 32×32). No alignment requirement: 16-byte vector
// loads where aligned and in range, guarded byte loads (zero padding) elsewhere.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace spdfq::cuda {

enum class QWeightLayout : int32_t { S8 = 0, U4 = 1 };

struct QGemmArgs {
  int M = 0, N = 0, K = 0;
  const uint8_t* A = nullptr;
  int64_t lda = 0;
  QWeightLayout layout = QWeightLayout::S8;
  const void* B = nullptr;
  int64_t ldb = 0;  // bytes between weight rows
  const int32_t* row_sum = nullptr;   // [M]; with col_zero, both or neither
  const int32_t* col_zero = nullptr;  // [N]
  const int32_t* col_off = nullptr;   // [N]
  int32_t* C32 = nullptr;             // exactly one of C32 and Cf
  float* Cf = nullptr;
  int64_t ldc = 0;                    // elements
  const float* col_scale = nullptr;   // [N], required with Cf
  const float* col_bias = nullptr;    // [N], optional
};

// Validates (E_TENSOR) and launches on `stream`.
void qgemm(const QGemmArgs& g, cudaStream_t stream);

// Bytes of one U4 row for K values, and a host-side packer: vals[n·ldv + k] in 0..15
// (E_TENSOR otherwise) → dst rows of qgemm_u4_row_bytes(K) bytes.
inline int64_t qgemm_u4_row_bytes(int K) { return (int64_t(K) + 1) / 2; }
void qgemm_pack_u4(const int8_t* vals, int64_t ldv, int N, int K, uint8_t* dst);

}  // namespace spdfq::cuda
