// Integer GEMM for quantized execution (u8 activations × 8- or 4-bit weights → int32).
//
//   acc[i,j] = Σ_k A[i,k] · B[j,k]                          exact, in int32
//   v[i,j]   = acc[i,j] − row_sum[i]·col_zero[j] + col_off[j]   (zero-point correction;
//                                                               absent terms count as 0)
//   output   = v as int32 (C32), or fma(float(v), col_scale[j], col_bias[j]) as float (Cf)
//
// A is M×K row-major u8 (lda ≥ K bytes): activations already quantized and shifted onto an
// unsigned grid. B is the N×K weight matrix (PyTorch's [out, in]) packed once by qpack_b,
// either as int8 (S8) or as 4-bit values 0..15 two to a byte (U4); see qpack_b for the
// layout. Any affine zero points are folded into row_sum/col_zero/col_off by the caller
// (qlinear.h does it for a Linear layer), so every variant computes the same integers.
//
// Exactness: all integer arithmetic wraps modulo 2³² (as the SIMD instructions do), so v
// is exact whenever the true value fits int32 — guaranteed for K ≤ kQGemmMaxK when
// |A − za| ≤ 255 and |B − zb| ≤ 255 (K·255² < 2³¹). The float output rounds twice:
// int32 → float (exact below 2²⁴) and one fused multiply-add; every variant does the
// same two roundings, so outputs are bit-identical across variants, floats included.
//
// Variants as for the fp32 GEMM: `qgemm_ref` (plain loops, the truth), `qgemm_avx2`
// (AVX2) and `qgemm_avx512` (AVX-512 VNNI), the SIMD ones compiled with their own flags
// and chosen at run time by `qgemm`. Every variant is single-threaded and reentrant (no
// state beyond the call): the engine runs them from several threads on row slices.
#pragma once

#include <cstddef>
#include <cstdint>

namespace spdfq::cpu {

// K above which the int32 result may overflow for 8-bit × 8-bit operands.
constexpr int kQGemmMaxK = 32768;

enum class QWeightFormat : int32_t {
  S8 = 0,  // one int8 per weight
  U4 = 1,  // one value in [0, 15] per nibble (signed int4 is stored offset by +8)
};

// Packed weights: a plain view, so the SIMD translation units never touch std:: types.
struct QPackedB {
  QWeightFormat format = QWeightFormat::S8;
  int N = 0, K = 0;
  const uint8_t* data = nullptr;  // qpack_b_bytes(format, N, K) bytes; 64-byte alignment
                                  // is not required, only faster
};

// Bytes qpack_b writes for an N×K matrix.
size_t qpack_b_bytes(QWeightFormat f, int N, int K);

// Packs B (N×K, row n at B + n·ldb, ldb ≥ K). For U4 every value must lie in [0, 15].
// Layout: columns in panels of 16; panel p starts at p·panel_stride and holds 64-byte
// blocks, one per 4 values of k (S8) or per 8 (U4), K zero-padded to a block:
//   S8 block g, byte 4c + t          = B[16p + c, 4g + t]
//   U4 block h, byte 4c + t, low/high nibble = B[16p + c, 8h + t] / B[16p + c, 8h + 4 + t]
// so a 64-byte block is one zmm of vpdpbusd operand (16 columns × 4 k), or two of them
// after a nibble split; columns past N are zero. Padding is zero (never 8 in U4), so it
// adds nothing to any dot product whatever A holds past K.
void qpack_b(QWeightFormat f, const int8_t* B, ptrdiff_t ldb, int N, int K, uint8_t* dst);
size_t qpack_b_panel_stride(QWeightFormat f, int K);  // bytes between 16-column panels

// Stored value B[n, k] of a packed matrix (the reference kernel's and the tests' reader).
int qpack_b_get(const QPackedB& b, int n, int k);

// Columns [n0, n1) of a packed matrix as a packed matrix of its own, for splitting a GEMM
// by columns across threads. n0 must be a multiple of 16 (a panel boundary).
QPackedB qpack_b_columns(const QPackedB& b, int n0, int n1);

struct QGemmArgs {
  int M = 0;
  const uint8_t* A = nullptr;
  ptrdiff_t lda = 0;  // bytes, ≥ K; A is read only within its M rows × K columns
  QPackedB B;         // gives N and K
  // Upper bound on every A value. Only a promise that ≤ 127 matters: it lets the AVX2
  // variant use vpmaddubsw for S8 weights (whose int16 pair sums cannot saturate then);
  // with 255 it widens to int16 instead. Breaking the promise gives wrong results.
  int a_max = 255;

  // Zero-point correction; row_sum and col_zero come together (both or neither).
  const int32_t* row_sum = nullptr;   // [M]
  const int32_t* col_zero = nullptr;  // [N]
  const int32_t* col_off = nullptr;   // [N]

  // Output: exactly one of C32 and Cf, row i at + i·ldc (ldc ≥ N elements); only the
  // M×N elements are written, nothing is read.
  int32_t* C32 = nullptr;
  float* Cf = nullptr;
  ptrdiff_t ldc = 0;
  const float* col_scale = nullptr;  // [N], required with Cf
  const float* col_bias = nullptr;   // [N], optional (adds +0.0f when absent)
};

enum class QGemmVariant { Ref, Avx2, Avx512Vnni, Auto };

void qgemm_ref(const QGemmArgs& g);
void qgemm_avx2(const QGemmArgs& g);
void qgemm_avx512(const QGemmArgs& g);  // needs AVX-512 F/VL/BW/DQ + VNNI

// Best variant this CPU supports (Auto), or the one asked for when the CPU can run it.
void qgemm(const QGemmArgs& g, QGemmVariant v = QGemmVariant::Auto);
bool qgemm_variant_supported(QGemmVariant v);
const char* qgemm_variant_name(QGemmVariant v);

// Single-threaded throughput of qgemm (Auto) on size×size×size with the full epilogue a
// Linear layer uses (zero-point correction, float dequantization): best of `repeats`
// runs, in GOPS = 2·size³ / seconds / 1e9. For the addon's benchmark.
double qgemm_bench_int8_gops(int size, int repeats);
double qgemm_bench_int4w_gops(int size, int repeats);

}  // namespace spdfq::cpu
