// Quantized Linear: activation quantization, zero-point bookkeeping and chunking around
// qgemm. Compiled with baseline flags, like core/quantizer.cc.
#include "qlinear.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace spdfq::cpu {

void QLinearWeights::Free::operator()(uint8_t* p) const { std::free(p); }

namespace {

bool is_int(float v) { return std::isfinite(v) && v == std::nearbyint(v); }

void check_dims(int N, int K, ptrdiff_t ldw) {
  if (N < 0 || K < 0 || ldw < K) throw std::invalid_argument("pack_qweights: need N, K ≥ 0 and ldw ≥ K");
  if (K > kQGemmMaxK)
    throw std::invalid_argument("pack_qweights: K = " + std::to_string(K) + " exceeds kQGemmMaxK");
}

// Packs `stored` (N×K, tight) and fills everything but scale.
QLinearWeights pack_stored(QWeightFormat f, const std::vector<int8_t>& stored, int N, int K,
                           std::vector<int32_t> zero) {
  QLinearWeights w;
  w.format = f;
  w.N = N;
  w.K = K;
  w.zero = std::move(zero);
  w.col_sum.assign(size_t(N), 0);
  for (int n = 0; n < N; ++n) {
    int32_t s = 0;
    for (int k = 0; k < K; ++k) s += stored[size_t(n) * K + k];
    w.col_sum[size_t(n)] = s;
  }
  const size_t bytes = qpack_b_bytes(f, N, K);
  if (bytes > 0) {
    uint8_t* p = static_cast<uint8_t*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
    if (!p) throw std::bad_alloc();
    w.data.reset(p);
    qpack_b(f, stored.data(), K, N, K, p);
  }
  return w;
}

std::vector<float> copy_scales(const float* scale, int N) {
  std::vector<float> s(scale, scale + N);
  for (float v : s)
    if (!(v > 0.0f) || !std::isfinite(v)) throw std::invalid_argument("pack_qweights: scales must be finite and > 0");
  return s;
}

// The integer code q of quant::fake_quant_uniform, before it dequantizes: the same float
// operations in the same order (ONNX QuantizeLinear: divide, round half to even, add the
// zero point, saturate). quantizer.h exports only the fake-quantized value, so this is a
// copy; qgemm_check compares the two bit for bit and fails if they drift apart.
inline float quantize_code(float x, float scale, float zero, float qmin, float qmax) {
  const float v = clampf(x / scale, qmin - zero - 1.0f, qmax - zero + 1.0f);
  return clampf(quant::round_half_even(v) + zero, qmin, qmax);
}

// Everything per call that depends on the activation quantizer but not on the rows.
struct ActGrid {
  float scale, zero, qmin, qmax;
  int32_t qmin_i, za;  // za: zero point on the stored (u8) grid
  int32_t levels_minus_1;
};

ActGrid act_grid(const quant::TensorQuant& act) {
  if (!qlinear_act_supported(act))
    throw std::invalid_argument("qlinear: activation quantizer must be uniform with an integer grid of ≤ 256 levels "
                                "containing its integer zero point, and a finite scale > 0");
  ActGrid a;
  a.scale = act.scale;
  a.zero = act.zero;
  a.qmin = act.qmin;
  a.qmax = act.qmax;
  a.qmin_i = int32_t(act.qmin);
  a.za = int32_t(act.zero) - a.qmin_i;
  a.levels_minus_1 = int32_t(act.qmax) - a.qmin_i;
  return a;
}

void quantize_rows(const float* in, int rows, int K, ptrdiff_t ld_in, const ActGrid& a, uint8_t* q,
                   ptrdiff_t ldq, int32_t* row_sum) {
  for (int r = 0; r < rows; ++r) {
    const float* x = in + size_t(r) * ld_in;
    uint8_t* qr = q + size_t(r) * ldq;
    int32_t sum = 0;
    for (int k = 0; k < K; ++k) {
      float v = quantize_code(x[k], a.scale, a.zero, a.qmin, a.qmax);
      v = v == v ? v : a.zero;  // NaN → the zero point, instead of undefined int(NaN)
      const int32_t u = int32_t(v) - a.qmin_i;
      qr[k] = uint8_t(u);
      sum += u;
    }
    row_sum[r] = sum;
  }
}

struct Scratch {
  std::vector<uint8_t> q;
  std::vector<int32_t> row_sum, col_off;
  std::vector<float> col_scale;
};

// Rows per chunk: quantize a slab that stays in L2, then multiply it right away.
constexpr size_t kChunkBytes = 256 * 1024;

}  // namespace

