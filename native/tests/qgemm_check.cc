// Standalone correctness check and benchmark for the integer GEMM (qgemm.h) and the
// quantized Linear built on it (qlinear.h).
//
//   qgemm_check            every variant (ref, avx2, avx512vnni where the CPU has them, and
//                          qgemm()'s Auto path) against an independent int64 truth computed
//                          here from the unpacked matrices; int32 and float outputs must be
//                          bit-identical. Then packing, saturation worst cases, threads, and
//                          qlinear against the fake-quant simulation (quant::fake_quant_tensor).
//                          Last line "N passed, M failed", exit status 1 on any failure.
//   qgemm_check --bench    single-threaded GOPS (2·M·N·K / s) of each variant on 768³, int8
//                          and int4 weights, next to the fp32 gemm() on the same shape.
//
// Out-of-bounds accesses: A, the packed B and C sit flush against PROT_NONE guard pages
// (a K-tail read past the last row of A, or past the last packed panel, faults), and C's
// padding (ldc beyond N) holds a sentinel that must survive.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../cpu/cpu_features.h"
#include "../cpu/gemm.h"
#include "../cpu/qgemm.h"
#include "../cpu/qlinear.h"
#include "../core/quantizer.h"

using spdfq::cpu::QGemmArgs;
using spdfq::cpu::QGemmVariant;
using spdfq::cpu::QPackedB;
using spdfq::cpu::QWeightFormat;
namespace quant = spdfq::quant;

namespace {

char g_current[256] = "";
int g_passed = 0, g_failed = 0;

void append_int(char* buf, size_t* n, int v) {
  char tmp[16];
  int len = 0;
  do tmp[len++] = char('0' + v % 10); while ((v /= 10) > 0 && len < 15);
  while (len > 0) buf[(*n)++] = tmp[--len];
}

void on_fault(int) {
  // Only async-signal-safe calls here: no printf.
  char buf[512];
  size_t n = 0;
  const char head[] = "FAIL out-of-bounds access (guard page): ";
  for (const char* p = head; *p; ++p) buf[n++] = *p;
  for (const char* p = g_current; *p && n < 400; ++p) buf[n++] = *p;
  buf[n++] = '\n';
  append_int(buf, &n, g_passed);
  for (const char* p = " passed, "; *p; ++p) buf[n++] = *p;
  append_int(buf, &n, g_failed + 1);
  for (const char* p = " failed\n"; *p; ++p) buf[n++] = *p;
  if (write(STDOUT_FILENO, buf, n) < 0) {
  }
  _exit(1);
}

// n elements of T inside an mmap'd region with a PROT_NONE page on both sides, flush
// against the back guard page (at_end) or `shift` elements after the front one.
template <class T>
class Guarded {
 public:
  Guarded(size_t n, bool at_end, size_t shift) {
    page_ = size_t(sysconf(_SC_PAGESIZE));
    const size_t bytes = (n + shift) * sizeof(T);
    const size_t body = (bytes + page_ - 1) / page_ * page_ + page_;
    total_ = body + 2 * page_;
    base_ = static_cast<char*>(
        mmap(nullptr, total_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (base_ == MAP_FAILED) {
      perror("mmap");
      std::abort();
    }
    mprotect(base_, page_, PROT_NONE);
    mprotect(base_ + page_ + body, page_, PROT_NONE);
    char* p = at_end ? base_ + page_ + body - n * sizeof(T) : base_ + page_ + shift * sizeof(T);
    data_ = reinterpret_cast<T*>(p);
  }
  ~Guarded() { munmap(base_, total_); }
  Guarded(const Guarded&) = delete;
  Guarded& operator=(const Guarded&) = delete;
  T* data() const { return data_; }

 private:
  size_t page_ = 0, total_ = 0;
  char* base_ = nullptr;
  T* data_ = nullptr;
};

struct Variant {
  QGemmVariant v;
  bool via_dispatch;
  const char* name;
};

std::vector<Variant> variants_under_test() {
  std::vector<Variant> v;
  v.push_back({QGemmVariant::Ref, false, "ref"});
  if (spdfq::cpu::qgemm_variant_supported(QGemmVariant::Avx2)) v.push_back({QGemmVariant::Avx2, false, "avx2"});
  if (spdfq::cpu::qgemm_variant_supported(QGemmVariant::Avx512Vnni))
    v.push_back({QGemmVariant::Avx512Vnni, false, "avx512vnni"});
  v.push_back({QGemmVariant::Auto, true, "auto"});
  return v;
}

void call(const Variant& var, const QGemmArgs& g) {
  if (var.via_dispatch) {
    spdfq::cpu::qgemm(g);
    return;
  }
  switch (var.v) {
    case QGemmVariant::Avx2: spdfq::cpu::qgemm_avx2(g); break;
    case QGemmVariant::Avx512Vnni: spdfq::cpu::qgemm_avx512(g); break;
    default: spdfq::cpu::qgemm_ref(g); break;
  }
}

size_t storage(int rows, int cols, ptrdiff_t ld) { return rows <= 0 ? 0 : size_t(rows - 1) * ld + cols; }

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// ---------------------------------------------------------------------------------------
// The qgemm cases.

enum class Dist { Random, MaxNeg, MaxPos, AltSign, Sparse };
const char* dist_name(Dist d) {
  switch (d) {
    case Dist::Random: return "random";
    case Dist::MaxNeg: return "max-neg";
    case Dist::MaxPos: return "max-pos";
    case Dist::AltSign: return "alt-sign";
    case Dist::Sparse: return "sparse";
  }
  return "?";
}

struct QCase {
  QWeightFormat f;
  int M, N, K;
  int pa, pc;      // extra leading-dimension padding of A (bytes) and C (elements)
  int a_max;       // promise passed to the kernel; A values never exceed it
  bool corr;       // row_sum/col_zero present
  bool off;        // col_off present
  int out;         // 0: int32; 1: float, no bias; 2: float with bias
  Dist dist;
  bool real_sums;  // row_sum = Σ A (as qlinear passes it) rather than arbitrary int32
};

std::string describe(const QCase& c, const char* var) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s %s M=%d N=%d K=%d lda+%d ldc+%d a_max=%d corr=%d off=%d out=%d %s",
                var, c.f == QWeightFormat::S8 ? "s8" : "u4", c.M, c.N, c.K, c.pa, c.pc, c.a_max,
                c.corr, c.off, c.out, dist_name(c.dist));
  return buf;
}

int run_qcase(const QCase& c, const std::vector<Variant>& vars, std::mt19937& rng, int* passed) {
  const int M = c.M, N = c.N, K = c.K;
  const ptrdiff_t lda = (K > 0 ? K : 1) + c.pa, ldc = (N > 0 ? N : 1) + c.pc;
  const bool s8 = c.f == QWeightFormat::S8;
  const int bmin = s8 ? -128 : 0, bmax = s8 ? 127 : 15;
  std::uniform_int_distribution<int> coin(0, 1), sh(0, 63);

  // A: values in [0, a_max]; bytes in lda padding are arbitrary (B is zero there anyway).
  const size_t na = storage(M, K, lda);
  Guarded<uint8_t> A(na, true, 0);  // always flush at the end: the K tail of the last row
  for (size_t i = 0; i < na; ++i) {
    uint8_t v;
    if (ptrdiff_t(i % lda) >= K) v = uint8_t(rng());
    else if (c.dist == Dist::Random) v = uint8_t(rng() % (c.a_max + 1));
    else if (c.dist == Dist::Sparse) v = rng() % 8 == 0 ? uint8_t(rng() % (c.a_max + 1)) : 0;
    else v = uint8_t(c.a_max);
    A.data()[i] = v;
  }
  // B: N×K original values.
  std::vector<int8_t> B(static_cast<size_t>(N) * (K > 0 ? K : 1));
  for (int n = 0; n < N; ++n)
    for (int k = 0; k < K; ++k) {
      int v;
      switch (c.dist) {
        case Dist::MaxNeg: v = s8 ? bmin : bmax; break;
        case Dist::MaxPos: v = bmax; break;
        case Dist::AltSign: v = s8 ? ((k / 2 + n) % 2 ? bmin : bmax) : ((k + n) % 2 ? bmax : 0); break;
        case Dist::Sparse: v = rng() % 8 == 0 ? bmin + int(rng() % (bmax - bmin + 1)) : 0; break;
        default: v = bmin + int(rng() % (bmax - bmin + 1)); break;
      }
      B[size_t(n) * K + k] = int8_t(v);
    }
  const size_t nb = spdfq::cpu::qpack_b_bytes(c.f, N, K);
  Guarded<uint8_t> P(nb, true, 0);
  spdfq::cpu::qpack_b(c.f, B.data(), K, N, K, P.data());

  std::vector<int32_t> row_sum(static_cast<size_t>(M > 0 ? M : 1)), col_zero(static_cast<size_t>(N > 0 ? N : 1)), col_off(static_cast<size_t>(N > 0 ? N : 1));
  std::vector<float> scale(static_cast<size_t>(N > 0 ? N : 1)), bias(static_cast<size_t>(N > 0 ? N : 1));
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  for (int i = 0; i < M; ++i) {
    if (c.real_sums) {
      int32_t s = 0;
      for (int k = 0; k < K; ++k) s += A.data()[size_t(i) * lda + k];
      row_sum[size_t(i)] = s;
    } else {
      row_sum[size_t(i)] = int32_t(rng());  // full int32 range: exercises the wrap-around
    }
  }
  for (int j = 0; j < N; ++j) {
    // Real sums: weight zero points at the far end from the values (|B − zb| up to 255).
    col_zero[size_t(j)] = !c.real_sums ? int32_t(rng())
                          : !s8        ? int32_t(rng() % 16)
                          : c.dist == Dist::MaxPos ? -128 + int32_t(rng() % 4)
                                                   : 127 - int32_t(rng() % 4);
    col_off[size_t(j)] = c.real_sums ? int32_t(rng() % 100000) - 50000 : int32_t(rng());
    scale[size_t(j)] = std::ldexp(1.0f + 0.5f * uni(rng), -int(rng() % 30));
    bias[size_t(j)] = uni(rng) * 10.0f;
  }

  // The truth: int64 from the unpacked matrices, then wrapped to int32 as documented.
  std::vector<int32_t> want32(static_cast<size_t>(M) * N);
  std::vector<float> wantf(static_cast<size_t>(M) * N);
  bool fits = true;
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      int64_t s = 0;
      for (int k = 0; k < K; ++k) s += int64_t(A.data()[size_t(i) * lda + k]) * B[size_t(j) * K + k];
      if (c.corr) s -= int64_t(row_sum[size_t(i)]) * col_zero[size_t(j)];
      if (c.off) s += col_off[size_t(j)];
      if (c.real_sums && (s < INT32_MIN || s > INT32_MAX)) fits = false;
      const int32_t v = int32_t(uint32_t(uint64_t(s)));
      want32[size_t(i) * N + j] = v;
      wantf[size_t(i) * N + j] = std::fma(float(v), scale[size_t(j)], c.out == 2 ? bias[size_t(j)] : 0.0f);
    }
  if (!fits) {
    std::printf("FAIL test design: %s exceeds int32 with real sums\n", describe(c, "-").c_str());
    return 1;
  }

