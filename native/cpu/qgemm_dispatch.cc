// Packing, run-time choice of the integer GEMM variant, and its benchmark entry points.
// Compiled with plain flags: it runs on any x86-64 CPU and decides whether the AVX code
// may be entered at all.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <vector>

#include "cpu_features.h"
#include "qgemm.h"

namespace spdfq::cpu {

size_t qpack_b_panel_stride(QWeightFormat f, int K) {
  if (K <= 0) return 0;
  return f == QWeightFormat::S8 ? size_t((K + 3) / 4) * 64 : size_t((K + 7) / 8) * 64;
}

size_t qpack_b_bytes(QWeightFormat f, int N, int K) {
  if (N <= 0) return 0;
  return size_t((N + 15) / 16) * qpack_b_panel_stride(f, K);
}

void qpack_b(QWeightFormat f, const int8_t* B, ptrdiff_t ldb, int N, int K, uint8_t* dst) {
  if (N <= 0 || K <= 0) return;
  const size_t stride = qpack_b_panel_stride(f, K);
  const int kb = f == QWeightFormat::S8 ? 4 : 8;  // k per 64-byte block
  const int blocks = (K + kb - 1) / kb;
  for (int p = 0; p < (N + 15) / 16; ++p) {
    uint8_t* panel = dst + size_t(p) * stride;
    for (int h = 0; h < blocks; ++h) {
      uint8_t* blk = panel + size_t(h) * 64;
      for (int c = 0; c < 16; ++c) {
        const int n = 16 * p + c;
        const int8_t* row = n < N ? B + size_t(n) * ldb : nullptr;
        for (int t = 0; t < 4; ++t) {
          if (f == QWeightFormat::S8) {
            const int k = 4 * h + t;
            blk[4 * c + t] = row && k < K ? uint8_t(row[k]) : 0;
          } else {
            const int k0 = 8 * h + t, k1 = k0 + 4;
            const int lo = row && k0 < K ? row[k0] : 0;
            const int hi = row && k1 < K ? row[k1] : 0;
            if (lo < 0 || lo > 15 || hi < 0 || hi > 15)
              throw std::invalid_argument("qpack_b: U4 values must lie in [0, 15]");
            blk[4 * c + t] = uint8_t(lo | hi << 4);
          }
        }
      }
    }
  }
}

QPackedB qpack_b_columns(const QPackedB& b, int n0, int n1) {
  if (n0 % 16 != 0 || n0 < 0 || n1 < n0 || n1 > b.N)
    throw std::invalid_argument("qpack_b_columns: need 0 ≤ n0 ≤ n1 ≤ N with n0 % 16 == 0");
  QPackedB s = b;
  s.N = n1 - n0;
  if (b.data) s.data = b.data + size_t(n0 / 16) * qpack_b_panel_stride(b.format, b.K);
  return s;
}

bool qgemm_variant_supported(QGemmVariant v) {
  switch (v) {
    case QGemmVariant::Ref:
    case QGemmVariant::Auto:
      return true;
    case QGemmVariant::Avx2:
      return cpu_features().avx2_fma;
    case QGemmVariant::Avx512Vnni:
      return cpu_features().avx512_vnni;  // implies F/VL/BW/DQ and AVX2+FMA
  }
  return false;
}

const char* qgemm_variant_name(QGemmVariant v) {
  switch (v) {
    case QGemmVariant::Ref:
      return "ref";
    case QGemmVariant::Avx2:
      return "avx2";
    case QGemmVariant::Avx512Vnni:
      return "avx512vnni";
    case QGemmVariant::Auto:
      return "auto";
  }
  return "unknown";
}

namespace {

using QGemmFn = void (*)(const QGemmArgs&);

QGemmFn best_qgemm() {
  if (qgemm_variant_supported(QGemmVariant::Avx512Vnni)) return qgemm_avx512;
  if (qgemm_variant_supported(QGemmVariant::Avx2)) return qgemm_avx2;
  return qgemm_ref;
}

}  // namespace

void qgemm(const QGemmArgs& g, QGemmVariant v) {
  static const QGemmFn best = best_qgemm();  // resolved once; cpuid is not free
  QGemmFn fn = best;
  if (v == QGemmVariant::Ref) fn = qgemm_ref;
  else if (v == QGemmVariant::Avx2 && qgemm_variant_supported(v)) fn = qgemm_avx2;
  else if (v == QGemmVariant::Avx512Vnni && qgemm_variant_supported(v)) fn = qgemm_avx512;
  fn(g);
}

namespace {

// A Linear-shaped problem with every epilogue term present, as qlinear runs it.
double bench_gops(QWeightFormat f, int size, int repeats) {
  if (size <= 0) return 0.0;
  const int M = size, N = size, K = size;
  std::mt19937 rng(1234);
  std::vector<uint8_t> a(size_t(M) * K);
  std::vector<int8_t> b(size_t(N) * K);
  for (auto& x : a) x = uint8_t(rng() & 0xFF);
  for (auto& x : b) x = f == QWeightFormat::S8 ? int8_t(rng() & 0xFF) : int8_t(rng() & 0x0F);
  // 64-byte aligned, as qlinear allocates it.
  const size_t bytes = qpack_b_bytes(f, N, K);
  uint8_t* packed = static_cast<uint8_t*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
  if (!packed) return 0.0;
  qpack_b(f, b.data(), K, N, K, packed);
  std::vector<int32_t> row_sum(M), col_zero(N), col_off(N);
  std::vector<float> scale(N), bias(N), c(size_t(M) * N);
  for (int i = 0; i < M; ++i) row_sum[i] = int32_t(rng() % 1000);
  for (int j = 0; j < N; ++j) {
    col_zero[j] = int32_t(rng() % 16);
    col_off[j] = int32_t(rng() % 100000);
    scale[j] = 1e-4f;
    bias[j] = 0.5f;
  }
  QGemmArgs g;
  g.M = M;
  g.A = a.data();
  g.lda = K;
  g.B = QPackedB{f, N, K, packed};
  g.row_sum = row_sum.data();
  g.col_zero = col_zero.data();
  g.col_off = col_off.data();
  g.Cf = c.data();
  g.ldc = N;
  g.col_scale = scale.data();
  g.col_bias = bias.data();
  qgemm(g);  // warm-up: page faults, caches, clocks
  double best = 1e30;
  for (int r = 0; r < std::max(repeats, 1); ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    qgemm(g);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, dt);
  }
  std::free(packed);
  return 2.0 * M * N * K / best * 1e-9;
}

}  // namespace

double qgemm_bench_int8_gops(int size, int repeats) {
  return bench_gops(QWeightFormat::S8, size, repeats);
}

double qgemm_bench_int4w_gops(int size, int repeats) {
  return bench_gops(QWeightFormat::U4, size, repeats);
}

}  // namespace spdfq::cpu