QLinearWeights pack_qweights_int8(const int8_t* q_w, int N, int K, ptrdiff_t ldw,
                                  const float* scale, const int32_t* zero) {
  check_dims(N, K, ldw);
  std::vector<int8_t> stored(size_t(N) * K);
  for (int n = 0; n < N; ++n)
    std::copy(q_w + size_t(n) * ldw, q_w + size_t(n) * ldw + K, stored.begin() + size_t(n) * K);
  std::vector<int32_t> z(size_t(N), 0);
  if (zero) {
    for (int n = 0; n < N; ++n) {
      if (zero[n] < -128 || zero[n] > 127)
        throw std::invalid_argument("pack_qweights_int8: zero points must lie in [-128, 127]");
      z[size_t(n)] = zero[n];
    }
  }
  QLinearWeights w = pack_stored(QWeightFormat::S8, stored, N, K, std::move(z));
  w.scale = copy_scales(scale, N);
  return w;
}

QLinearWeights pack_qweights_int4(const int8_t* q_w, int N, int K, ptrdiff_t ldw,
                                  const float* scale, const int32_t* zero, bool is_unsigned) {
  check_dims(N, K, ldw);
  const int offset = is_unsigned ? 0 : 8;  // stored nibble = q + offset ∈ [0, 15]
  std::vector<int8_t> stored(size_t(N) * K);
  for (int n = 0; n < N; ++n)
    for (int k = 0; k < K; ++k) {
      const int u = q_w[size_t(n) * ldw + k] + offset;
      if (u < 0 || u > 15)
        throw std::invalid_argument(is_unsigned ? "pack_qweights_int4: values must lie in [0, 15]"
                                                : "pack_qweights_int4: values must lie in [-8, 7]");
      stored[size_t(n) * K + k] = int8_t(u);
    }
  std::vector<int32_t> z(size_t(N), offset);
  if (zero) {
    for (int n = 0; n < N; ++n) {
      const int zu = zero[n] + offset;
      if (zu < 0 || zu > 15) throw std::invalid_argument("pack_qweights_int4: zero points must lie on the grid");
      z[size_t(n)] = zu;
    }
  }
  QLinearWeights w = pack_stored(QWeightFormat::U4, stored, N, K, std::move(z));
  w.scale = copy_scales(scale, N);
  return w;
}

QLinearWeights pack_qweights_from_float(const float* w, int N, int K, ptrdiff_t ldw,
                                        const quant::TensorQuant* channels) {
  check_dims(N, K, ldw);
  bool all4 = true;
  for (int n = 0; n < N; ++n) {
    const quant::TensorQuant& c = channels[n];
    if (c.kind != quant::QuantKind::Uniform || !is_int(c.qmin) || !is_int(c.qmax) || !is_int(c.zero) ||
        c.qmax < c.qmin || c.qmax - c.qmin > 255.0f || c.zero < c.qmin || c.zero > c.qmax ||
        !(c.scale > 0.0f) || !std::isfinite(c.scale))
      throw std::invalid_argument("pack_qweights_from_float: channel " + std::to_string(n) +
                                  " needs a uniform quantizer with an integer grid of ≤ 256 levels");
    all4 = all4 && c.qmax - c.qmin <= 15.0f;
  }
  const QWeightFormat f = all4 ? QWeightFormat::U4 : QWeightFormat::S8;
  std::vector<int8_t> stored(size_t(N) * K);
  std::vector<int32_t> z(static_cast<size_t>(N));
  std::vector<float> scale(static_cast<size_t>(N));
  for (int n = 0; n < N; ++n) {
    const quant::TensorQuant& c = channels[n];
    const int qmin = int(c.qmin), qmax = int(c.qmax);
    // Shift only grids that do not fit the stored range as they are.
    const int offset = all4 ? (qmin >= 0 && qmax <= 15 ? 0 : -qmin)
                            : (qmin >= -128 && qmax <= 127 ? 0 : -128 - qmin);
    for (int k = 0; k < K; ++k) {
      float v = quantize_code(w[size_t(n) * ldw + k], c.scale, c.zero, c.qmin, c.qmax);
      v = v == v ? v : c.zero;
      stored[size_t(n) * K + k] = int8_t(int(v) + offset);
    }
    z[size_t(n)] = int32_t(c.zero) + offset;
    scale[size_t(n)] = c.scale;
  }
  QLinearWeights out = pack_stored(f, stored, N, K, std::move(z));
  out.scale = std::move(scale);
  return out;
}