  QGemmArgs g;
  g.M = M;
  g.A = A.data();
  g.lda = lda;
  g.B = QPackedB{c.f, N, K, nb ? P.data() : nullptr};
  g.a_max = c.a_max;
  if (c.corr) {
    g.row_sum = row_sum.data();
    g.col_zero = col_zero.data();
  }
  if (c.off) g.col_off = col_off.data();
  g.ldc = ldc;
  if (c.out > 0) {
    g.col_scale = scale.data();
    if (c.out == 2) g.col_bias = bias.data();
  }

  const size_t nc = storage(M, N, ldc);
  const int32_t sentinel = 0x5EED5EED;  // as float bits: a NaN-free pattern never produced
  int failed = 0;
  for (const Variant& var : vars) {
    Guarded<int32_t> C(nc, coin(rng), size_t(sh(rng)));
    for (size_t i = 0; i < nc; ++i) C.data()[i] = sentinel;
    if (c.out > 0) g.Cf = reinterpret_cast<float*>(C.data());
    else g.C32 = C.data();
    std::snprintf(g_current, sizeof g_current, "%s", describe(c, var.name).c_str());
    std::fflush(stdout);
    call(var, g);
    size_t bad = 0, first = 0;
    for (size_t idx = 0; idx < nc; ++idx) {
      const size_t i = idx / ldc, j = idx % ldc;
      bool ok;
      if (ptrdiff_t(j) >= N) ok = C.data()[idx] == sentinel;
      else if (c.out > 0) ok = uint32_t(C.data()[idx]) == float_bits(wantf[i * N + j]);
      else ok = C.data()[idx] == want32[i * N + j];
      if (!ok && bad++ == 0) first = idx;
    }
    if (bad) {
      ++failed;
      const size_t i = first / ldc, j = first % ldc;
      const bool pad = ptrdiff_t(j) >= N;
      if (c.out > 0 && !pad) {
        float got;
        std::memcpy(&got, &C.data()[first], 4);
        std::printf("FAIL %s: %zu bad, first (%zu,%zu) got %.9g want %.9g\n", describe(c, var.name).c_str(), bad,
                    i, j, got, wantf[i * N + j]);
      } else {
        std::printf("FAIL %s: %zu bad, first (%zu,%zu) got %d want %d%s\n", describe(c, var.name).c_str(), bad, i, j,
                    C.data()[first], pad ? sentinel : want32[i * N + j], pad ? " (padding overwritten)" : "");
      }
    } else {
      ++*passed;
    }
  }
  return failed;
}

