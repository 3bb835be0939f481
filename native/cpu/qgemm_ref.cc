// qgemm_ref: THE TRUTH for the integer GEMM. Plain loops over the stored values, read
// one at a time through qpack_b_get, so it shares no blocking or layout arithmetic with
// the SIMD variants; the checker in turn tests it against unpacked matrices in int64.
//
// Integer arithmetic is done in uint32 so that it wraps modulo 2³² exactly as the SIMD
// instructions do (signed overflow would be undefined behaviour in C++).
#include <cmath>
#include <vector>

#include "qgemm.h"

namespace spdfq::cpu {

int qpack_b_get(const QPackedB& b, int n, int k) {
  const size_t stride = qpack_b_panel_stride(b.format, b.K);
  const uint8_t* panel = b.data + size_t(n / 16) * stride;
  const int c = n % 16;
  if (b.format == QWeightFormat::S8) {
    return int8_t(panel[size_t(k / 4) * 64 + 4 * c + k % 4]);
  }
  const uint8_t byte = panel[size_t(k / 8) * 64 + 4 * c + k % 4];
  return k % 8 < 4 ? (byte & 0x0F) : (byte >> 4);
}

void qgemm_ref(const QGemmArgs& g) {
  const int N = g.B.N, K = g.B.K;
  std::vector<int32_t> b(size_t(K > 0 ? K : 1));
  // Column j of B read once, not once per row: the engine's reference mode runs whole
  // layers through this function.
  for (int j = 0; j < N; ++j) {
    for (int k = 0; k < K; ++k) b[size_t(k)] = qpack_b_get(g.B, j, k);
    for (int i = 0; i < g.M; ++i) {
      uint32_t acc = 0;
      for (int k = 0; k < K; ++k) acc += uint32_t(int32_t(g.A[size_t(i) * g.lda + k]) * b[size_t(k)]);
      if (g.row_sum) acc -= uint32_t(g.row_sum[i]) * uint32_t(g.col_zero[j]);
      if (g.col_off) acc += uint32_t(g.col_off[j]);
      const int32_t v = int32_t(acc);  // two's complement wrap (g++; guaranteed in C++20)
      if (g.Cf) {
        const float bias = g.col_bias ? g.col_bias[j] : 0.0f;
        g.Cf[size_t(i) * g.ldc + j] = std::fma(float(v), g.col_scale[j], bias);
      } else {
        g.C32[size_t(i) * g.ldc + j] = v;
      }
    }
  }
}

}  // namespace spdfq::cpu
