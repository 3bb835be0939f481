// A quantized Linear layer on the integer GEMM (qgemm.h):
//
//   Y[r,n] = s_x·s_w[n] · Σ_k (q_x[r,k] − z_x)·(q_w[n,k] − z_w[n]) + bias[n]
//
// q_x is the input quantized per tensor exactly as the fake-quant simulation does it
// (quant::fake_quant_uniform, ONNX QuantizeLinear order: saturate(round_half_even(x/s_x)
// + z_x)), and q_w/z_w/s_w are per output channel. The sum is computed exactly in int32 as
//   Σ q_x·q_w − z_w·Σ_k q_x − z_x·Σ_k q_w + K·z_x·z_w
// with Σ_k q_w fixed at packing time and Σ_k q_x formed while quantizing; so the integer
// part equals the simulation's bit for bit, and the only float roundings are the final
// fma(float(sum), fl(s_x·s_w[n]), bias[n]) (plus int32 → float above 2²⁴).
//
// Grids: the activation grid may be any [qmin, qmax] of at most 256 levels with an
// integer zero point inside it (uint8 [0,255], uint4 [0,15], int8 [−128,127], …); it is
// shifted to u8 internally. Weight grids of at most 16 levels pack as 4-bit, up to 256 as
// int8. Every call is single-threaded and reentrant (thread_local scratch): the engine
// runs it from several threads on disjoint row ranges of the same layer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "../core/quantizer.h"
#include "qgemm.h"

namespace spdfq::cpu {

struct QLinearWeights {
  QWeightFormat format = QWeightFormat::S8;
  int N = 0, K = 0;
  std::vector<float> scale;      // s_w[n]
  std::vector<int32_t> zero;     // z_w[n] on the stored grid (stored value − zero = q_w − z_w)
  std::vector<int32_t> col_sum;  // Σ_k stored value [n, k]

  struct Free {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t[], Free> data;  // 64-byte aligned qpack_b output

  QPackedB packed() const { return QPackedB{format, N, K, data.get()}; }
};

// q_w: N×K int8 weights (row n at q_w + n·ldw), per-channel scale[N] and zero[N] (null:
// symmetric, all zero). Zero points must keep |q_w − z_w| ≤ 255.
QLinearWeights pack_qweights_int8(const int8_t* q_w, int N, int K, ptrdiff_t ldw,
                                  const float* scale, const int32_t* zero);

// 4-bit weights, one value per int8 of q_w: signed int4 [−8, 7] (default), or uint4
// [0, 15] with is_unsigned. Packed two per byte.
QLinearWeights pack_qweights_int4(const int8_t* q_w, int N, int K, ptrdiff_t ldw,
                                  const float* scale, const int32_t* zero,
                                  bool is_unsigned = false);

// Quantizes float weights [N, K] with one uniform quantizer per output channel exactly as
// quant::apply_weight_quant does, and packs them: 4-bit when every channel's grid has at
// most 16 levels, int8 otherwise (grids up to 256 levels, signed or unsigned).
QLinearWeights pack_qweights_from_float(const float* w, int N, int K, ptrdiff_t ldw,
                                        const quant::TensorQuant* channels);

// Whether qlinear_forward accepts `act`: Uniform, integer qmin/qmax/zero with
// qmin ≤ zero ≤ qmax and at most 256 levels, finite scale > 0.
bool qlinear_act_supported(const quant::TensorQuant& act);

// out[r, n] (row stride ld_out, default N) for rows × K inputs (row stride ld_in, default
// K). Throws std::invalid_argument if act is unsupported, K/N differ from the weights or
// K > kQGemmMaxK. bias may be null. NaN inputs quantize to the zero point (x̂ = 0)
// where the simulation would propagate NaN.
void qlinear_forward(float* out, const float* in, int rows, int K, int N,
                     const quant::TensorQuant& act, const QLinearWeights& w, const float* bias,
                     ptrdiff_t ld_in = 0, ptrdiff_t ld_out = 0,
                     QGemmVariant variant = QGemmVariant::Auto);

// The activation step of qlinear_forward on its own: q[r, k] = q_x − qmin as u8 (row
// stride ldq ≥ K) and row_sum[r] = Σ_k q[r, k]. For integer attention matmuls and tests.
void quantize_rows_u8(const float* in, int rows, int K, ptrdiff_t ld_in,
                      const quant::TensorQuant& act, uint8_t* q, ptrdiff_t ldq,
                      int32_t* row_sum);

}  // namespace spdfq::cpu