// Packing: every byte of the buffer against the documented layout, recomputed here.
int check_packing(std::mt19937& rng, int* passed) {
  int failed = 0;
  const int ns[] = {1, 5, 16, 17, 33, 64};
  const int ks[] = {1, 3, 4, 5, 7, 8, 9, 31, 64, 65};
  for (int fi = 0; fi < 2; ++fi)
    for (int N : ns)
      for (int K : ks) {
        const QWeightFormat f = fi ? QWeightFormat::U4 : QWeightFormat::S8;
        const int ldb = K + int(rng() % 5);
        std::vector<int8_t> B(static_cast<size_t>(N) * ldb);
        for (auto& x : B) x = fi ? int8_t(rng() % 16) : int8_t(rng());
        const size_t bytes = spdfq::cpu::qpack_b_bytes(f, N, K);
        const size_t kb = fi ? 8 : 4;
        const size_t blocks = (size_t(K) + kb - 1) / kb;
        bool ok = bytes == size_t((N + 15) / 16) * blocks * 64 &&
                  spdfq::cpu::qpack_b_panel_stride(f, K) == blocks * 64;
        std::vector<uint8_t> buf(bytes, 0xAA);
        spdfq::cpu::qpack_b(f, B.data(), ldb, N, K, buf.data());
        auto val = [&](int n, int k) -> int { return n < N && k < K ? B[size_t(n) * ldb + k] : 0; };
        for (size_t p = 0; p < size_t((N + 15) / 16) && ok; ++p)
          for (size_t h = 0; h < blocks && ok; ++h)
            for (int cc = 0; cc < 16 && ok; ++cc)
              for (int t = 0; t < 4; ++t) {
                const int n = int(p) * 16 + cc;
                const uint8_t got = buf[p * blocks * 64 + h * 64 + size_t(4 * cc + t)];
                const uint8_t want = fi ? uint8_t(val(n, int(8 * h) + t) | val(n, int(8 * h) + 4 + t) << 4)
                                        : uint8_t(val(n, int(4 * h) + t));
                if (got != want) ok = false;
              }
        const QPackedB pb{f, N, K, buf.data()};
        for (int n = 0; n < N && ok; ++n)
          for (int k = 0; k < K; ++k)
            if (spdfq::cpu::qpack_b_get(pb, n, k) != B[size_t(n) * ldb + k]) ok = false;
        if (ok) {
          ++*passed;
        } else {
          ++failed;
          std::printf("FAIL packing %s N=%d K=%d ldb=%d\n", fi ? "u4" : "s8", N, K, ldb);
        }
      }
  // U4 values outside [0, 15] must be refused, not silently truncated.
  {
    const int8_t bad[4] = {1, 16, 2, 3};
    uint8_t out[64];
    bool threw = false;
    try {
      spdfq::cpu::qpack_b(QWeightFormat::U4, bad, 4, 1, 4, out);
    } catch (const std::invalid_argument&) {
      threw = true;
    }
    if (threw) ++*passed;
    else {
      ++failed;
      std::printf("FAIL packing: U4 value 16 accepted\n");
    }
  }
  return failed;
}

// Column slices (qpack_b_columns) computed separately equal the full product.
int check_column_slices(const std::vector<Variant>& vars, std::mt19937& rng, int* passed) {
  int failed = 0;
  for (int fi = 0; fi < 2; ++fi) {
    const QWeightFormat f = fi ? QWeightFormat::U4 : QWeightFormat::S8;
    const int M = 37, N = 150, K = 77;
    std::vector<uint8_t> a(static_cast<size_t>(M) * K);
    std::vector<int8_t> b(static_cast<size_t>(N) * K);
    for (auto& x : a) x = uint8_t(rng());
    for (auto& x : b) x = fi ? int8_t(rng() % 16) : int8_t(rng());
    std::vector<uint8_t> p(spdfq::cpu::qpack_b_bytes(f, N, K));
    spdfq::cpu::qpack_b(f, b.data(), K, N, K, p.data());
    QGemmArgs g;
    g.M = M;
    g.A = a.data();
    g.lda = K;
    g.B = QPackedB{f, N, K, p.data()};
    std::vector<int32_t> full(static_cast<size_t>(M) * N), parts(static_cast<size_t>(M) * N);
    g.C32 = full.data();
    g.ldc = N;
    spdfq::cpu::qgemm_ref(g);
    for (const Variant& var : vars) {
      const int cuts[] = {0, 16, 64, 112, 150};
      for (int s = 0; s + 1 < 5; ++s) {
        QGemmArgs part = g;
        part.B = spdfq::cpu::qpack_b_columns(g.B, cuts[s], cuts[s + 1]);
        part.C32 = parts.data() + cuts[s];
        call(var, part);
      }
      if (parts == full) ++*passed;
      else {
        ++failed;
        std::printf("FAIL %s column slices %s\n", var.name, fi ? "u4" : "s8");
      }
    }
  }
  return failed;
}