bool qlinear_act_supported(const quant::TensorQuant& a) {
  return a.kind == quant::QuantKind::Uniform && is_int(a.qmin) && is_int(a.qmax) && is_int(a.zero) &&
         a.qmax >= a.qmin && a.qmax - a.qmin <= 255.0f && a.zero >= a.qmin && a.zero <= a.qmax &&
         a.scale > 0.0f && std::isfinite(a.scale);
}

void quantize_rows_u8(const float* in, int rows, int K, ptrdiff_t ld_in,
                      const quant::TensorQuant& act, uint8_t* q, ptrdiff_t ldq,
                      int32_t* row_sum) {
  quantize_rows(in, rows, K, ld_in, act_grid(act), q, ldq, row_sum);
}

void qlinear_forward(float* out, const float* in, int rows, int K, int N,
                     const quant::TensorQuant& act, const QLinearWeights& w, const float* bias,
                     ptrdiff_t ld_in, ptrdiff_t ld_out, QGemmVariant variant) {
  if (K != w.K || N != w.N)
    throw std::invalid_argument("qlinear_forward: K/N do not match the packed weights");
  if (K > kQGemmMaxK) throw std::invalid_argument("qlinear_forward: K exceeds kQGemmMaxK");
  const ActGrid a = act_grid(act);
  if (rows <= 0 || N <= 0) return;
  if (ld_in == 0) ld_in = K;
  if (ld_out == 0) ld_out = N;

  static thread_local Scratch s;
  s.col_off.resize(size_t(N));
  s.col_scale.resize(size_t(N));
  for (int n = 0; n < N; ++n) {
    // −z_x·Σq_w + K·z_x·z_w, wrapping like the kernels (the total is exact, see qgemm.h).
    const uint32_t za = uint32_t(a.za);
    s.col_off[size_t(n)] = int32_t(uint32_t(K) * za * uint32_t(w.zero[size_t(n)]) - za * uint32_t(w.col_sum[size_t(n)]));
    s.col_scale[size_t(n)] = act.scale * w.scale[size_t(n)];
  }
  const ptrdiff_t ldq = (K + 63) / 64 * 64 + (K > 0 ? 0 : 64);
  const int chunk = int(std::min<size_t>(size_t(rows), std::max<size_t>(16, kChunkBytes / size_t(ldq))));
  s.q.resize(size_t(chunk) * ldq);
  s.row_sum.resize(size_t(chunk));

  QGemmArgs g;
  g.A = s.q.data();
  g.lda = ldq;
  g.B = w.packed();
  g.a_max = a.levels_minus_1;
  g.row_sum = s.row_sum.data();
  g.col_zero = w.zero.data();
  g.col_off = s.col_off.data();
  g.ldc = ld_out;
  g.col_scale = s.col_scale.data();
  g.col_bias = bias;
  for (int r0 = 0; r0 < rows; r0 += chunk) {
    const int rc = std::min(chunk, rows - r0);
    quantize_rows(in + size_t(r0) * ld_in, rc, K, ld_in, a, s.q.data(), ldq, s.row_sum.data());
    g.M = rc;
    g.Cf = out + size_t(r0) * ld_out;
    qgemm(g, variant);
  }
}

}  // namespace spdfq::cpu