// Concurrent calls on disjoint row slices: the kernels must be reentrant.
int check_threads(const std::vector<Variant>& vars, int* passed) {
  const int M = 1000, N = 300, K = 700, T = 6;
  std::mt19937 rng(99);
  int failed = 0;
  for (int fi = 0; fi < 2; ++fi) {
    const QWeightFormat f = fi ? QWeightFormat::U4 : QWeightFormat::S8;
    std::vector<uint8_t> a(static_cast<size_t>(M) * K);
    std::vector<int8_t> b(static_cast<size_t>(N) * K);
    for (auto& x : a) x = uint8_t(rng());
    for (auto& x : b) x = fi ? int8_t(rng() % 16) : int8_t(rng());
    std::vector<uint8_t> p(spdfq::cpu::qpack_b_bytes(f, N, K));
    spdfq::cpu::qpack_b(f, b.data(), K, N, K, p.data());
    QGemmArgs g;
    g.M = M;
    g.A = a.data();
    g.lda = K;
    g.B = QPackedB{f, N, K, p.data()};
    g.ldc = N;
    std::vector<int32_t> ref(static_cast<size_t>(M) * N);
    g.C32 = ref.data();
    spdfq::cpu::qgemm_ref(g);
    for (const Variant& var : vars) {
      if (var.v == QGemmVariant::Ref) continue;
      std::vector<int32_t> c(static_cast<size_t>(M) * N, 0);
      std::vector<std::thread> th;
      for (int t = 0; t < T; ++t) {
        const int b0 = int(int64_t(M) * t * (t + 1) / (T * (T + 1)));
        const int b1 = int(int64_t(M) * (t + 1) * (t + 2) / (T * (T + 1)));
        th.emplace_back([&, b0, b1] {
          for (int rep = 0; rep < 3; ++rep) {
            QGemmArgs part = g;
            part.M = b1 - b0;
            part.A = g.A + size_t(b0) * g.lda;
            part.C32 = c.data() + size_t(b0) * N;
            call(var, part);
          }
        });
      }
      for (auto& t : th) t.join();
      if (c == ref) ++*passed;
      else {
        ++failed;
        std::printf("FAIL %s threaded %s\n", var.name, fi ? "u4" : "s8");
      }
    }
  }
  return failed;
}

int check_qgemm() {
  const auto vars = variants_under_test();
  std::printf("variants:");
  for (const auto& v : vars) std::printf(" %s", v.name);
  std::printf("\n");
  std::mt19937 rng(20240611);
  std::vector<QCase> cases;
  auto pad = [&] { return int(rng() % 3 == 0 ? 0 : rng() % 70); };
  const int amaxes[] = {255, 255, 127, 15, 1};
  auto amax = [&] { return amaxes[rng() % 5]; };
  auto rnd_case = [&](QWeightFormat f, int M, int N, int K, Dist d) {
    QCase c{f, M, N, K, pad(), pad(), amax(), bool(rng() & 1), bool(rng() & 1), int(rng() % 3), d, bool(rng() & 1)};
    return c;
  };
  const QWeightFormat fmts[] = {QWeightFormat::S8, QWeightFormat::U4};

  // 1. Exhaustive tiny shapes, zeros included.
  const int tm[] = {0, 1, 2, 3, 5, 6, 7};
  const int tn[] = {0, 1, 2, 7, 8, 9, 15, 16, 17};
  const int tk[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 12};
  for (QWeightFormat f : fmts)
    for (int M : tm)
      for (int N : tn)
        for (int K : tk) cases.push_back(rnd_case(f, M, N, K, Dist::Random));
  // 2. Random shapes around tile, vector and K-quad/octet edges.
  const int ms[] = {1, 4, 5, 6, 7, 11, 12, 13, 23, 97, 193};
  const int ns[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 48, 63, 64, 65, 79, 127, 129, 200};
  const int ks[] = {1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 100, 255, 256, 257, 768, 3072};
  for (int t = 0; t < 700; ++t) {
    int M = ms[rng() % 11];
    const int N = ns[rng() % 18], K = ks[rng() % 20];
    while (int64_t(M) * N * K > 4000000 && M > 1) M /= 2;  // keep the int64 truth quick
    const Dist d = rng() % 4 == 0 ? Dist::Sparse : Dist::Random;
    cases.push_back(rnd_case(fmts[rng() & 1], M, N, K, d));
  }
  // 3. Named shapes: 1×1, K = 1, tall-skinny, wide-short, the ViT widths.
  struct Shape { int M, N, K; };
  const Shape named[] = {{1, 1, 1},     {5000, 3, 7},   {3, 5000, 7},  {300, 300, 1}, {1, 777, 513},
                         {777, 1, 513}, {197, 197, 64}, {64, 310, 9},  {13, 70, 3072}, {2000, 16, 64},
                         {197, 576, 192}, {50, 192, 768}, {20, 768, 3071}};
  for (const Shape& s : named)
    for (QWeightFormat f : fmts) {
      cases.push_back(rnd_case(f, s.M, s.N, s.K, Dist::Random));
      QCase c = rnd_case(f, s.M, s.N, s.K, Dist::Random);
      c.corr = c.off = true;
      c.out = 2;
      c.real_sums = true;
      cases.push_back(c);
    }
  // 4. Saturation worst cases: A at its bound with B at the extremes, where a vpmaddubsw
  //    pair sum of 8-bit × 8-bit would saturate int16 (2·255·(−128) = −65280). The
  //    a_max = 127 promise is tested right at its edge (2·127·(−128) = −32512).
  for (QWeightFormat f : fmts)
    for (int am : {255, 127, 128, 15})
      for (Dist d : {Dist::MaxNeg, Dist::MaxPos, Dist::AltSign})
        for (int K : {4, 7, 64, 768, 3072}) {
          QCase c{f, 7, 33, K, pad(), pad(), am, false, false, 0, d, true};
          cases.push_back(c);
          c.corr = c.off = true;
          c.out = 2;
          cases.push_back(c);
        }
  // 5. The int32 limit: K = kQGemmMaxK with every term at its worst,
  //    Σ 255·(−128 − 127) = −K·255² = −2 130 739 200 (and +K·255² with B = 127,
  //    zb = −128), just inside int32.
  for (Dist d : {Dist::MaxNeg, Dist::MaxPos}) {
    QCase c{QWeightFormat::S8, 3, 20, spdfq::cpu::kQGemmMaxK, 0, 0, 255, true, false, 1, d, true};
    cases.push_back(c);
  }

  int failed = 0, passed = 0;
  const int before = g_passed;
  for (const QCase& c : cases) failed += run_qcase(c, vars, rng, &passed);
  failed += check_packing(rng, &passed);
  failed += check_column_slices(vars, rng, &passed);
  failed += check_threads(vars, &passed);
  g_passed = before + passed;
  std::printf("qgemm: %d passed, %d failed (%zu cases × %zu variants)\n", passed, failed, cases.size(),
              vars.size());
  return failed;
}

// ---------------------------------------------------------------------------------------
// qlinear against the fake-quant simulation.

struct WeightSpec {
  const char* name;
  int bits;
  bool symmetric;
  bool signed_grid;  // asymmetric on a signed grid
};

std::vector<quant::TensorQuant> weight_quantizers(const std::vector<float>& w, int N, int K, const WeightSpec& s) {
  std::vector<quant::TensorQuant> q(static_cast<size_t>(N));
  for (int n = 0; n < N; ++n) {
    float lo = 0, hi = 0, am = 0;
    for (int k = 0; k < K; ++k) {
      const float v = w[size_t(n) * K + k];
      lo = std::min(lo, v);
      hi = std::max(hi, v);
      am = std::max(am, std::fabs(v));
    }
    q[size_t(n)] = s.symmetric ? quant::symmetric_from_absmax(am * 0.9f, s.bits)
                               : quant::uniform_from_range(lo * 0.9f, hi * 0.9f, s.bits, s.signed_grid);
  }
  return q;
}

// Recovers the integer q − z from a fake-quantized value x̂ = fl((q − z)·s): exact, as
// |q − z| ≤ 255 and fl() is off by at most 2⁻²⁴ relative.
bool recover(float xhat, float s, int32_t* d) {
  const double r = std::nearbyint(double(xhat) / double(s));
  *d = int32_t(r);
  return float(float(*d) * s) == xhat;
}

int check_qlinear(const std::vector<Variant>& vars) {
  std::mt19937 rng(777);
  int failed = 0, passed = 0;
  struct ActSpec { const char* name; int bits; bool signed_grid; };
  const ActSpec acts[] = {{"u8", 8, false}, {"u4", 4, false}, {"s8", 8, true}, {"u6", 6, false}, {"u7", 7, false}};
  const WeightSpec wspecs[] = {{"w8-asym", 8, false, false}, {"w4-asym", 4, false, false},
                               {"w8-sym", 8, true, false},   {"w4-sym", 4, true, false},
                               {"w8-asym-signed", 8, false, true}, {"w6-asym", 6, false, false},
                               {"w3-asym", 3, false, false}};
  struct Shape { int rows, K, N; };
  const Shape shapes[] = {{1, 1, 1}, {7, 5, 3}, {197, 192, 576}, {33, 768, 192}, {5, 3072, 70}, {64, 77, 129}};
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (const Shape& sh : shapes)
    for (const ActSpec& as : acts)
      for (const WeightSpec& ws : wspecs) {
        const int rows = sh.rows, K = sh.K, N = sh.N;
        const int ld_in = K + int(rng() % 9), ld_out = N + int(rng() % 9);
        std::vector<float> x(static_cast<size_t>(rows) * ld_in, std::numeric_limits<float>::quiet_NaN());
        std::vector<float> w(static_cast<size_t>(N) * K), bias(static_cast<size_t>(N));
        for (int r = 0; r < rows; ++r)
          for (int k = 0; k < K; ++k) {
            float v = nd(rng) * (1.0f + float(k % 7));
            if (rng() % 50 == 0) v *= 20.0f;  // outliers beyond the clip range
            x[size_t(r) * ld_in + k] = v;
          }
        for (auto& v : w) v = nd(rng) * 0.05f;
        for (auto& v : bias) v = nd(rng) * 0.1f;
        // Activation quantizer from a clipped range of the data, as calibration would.
        float lo = 0, hi = 0;
        for (int r = 0; r < rows; ++r)
          for (int k = 0; k < K; ++k) {
            lo = std::min(lo, x[size_t(r) * ld_in + k]);
            hi = std::max(hi, x[size_t(r) * ld_in + k]);
          }
        const quant::TensorQuant act = quant::uniform_from_range(lo * 0.5f, hi * 0.6f, as.bits, as.signed_grid);
        // A few inputs on rounding ties x/s_x = j + ½ (exact where the float product allows),
        // including odd zero points, where rounding after adding zero would differ.
        for (int t = 0; t < 8 && rows * K > 0; ++t) {
          const int r = int(rng() % rows), k = int(rng() % K);
          const float j = act.qmin - act.zero + float(rng() % int(act.qmax - act.qmin + 1));
          x[size_t(r) * ld_in + k] = (j + 0.5f) * act.scale;
        }
        const auto wq = weight_quantizers(w, N, K, ws);
        const spdfq::cpu::QLinearWeights packed = spdfq::cpu::pack_qweights_from_float(w.data(), N, K, K, wq.data());
        const bool want4 = ws.bits <= 4;
        char name[160];
        std::snprintf(name, sizeof name, "qlinear rows=%d K=%d N=%d act=%s %s", rows, K, N, as.name, ws.name);
        if ((packed.format == QWeightFormat::U4) != want4) {
          ++failed;
          std::printf("FAIL %s: packed as %s\n", name, want4 ? "s8" : "u4");
          continue;
        }
        // The simulation: fake-quantized copies, exactly as the engine makes them.
        std::vector<float> xh(x), wh(w);
        for (int r = 0; r < rows; ++r) quant::fake_quant_tensor(xh.data() + size_t(r) * ld_in, K, act);
        for (int n = 0; n < N; ++n) quant::fake_quant_tensor(wh.data() + size_t(n) * K, K, wq[size_t(n)]);
        std::vector<int32_t> dx(static_cast<size_t>(rows) * K), dw(static_cast<size_t>(N) * K);
        bool rec = true;
        for (int r = 0; r < rows; ++r)
          for (int k = 0; k < K; ++k) rec &= recover(xh[size_t(r) * ld_in + k], act.scale, &dx[size_t(r) * K + k]);
        for (int n = 0; n < N; ++n)
          for (int k = 0; k < K; ++k)
            rec &= recover(wh[size_t(n) * K + k], wq[size_t(n)].scale, &dw[size_t(n) * K + k]);
        if (!rec) {
          ++failed;
          std::printf("FAIL %s: fake-quant values are not integer multiples of the scale\n", name);
          continue;
        }
        // (a) The integer codes: quantize_rows_u8 gives exactly the simulation's q − z.
        {
          std::vector<uint8_t> q(static_cast<size_t>(rows > 0 ? rows : 1) * (K + 3));
          std::vector<int32_t> rs(static_cast<size_t>(rows > 0 ? rows : 1));
          spdfq::cpu::quantize_rows_u8(x.data(), rows, K, ld_in, act, q.data(), K + 3, rs.data());
          bool ok = true;
          for (int r = 0; r < rows; ++r) {
            int32_t s = 0;
            for (int k = 0; k < K; ++k) {
              const int u = q[size_t(r) * (K + 3) + k];
              s += u;
              if (u + int(act.qmin) - int(act.zero) != dx[size_t(r) * K + k] && ok) {
                std::printf("  code mismatch x=%.9g xh=%.9g u=%d qmin=%g zero=%g scale=%.9g dx=%d\n", x[size_t(r) * ld_in + k],
                            xh[size_t(r) * ld_in + k], u, act.qmin, act.zero, act.scale, dx[size_t(r) * K + k]);
                ok = false;
              }
            }
            ok &= s == rs[size_t(r)];
          }
          if (ok) ++passed;
          else {
            ++failed;
            std::printf("FAIL %s: activation codes differ from fake_quant_tensor\n", name);
          }
        }
        // (b) The layer: fma(float(Σ dx·dw), fl(s_x·s_w), bias), bit for bit.
        std::vector<float> want(static_cast<size_t>(rows) * N);
        double max_rel = 0.0;
        for (int r = 0; r < rows; ++r)
          for (int n = 0; n < N; ++n) {
            int64_t s = 0;
            double fs = 0.0;
            for (int k = 0; k < K; ++k) {
              s += int64_t(dx[size_t(r) * K + k]) * dw[size_t(n) * K + k];
              fs += double(xh[size_t(r) * ld_in + k]) * wh[size_t(n) * K + k];
            }
            want[size_t(r) * N + n] = std::fma(float(int32_t(s)), act.scale * wq[size_t(n)].scale, bias[size_t(n)]);
            // Against the float simulation: only float rounding may differ.
            const double sim = fs + bias[size_t(n)];
            const double err = std::fabs(double(want[size_t(r) * N + n]) - sim);
            double mag = std::fabs(bias[size_t(n)]);
            for (int k = 0; k < K; ++k) mag += std::fabs(double(xh[size_t(r) * ld_in + k]) * wh[size_t(n) * K + k]);
            max_rel = std::max(max_rel, err / (mag + 1e-30));
          }
        if (max_rel > 4e-7) {
          ++failed;
          std::printf("FAIL %s: integer result differs from the float simulation by %.3g relative\n", name, max_rel);
        }
        for (const Variant& var : vars) {
          const float kSent = 4321.0f;
          std::vector<float> out(static_cast<size_t>(rows) * ld_out, kSent);
          std::snprintf(g_current, sizeof g_current, "%s %s", name, var.name);
          spdfq::cpu::qlinear_forward(out.data(), x.data(), rows, K, N, act, packed, bias.data(), ld_in, ld_out,
                                      var.via_dispatch ? QGemmVariant::Auto : var.v);
          size_t bad = 0, first = 0;
          for (int r = 0; r < rows; ++r)
            for (int n = 0; n < ld_out; ++n) {
              const float got = out[size_t(r) * ld_out + n];
              const bool ok = n >= N ? got == kSent : float_bits(got) == float_bits(want[size_t(r) * N + n]);
              if (!ok && bad++ == 0) first = size_t(r) * ld_out + n;
            }
          if (bad) {
            ++failed;
            std::printf("FAIL %s %s: %zu bad, first (%zu,%zu) got %.9g want %.9g\n", name, var.name, bad,
                        first / ld_out, first % ld_out, out[first],
                        first % ld_out < size_t(N) ? want[(first / ld_out) * N + first % ld_out] : kSent);
          } else {
            ++passed;
          }
        }
      }

  // The direct packing entry points: int8 with asymmetric zeros, int4 signed and unsigned.
  for (int variant = 0; variant < 3; ++variant) {
    const int rows = 29, K = 131, N = 45;
    std::vector<int8_t> qw(static_cast<size_t>(N) * K);
    std::vector<int32_t> zw(static_cast<size_t>(N));
    std::vector<float> sw(static_cast<size_t>(N)), bias(static_cast<size_t>(N)), x(static_cast<size_t>(rows) * K);
    for (int n = 0; n < N; ++n) {
      sw[size_t(n)] = 0.01f + 0.001f * float(n);
      bias[size_t(n)] = 0.1f * float(n % 5);
      if (variant == 0) zw[size_t(n)] = int32_t(rng() % 256) - 128;
      else if (variant == 1) zw[size_t(n)] = int32_t(rng() % 16) - 8;
      else zw[size_t(n)] = int32_t(rng() % 16);
      for (int k = 0; k < K; ++k)
        qw[size_t(n) * K + k] = variant == 0 ? int8_t(rng()) : variant == 1 ? int8_t(int(rng() % 16) - 8) : int8_t(rng() % 16);
    }
    for (auto& v : x) v = nd(rng);
    const quant::TensorQuant act = quant::uniform_from_range(-2.0f, 2.5f, 8);
    const spdfq::cpu::QLinearWeights pw =
        variant == 0 ? spdfq::cpu::pack_qweights_int8(qw.data(), N, K, K, sw.data(), zw.data())
                     : spdfq::cpu::pack_qweights_int4(qw.data(), N, K, K, sw.data(), zw.data(), variant == 2);
    std::vector<float> xh(x);
    quant::fake_quant_tensor(xh.data(), int64_t(xh.size()), act);
    bool ok = true;
    for (const Variant& var : vars) {
      std::vector<float> out(static_cast<size_t>(rows) * N);
      spdfq::cpu::qlinear_forward(out.data(), x.data(), rows, K, N, act, pw, bias.data(), 0, 0,
                                  var.via_dispatch ? QGemmVariant::Auto : var.v);
      for (int r = 0; r < rows; ++r)
        for (int n = 0; n < N; ++n) {
          int64_t s = 0;
          for (int k = 0; k < K; ++k) {
            int32_t d;
            recover(xh[size_t(r) * K + k], act.scale, &d);
            s += int64_t(d) * (qw[size_t(n) * K + k] - zw[size_t(n)]);
          }
          const float want = std::fma(float(int32_t(s)), act.scale * sw[size_t(n)], bias[size_t(n)]);
          ok &= float_bits(out[size_t(r) * N + n]) == float_bits(want);
        }
    }
    const char* what[] = {"pack_qweights_int8", "pack_qweights_int4 signed", "pack_qweights_int4 unsigned"};
    if (ok) ++passed;
    else {
      ++failed;
      std::printf("FAIL %s: qlinear output differs from the integer formula\n", what[variant]);
    }
  }

  // NaN inputs quantize to the zero point: same output as 0 there (0 is on every grid).
  {
    const int rows = 4, K = 40, N = 20;
    std::vector<float> w(static_cast<size_t>(N) * K), x(static_cast<size_t>(rows) * K);
    for (auto& v : w) v = nd(rng) * 0.1f;
    for (auto& v : x) v = nd(rng);
    const auto wq = weight_quantizers(w, N, K, wspecs[0]);
    const auto pw = spdfq::cpu::pack_qweights_from_float(w.data(), N, K, K, wq.data());
    const quant::TensorQuant act = quant::uniform_from_range(-3.0f, 3.0f, 8);
    std::vector<float> xz(x);
    for (int i = 0; i < rows * K; i += 7) {
      x[size_t(i)] = std::numeric_limits<float>::quiet_NaN();
      xz[size_t(i)] = 0.0f;
    }
    std::vector<float> o1(static_cast<size_t>(rows) * N), o2(static_cast<size_t>(rows) * N);
    spdfq::cpu::qlinear_forward(o1.data(), x.data(), rows, K, N, act, pw, nullptr);
    spdfq::cpu::qlinear_forward(o2.data(), xz.data(), rows, K, N, act, pw, nullptr);
    if (std::memcmp(o1.data(), o2.data(), o1.size() * sizeof(float)) == 0) ++passed;
    else {
      ++failed;
      std::printf("FAIL qlinear NaN input does not act as the zero point\n");
    }
  }

  // Unsupported quantizers and mismatched shapes are refused.
  {
    const int K = 8, N = 4;
    std::vector<float> w(static_cast<size_t>(N) * K, 0.5f), x(static_cast<size_t>(K), 1.0f), out(static_cast<size_t>(N));
    std::vector<quant::TensorQuant> wq(static_cast<size_t>(N), quant::uniform_from_range(-1.0f, 1.0f, 8));
    const auto pw = spdfq::cpu::pack_qweights_from_float(w.data(), N, K, K, wq.data());
    int refused = 0;
    quant::TensorQuant bad[4];
    bad[0].kind = quant::QuantKind::Log2;
    bad[1] = quant::uniform_from_range(-1.0f, 1.0f, 8);
    bad[1].zero = 0.5f;
    bad[2] = quant::uniform_from_range(-1.0f, 1.0f, 8);
    bad[2].qmax = 300.0f;
    bad[3] = quant::uniform_from_range(-1.0f, 1.0f, 8);
    for (int i = 0; i < 4; ++i) {
      try {
        spdfq::cpu::qlinear_forward(out.data(), x.data(), 1, i == 3 ? K + 1 : K, N, bad[i], pw, nullptr);
      } catch (const std::invalid_argument&) {
        ++refused;
      }
    }
    if (refused == 4) ++passed;
    else {
      ++failed;
      std::printf("FAIL qlinear accepted %d of 4 invalid calls\n", 4 - refused);
    }
  }

  // Threads: qlinear from 4 threads on row slices of one layer, and on layers of
  // different K at once, so the thread_local scratch grows at different times.
  {
    const int rows = 400, N = 96;
    const int Ks[] = {64, 768, 200, 3072};
    bool ok = true;
    std::vector<spdfq::cpu::QLinearWeights> layers;
    std::vector<std::vector<float>> xs, refs, outs;
    const quant::TensorQuant act = quant::uniform_from_range(-2.0f, 3.0f, 8);
    for (int K : Ks) {
      std::vector<float> w(static_cast<size_t>(N) * K), x(static_cast<size_t>(rows) * K);
      for (auto& v : w) v = nd(rng) * 0.05f;
      for (auto& v : x) v = nd(rng);
      const auto wq = weight_quantizers(w, N, K, wspecs[K == 200 ? 1 : 0]);
      layers.push_back(spdfq::cpu::pack_qweights_from_float(w.data(), N, K, K, wq.data()));
      std::vector<float> ref(static_cast<size_t>(rows) * N);
      spdfq::cpu::qlinear_forward(ref.data(), x.data(), rows, K, N, act, layers.back(), nullptr, 0, 0,
                                  QGemmVariant::Ref);
      xs.push_back(std::move(x));
      refs.push_back(std::move(ref));
      outs.emplace_back(size_t(rows) * N, 0.0f);
    }
    std::vector<std::thread> th;
    for (int t = 0; t < 8; ++t)
      th.emplace_back([&, t] {
        const int L = t % 4, part = t / 4;  // two threads per layer, each half of the rows
        const int K = Ks[L], r0 = part * rows / 2, r1 = (part + 1) * rows / 2;
        for (int rep = 0; rep < 3; ++rep)
          spdfq::cpu::qlinear_forward(outs[size_t(L)].data() + size_t(r0) * N, xs[size_t(L)].data() + size_t(r0) * K,
                                      r1 - r0, K, N, act, layers[size_t(L)], nullptr);
      });
    for (auto& t : th) t.join();
    for (int L = 0; L < 4; ++L) ok &= std::memcmp(outs[size_t(L)].data(), refs[size_t(L)].data(), outs[size_t(L)].size() * 4) == 0;
    if (ok) ++passed;
    else {
      ++failed;
      std::printf("FAIL qlinear threaded\n");
    }
  }
  g_passed += passed;
  std::printf("qlinear: %d passed, %d failed\n", passed, failed);
  return failed;
}

int check() {
  signal(SIGSEGV, on_fault);
  signal(SIGBUS, on_fault);
  int failed = check_qgemm();
  g_failed += failed;
  failed = check_qlinear(variants_under_test());
  g_failed += failed;
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}

// ---------------------------------------------------------------------------------------
// Benchmark.

template <class F>
double best_seconds(F&& fn, double budget = 0.25, int min_reps = 5) {
  fn();  // warm-up
  double best = 1e30, total = 0.0;
  for (int r = 0; r < 1000 && (r < min_reps || total < budget); ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, dt);
    total += dt;
  }
  return best;
}

void bench() {
  const int S = 768;
  const double ops = 2.0 * S * S * S;
  std::mt19937 rng(5);
  // fp32 gemm() on the same shape: NT is Linear forward (the layout qlinear replaces).
  std::vector<float> fa(static_cast<size_t>(S) * S), fb(static_cast<size_t>(S) * S), fc(static_cast<size_t>(S) * S);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  for (auto& v : fa) v = uni(rng);
  for (auto& v : fb) v = uni(rng);
  // fp32: the best of NN/NT through gemm() (Auto) is the reference figure; the AVX2 one
  // is what the AVX2 integer kernels would be compared with on a CPU without AVX-512.
  double fp32 = 0.0;
  for (int tb = 0; tb < 2; ++tb)
    for (int av = 0; av < 2; ++av) {
      const spdfq::cpu::GemmVariant gv = av ? spdfq::cpu::GemmVariant::Avx2 : spdfq::cpu::GemmVariant::Auto;
      if (av && !spdfq::cpu::gemm_variant_supported(gv)) continue;
      spdfq::cpu::GemmArgs g;
      g.transB = tb;
      g.M = g.N = g.K = S;
      g.A = fa.data();
      g.lda = S;
      g.B = fb.data();
      g.ldb = S;
      g.C = fc.data();
      g.ldc = S;
      const double gf = ops / best_seconds([&] { spdfq::cpu::gemm(g, gv); }) * 1e-9;
      std::printf("fp32 gemm %s 768^3 %-5s: %7.1f GFLOP/s\n", tb ? "NT" : "NN", av ? "avx2" : "auto", gf);
      if (!av) fp32 = std::max(fp32, gf);
    }

  std::vector<uint8_t> a(static_cast<size_t>(S) * S);
  for (auto& v : a) v = uint8_t(rng());
  std::vector<int32_t> rs(static_cast<size_t>(S)), cz(static_cast<size_t>(S)), co(static_cast<size_t>(S)), c32(static_cast<size_t>(S) * S);
  std::vector<float> sc(static_cast<size_t>(S), 1e-4f), bi(static_cast<size_t>(S), 0.5f), cf(static_cast<size_t>(S) * S);
  for (int i = 0; i < S; ++i) {
    rs[size_t(i)] = int32_t(rng() % 50000);
    cz[size_t(i)] = int32_t(rng() % 16);
    co[size_t(i)] = int32_t(rng() % 100000);
  }
  std::printf("\n%-28s %10s %10s %10s\n", "768^3, 1 thread (GOPS)", "int32 out", "dequant", "vs fp32");
  double auto_int8 = 0.0, auto_int4 = 0.0;
  for (int fi = 0; fi < 2; ++fi) {
    const QWeightFormat f = fi ? QWeightFormat::U4 : QWeightFormat::S8;
    std::vector<int8_t> b(static_cast<size_t>(S) * S);
    for (auto& v : b) v = fi ? int8_t(rng() % 16) : int8_t(rng());
    const size_t bytes = spdfq::cpu::qpack_b_bytes(f, S, S);
    uint8_t* p = static_cast<uint8_t*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
    spdfq::cpu::qpack_b(f, b.data(), S, S, S, p);
    struct Row { QGemmVariant v; int a_max; const char* name; };
    std::vector<Row> rows;
    if (spdfq::cpu::qgemm_variant_supported(QGemmVariant::Avx2)) {
      rows.push_back({QGemmVariant::Avx2, 255, "avx2"});
      if (!fi) rows.push_back({QGemmVariant::Avx2, 127, "avx2 (a_max 127)"});
    }
    if (spdfq::cpu::qgemm_variant_supported(QGemmVariant::Avx512Vnni))
      rows.push_back({QGemmVariant::Avx512Vnni, 255, "avx512vnni"});
    rows.push_back({QGemmVariant::Auto, 255, "auto"});
    for (const Row& r : rows) {
      QGemmArgs g;
      g.M = S;
      g.A = a.data();
      g.lda = S;
      g.B = QPackedB{f, S, S, p};
      g.a_max = r.a_max;
      g.ldc = S;
      g.C32 = c32.data();
      const double raw = ops / best_seconds([&] { spdfq::cpu::qgemm(g, r.v); }) * 1e-9;
      g.C32 = nullptr;
      g.Cf = cf.data();
      g.row_sum = rs.data();
      g.col_zero = cz.data();
      g.col_off = co.data();
      g.col_scale = sc.data();
      g.col_bias = bi.data();
      const double deq = ops / best_seconds([&] { spdfq::cpu::qgemm(g, r.v); }) * 1e-9;
      char label[64];
      std::snprintf(label, sizeof label, "%s %s", fi ? "int4w" : "int8", r.name);
      std::printf("%-28s %10.1f %10.1f %9.2fx\n", label, raw, deq, deq / fp32);
      if (r.v == QGemmVariant::Auto) (fi ? auto_int4 : auto_int8) = deq;
    }
    std::free(p);
  }
  std::printf("\nqgemm_bench_int8_gops(768, 10)  = %.1f\n", spdfq::cpu::qgemm_bench_int8_gops(768, 10));
  std::printf("qgemm_bench_int4w_gops(768, 10) = %.1f\n", spdfq::cpu::qgemm_bench_int4w_gops(768, 10));
  std::printf("target int8 >= 2.5x fp32: %.2fx (%s)\n", auto_int8 / fp32, auto_int8 >= 2.5 * fp32 ? "met" : "NOT met");
  (void)auto_int4;

  // The whole quantized Linear (activation quantization included) vs fp32 gemm + bias,
  // on ViT-Base shapes for one 197-token image.
  std::printf("\n%-30s %10s %10s %8s\n", "qlinear vs fp32 Linear (1 thr)", "fp32 ms", "qlin ms", "speedup");
  struct LShape { const char* name; int rows, K, N; };
  const LShape ls[] = {{"qkv 197x768->2304", 197, 768, 2304}, {"fc1 197x768->3072", 197, 768, 3072},
                       {"fc2 197x3072->768", 197, 3072, 768}};
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (const LShape& s : ls) {
    std::vector<float> x(static_cast<size_t>(s.rows) * s.K), w(static_cast<size_t>(s.N) * s.K), bias(static_cast<size_t>(s.N), 0.1f), y(static_cast<size_t>(s.rows) * s.N);
    for (auto& v : x) v = nd(rng);
    for (auto& v : w) v = nd(rng) * 0.05f;
    std::vector<quant::TensorQuant> wq(static_cast<size_t>(s.N), quant::uniform_from_range(-0.15f, 0.15f, 8));
    const auto pw = spdfq::cpu::pack_qweights_from_float(w.data(), s.N, s.K, s.K, wq.data());
    const quant::TensorQuant act = quant::uniform_from_range(-3.0f, 3.0f, 8);
    spdfq::cpu::GemmArgs g;
    g.transB = true;
    g.M = s.rows;
    g.N = s.N;
    g.K = s.K;
    g.A = x.data();
    g.lda = s.K;
    g.B = w.data();
    g.ldb = s.K;
    g.C = y.data();
    g.ldc = s.N;
    const double tf = best_seconds([&] {
      spdfq::cpu::gemm(g);
      for (int r = 0; r < s.rows; ++r)
        for (int n = 0; n < s.N; ++n) y[size_t(r) * s.N + n] += bias[size_t(n)];
    });
    const double tq = best_seconds([&] {
      spdfq::cpu::qlinear_forward(y.data(), x.data(), s.rows, s.K, s.N, act, pw, bias.data());
    });
    std::printf("%-30s %10.3f %10.3f %7.2fx\n", s.name, tf * 1e3, tq * 1e3, tf / tq);
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool do_bench = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--bench") do_bench = true;
    else {
      std::fprintf(stderr, "usage: %s [--bench]\n", argv[0]);
      return 2;
    }
  }
  const auto& f = spdfq::cpu::cpu_features();
  std::printf("cpu: avx2_fma=%d avx512f=%d avx512_vnni=%d avx_vnni=%d\n", f.avx2_fma, f.avx512f, f.avx512_vnni,
              f.avx_vnni);
  if (do_bench) {
    bench();
    return 0;
  }
  return check();
}
