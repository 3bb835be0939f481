// Standalone correctness check and benchmark for the CPU GEMM variants.
//
//   gemm_check            every supported variant (and gemm()'s Auto path) against gemm_ref
//                         on awkward shapes × all transposes × alpha/beta × padded strides;
//                         last line "N passed, M failed", exit status 1 on any failure.
//   gemm_check --bench    single-threaded GFLOP/s per variant, best of several repetitions,
//                         for 768³ and the ViT-Tiny shapes (batch 8 × 197 tokens).
//   gemm_check --bench --ref   also time gemm_ref (slow).
//
// Error bound, per element of C (u = 2⁻²⁴ is the float unit roundoff, eps = 2u):
//   |C − C_ref| ≤ (K + 2)·eps·|alpha|·Σ_k |a_ik|·|b_kj| + 2·eps·(|beta·c0| + |C_ref|) + 1e-30
// The first term is twice the classical worst case γ_K ≈ K·u for a float dot product of
// length K (any summation order, FMA or not); the second covers the final alpha/beta
// roundings. gemm_ref accumulates in double, so its own error is negligible.
//
// Out-of-bounds accesses are caught three ways: matrices sit against PROT_NONE guard
// pages (reads/writes just past the end, or just before the start, fault); the padding of
// A and B (lda/ldb beyond the row) is NaN, so any use of it poisons C; and the padding of
// C (ldc beyond N) is a sentinel that must survive. With beta == 0, C starts as NaN: a
// kernel that reads C then fails.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../cpu/cpu_features.h"
#include "../cpu/gemm.h"

using spdfq::cpu::GemmArgs;
using spdfq::cpu::GemmVariant;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kSentinel = 12345.678f;

// A guard-page hit kills the run; say which call did it and keep the summary line format.
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

// n floats inside an mmap'd region with a PROT_NONE page on both sides; the data is
// placed flush against the front or the back guard page, `shift` floats in from it.
class Guarded {
 public:
  Guarded(size_t n, bool at_end, size_t shift) {
    page_ = size_t(sysconf(_SC_PAGESIZE));
    const size_t bytes = (n + shift) * sizeof(float);
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
    char* p = at_end ? base_ + page_ + body - bytes : base_ + page_ + shift * sizeof(float);
    data_ = reinterpret_cast<float*>(p);
  }
  ~Guarded() { munmap(base_, total_); }
  Guarded(const Guarded&) = delete;
  Guarded& operator=(const Guarded&) = delete;
  float* data() const { return data_; }

 private:
  size_t page_ = 0, total_ = 0;
  char* base_ = nullptr;
  float* data_ = nullptr;
};

struct Case {
  bool ta, tb;
  int M, N, K;
  int pa, pb, pc;  // extra leading-dimension padding of A, B, C
  float alpha, beta;
};

struct Variant {
  GemmVariant v;
  bool via_dispatch;  // through gemm(g, Auto) instead of the direct entry point
  const char* name;
};

void call(const Variant& var, const GemmArgs& g) {
  if (var.via_dispatch) {
    spdfq::cpu::gemm(g, GemmVariant::Auto);
    return;
  }
  switch (var.v) {
    case GemmVariant::Avx2: spdfq::cpu::gemm_avx2(g); break;
    case GemmVariant::Avx512: spdfq::cpu::gemm_avx512(g); break;
    default: spdfq::cpu::gemm_ref(g); break;
  }
}

// Rows × cols matrix stored with leading dimension ld ≥ cols (rows may be 0).
size_t storage(int rows, int cols, int ld) { return rows == 0 ? 0 : size_t(rows - 1) * ld + cols; }

// Runs one case for every variant; returns the number of failing variants.
int run_case(const Case& cs, const std::vector<Variant>& vars, std::mt19937& rng, int* passed,
             bool verbose) {
  const int arows = cs.ta ? cs.K : cs.M, acols = cs.ta ? cs.M : cs.K;
  const int brows = cs.tb ? cs.N : cs.K, bcols = cs.tb ? cs.K : cs.N;
  const int lda = (acols > 0 ? acols : 1) + cs.pa;
  const int ldb = (bcols > 0 ? bcols : 1) + cs.pb;
  const int ldc = (cs.N > 0 ? cs.N : 1) + cs.pc;
  const size_t na = storage(arows, acols, lda), nb = storage(brows, bcols, ldb);
  const size_t nc = storage(cs.M, cs.N, ldc);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  std::uniform_int_distribution<int> coin(0, 1), sh(0, 3);

  Guarded A(na, coin(rng), sh(rng)), B(nb, coin(rng), sh(rng));
  for (size_t i = 0; i < na; ++i) A.data()[i] = (i % lda) < size_t(acols) ? uni(rng) : kNaN;
  for (size_t i = 0; i < nb; ++i) B.data()[i] = (i % ldb) < size_t(bcols) ? uni(rng) : kNaN;
  std::vector<float> c0(nc);
  for (size_t i = 0; i < nc; ++i)
    c0[i] = (i % ldc) >= size_t(cs.N) ? kSentinel : cs.beta == 0.0f ? kNaN : uni(rng);

  GemmArgs g;
  g.transA = cs.ta;
  g.transB = cs.tb;
  g.M = cs.M;
  g.N = cs.N;
  g.K = cs.K;
  g.alpha = cs.alpha;
  g.beta = cs.beta;
  g.A = A.data();
  g.lda = lda;
  g.B = B.data();
  g.ldb = ldb;
  g.ldc = ldc;

  // Reference result and per-element bound.
  std::vector<float> ref(c0);
  g.C = ref.data();
  spdfq::cpu::gemm_ref(g);
  std::vector<double> tol(nc, 0.0);
  const double eps = std::numeric_limits<float>::epsilon();
  for (int i = 0; i < cs.M; ++i)
    for (int j = 0; j < cs.N; ++j) {
      double s = 0.0;
      if (cs.alpha != 0.0f)
        for (int k = 0; k < cs.K; ++k) {
          const float a = cs.ta ? g.A[size_t(k) * lda + i] : g.A[size_t(i) * lda + k];
          const float b = cs.tb ? g.B[size_t(j) * ldb + k] : g.B[size_t(k) * ldb + j];
          s += std::fabs(double(a) * b);
        }
      const size_t idx = size_t(i) * ldc + j;
      const double bc = cs.beta == 0.0f ? 0.0 : std::fabs(double(cs.beta) * c0[idx]);
      tol[idx] = (cs.K + 2) * eps * std::fabs(cs.alpha) * s + 2 * eps * (bc + std::fabs(ref[idx])) +
                 1e-30;
    }

  int failed = 0;
  for (const Variant& var : vars) {
    Guarded C(nc, coin(rng), sh(rng));
    if (nc) std::memcpy(C.data(), c0.data(), nc * sizeof(float));
    g.C = C.data();
    std::snprintf(g_current, sizeof g_current, "%s %c%c M=%d N=%d K=%d lda=%d ldb=%d ldc=%d",
                  var.name, cs.ta ? 'T' : 'N', cs.tb ? 'T' : 'N', cs.M, cs.N, cs.K, lda, ldb, ldc);
    std::fflush(stdout);
    call(var, g);
    size_t bad = 0, first = 0;
    double worst = 0.0;
    for (size_t idx = 0; idx < nc; ++idx) {
      const float got = C.data()[idx];
      bool ok;
      if ((idx % ldc) >= size_t(cs.N)) {
        ok = got == kSentinel;  // padding of C must be untouched
      } else {
        const double err = std::fabs(double(got) - ref[idx]);
        ok = std::isfinite(got) && err <= tol[idx];
        if (std::isfinite(got) && err / tol[idx] > worst) worst = err / tol[idx];
      }
      if (!ok && bad++ == 0) first = idx;
    }
    if (bad) {
      ++failed;
      std::printf("FAIL %-7s %c%c M=%d N=%d K=%d lda=%d ldb=%d ldc=%d alpha=%g beta=%g: %zu bad, "
                  "first (%zu,%zu) got %g want %g tol %g\n",
                  var.name, cs.ta ? 'T' : 'N', cs.tb ? 'T' : 'N', cs.M, cs.N, cs.K, lda, ldb, ldc,
                  cs.alpha, cs.beta, bad, first / ldc, first % ldc, C.data()[first], ref[first],
                  tol[first]);
    } else {
      ++*passed;
      if (verbose)
        std::printf("ok   %-7s %c%c M=%d N=%d K=%d worst err/tol %.3f\n", var.name,
                    cs.ta ? 'T' : 'N', cs.tb ? 'T' : 'N', cs.M, cs.N, cs.K, worst);
    }
  }
  return failed;
}

std::vector<Variant> variants_under_test() {
  std::vector<Variant> v;
  if (spdfq::cpu::gemm_variant_supported(GemmVariant::Avx2))
    v.push_back({GemmVariant::Avx2, false, "avx2"});
  if (spdfq::cpu::gemm_variant_supported(GemmVariant::Avx512))
    v.push_back({GemmVariant::Avx512, false, "avx512"});
  v.push_back({GemmVariant::Auto, true, "auto"});
  return v;
}

// The engine calls gemm concurrently, each thread on its own rows (or columns) of C; the
// thread_local packing buffers must keep those calls independent. Uneven splits give the
// threads different block sizes, so their buffers grow at different times.
int check_threads(const std::vector<Variant>& vars, int* passed) {
  const int M = 1000, N = 300, K = 700, T = 6;
  std::mt19937 rng(99);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  std::vector<float> a(size_t(M) * K), b(size_t(N) * K);
  for (auto& x : a) x = uni(rng);
  for (auto& x : b) x = uni(rng);
  GemmArgs g;
  g.transB = true;  // Linear forward: B is an [N, K] weight
  g.M = M;
  g.N = N;
  g.K = K;
  g.A = a.data();
  g.lda = K;
  g.B = b.data();
  g.ldb = K;
  g.ldc = N;
  std::vector<float> ref(size_t(M) * N);
  g.C = ref.data();
  spdfq::cpu::gemm_ref(g);
  const double eps = std::numeric_limits<float>::epsilon();
  int failed = 0;
  for (const Variant& var : vars) {
    for (int by_cols = 0; by_cols < 2; ++by_cols) {
      std::vector<float> c(size_t(M) * N, kNaN);
      std::vector<std::thread> th;
      const int n = by_cols ? N : M;
      for (int t = 0; t < T; ++t) {
        // Uneven parts: thread t gets a share proportional to t + 1.
        const int b0 = int(int64_t(n) * t * (t + 1) / (T * (T + 1)));
        const int b1 = int(int64_t(n) * (t + 1) * (t + 2) / (T * (T + 1)));
        th.emplace_back([&, b0, b1] {
          for (int rep = 0; rep < 3; ++rep) {
            GemmArgs part = g;
            if (by_cols) {
              part.N = b1 - b0;
              part.B = g.B + size_t(b0) * g.ldb;
              part.C = c.data() + b0;
            } else {
              part.M = b1 - b0;
              part.A = g.A + size_t(b0) * g.lda;
              part.C = c.data() + size_t(b0) * g.ldc;
            }
            call(var, part);
          }
        });
      }
      for (auto& t : th) t.join();
      size_t bad = 0;
      for (size_t i = 0; i < c.size(); ++i)  // |a|,|b| ≤ 1: Σ|a||b| ≤ K
        if (!(std::fabs(double(c[i]) - ref[i]) <= (K + 2) * eps * K)) ++bad;
      if (bad) {
        ++failed;
        std::printf("FAIL %-7s threaded NT M=%d N=%d K=%d split by %s: %zu bad\n", var.name, M,
                    N, K, by_cols ? "columns" : "rows", bad);
      } else {
        ++*passed;
      }
    }
  }
  return failed;
}

int check(bool verbose) {
  const auto vars = variants_under_test();
  std::printf("variants:");
  for (const auto& v : vars) std::printf(" %s", v.name);
  std::printf("\n");
  std::mt19937 rng(20240601);
  std::vector<Case> cases;
  const float alphas[] = {1.0f, -1.0f, 0.5f, 0.0f, 1.7f};
  const float betas[] = {0.0f, 1.0f, -0.5f, 2.0f};
  auto pick_a = [&] { return alphas[rng() % 5]; };
  auto pick_b = [&] { return betas[rng() % 4]; };
  auto pad = [&] { return int(rng() % 3 == 0 ? 0 : rng() % 40); };

  // 1. Exhaustive tiny shapes, including zeros, for all four layouts.
  const int tiny[] = {0, 1, 2, 3, 5, 6, 7};
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (int M : tiny)
        for (int N : tiny)
          for (int K : tiny) cases.push_back({bool(ta), bool(tb), M, N, K, pad(), pad(), pad(), pick_a(), pick_b()});
  // 2. Random shapes around register-tile and vector-width edges, and K-block edges.
  const int ms[] = {1, 4, 5, 6, 7, 11, 12, 13, 17, 23, 191, 192, 193, 390};
  const int ns[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 48, 63, 64, 65, 79, 127, 129, 200};
  const int ks[] = {1, 2, 3, 15, 16, 17, 31, 64, 100, 255, 256, 257, 300, 520};
  for (int t = 0; t < 1500; ++t)
    cases.push_back({bool(rng() & 1), bool(rng() & 1), ms[rng() % 14], ns[rng() % 18],
                     ks[rng() % 14], pad(), pad(), pad(), pick_a(), pick_b()});
  // 3. Named shapes: every layout, alpha/beta combos that matter.
  struct Shape { int M, N, K; };
  const Shape named[] = {
      {1, 1, 1}, {5000, 3, 7}, {3, 5000, 7}, {300, 300, 1}, {1, 777, 513}, {777, 1, 513},
      {197, 197, 64}, {197, 64, 197}, {64, 3100, 9}, {13, 70, 1100}, {400, 130, 40}};
  for (const Shape& s : named)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        cases.push_back({bool(ta), bool(tb), s.M, s.N, s.K, pad(), pad(), pad(), 1.0f, 0.0f});
        cases.push_back({bool(ta), bool(tb), s.M, s.N, s.K, pad(), pad(), pad(), -0.75f, 1.0f});
        cases.push_back({bool(ta), bool(tb), s.M, s.N, s.K, pad(), pad(), pad(), 2.0f, -1.5f});
      }
  // 4. The engine's shapes with its real strides: q/k/v inside a [tokens, 3·192] tensor.
  cases.push_back({false, true, 197, 197, 64, 576 - 64, 576 - 64, 0, 0.125f, 0.0f});  // q·kᵀ
  cases.push_back({false, false, 197, 64, 197, 0, 576 - 64, 192 - 64, 1.0f, 0.0f});  // P·v
  cases.push_back({true, false, 197, 64, 197, 0, 192 - 64, 576 - 64, 1.0f, 1.0f});   // Pᵀ·dO
  cases.push_back({false, true, 1576, 576, 192, 0, 0, 0, 1.0f, 0.0f});   // qkv forward
  cases.push_back({false, false, 1576, 192, 768, 0, 0, 0, 1.0f, 0.0f});  // dX = dY·W
  cases.push_back({true, false, 768, 192, 1576, 0, 0, 0, 1.0f, 1.0f});   // dW += dYᵀ·X

  signal(SIGSEGV, on_fault);
  signal(SIGBUS, on_fault);
  for (const Case& cs : cases) g_failed += run_case(cs, vars, rng, &g_passed, verbose);
  g_failed += check_threads(vars, &g_passed);
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}

// ---------------------------------------------------------------------------------------
struct BenchShape {
  const char* what;
  bool ta, tb;
  int M, N, K;
  int lda, ldb, ldc;  // 0: tight
};

void bench(bool with_ref) {
  std::vector<std::pair<GemmVariant, const char*>> vars;
  if (with_ref) vars.push_back({GemmVariant::Ref, "ref"});
  if (spdfq::cpu::gemm_variant_supported(GemmVariant::Avx2)) vars.push_back({GemmVariant::Avx2, "avx2"});
  if (spdfq::cpu::gemm_variant_supported(GemmVariant::Avx512))
    vars.push_back({GemmVariant::Avx512, "avx512"});
  const BenchShape shapes[] = {
      {"768^3", false, false, 768, 768, 768, 0, 0, 0},
      {"768^3", false, true, 768, 768, 768, 0, 0, 0},
      {"768^3", true, false, 768, 768, 768, 0, 0, 0},
      {"768^3", true, true, 768, 768, 768, 0, 0, 0},
      // The brief's ViT triples, each in the three layouts the engine uses.
      {"vit K192 N576", false, true, 1576, 576, 192, 0, 0, 0},
      {"vit K192 N576", false, false, 1576, 576, 192, 0, 0, 0},
      {"vit K192 N576", true, false, 1576, 576, 192, 0, 0, 0},
      {"vit K192 N768", false, true, 1576, 768, 192, 0, 0, 0},
      {"vit K192 N768", false, false, 1576, 768, 192, 0, 0, 0},
      {"vit K192 N768", true, false, 1576, 768, 192, 0, 0, 0},
      {"vit K768 N192", false, true, 1576, 192, 768, 0, 0, 0},
      {"vit K768 N192", false, false, 1576, 192, 768, 0, 0, 0},
      {"vit K768 N192", true, false, 1576, 192, 768, 0, 0, 0},
      // What backward really runs: dX = dY·W (NN) and dW = dYᵀ·X (TN, K = tokens).
      {"dX qkv", false, false, 1576, 192, 576, 0, 0, 0},
      {"dX fc1", false, false, 1576, 192, 768, 0, 0, 0},
      {"dW qkv", true, false, 576, 192, 1576, 0, 0, 0},
      {"dW fc1", true, false, 768, 192, 1576, 0, 0, 0},
      {"dW fc2", true, false, 192, 768, 1576, 0, 0, 0},
      // Attention, one head, q/k/v inside the [197, 576] qkv tensor.
      {"attn q.kT", false, true, 197, 197, 64, 576, 576, 197},
      {"attn P.v", false, false, 197, 64, 197, 197, 576, 192},
      {"attn dP=dO.vT", false, true, 197, 197, 64, 192, 576, 197},
      {"attn dV=PT.dO", true, false, 197, 64, 197, 197, 192, 576},
      {"attn dQ=dS.k", false, false, 197, 64, 197, 197, 576, 576},
  };
  std::printf("%-16s %-2s %5s %5s %5s", "shape", "op", "M", "N", "K");
  for (auto& v : vars) std::printf(" %9s", v.second);
  std::printf("   (GFLOP/s, 1 thread, best of reps)\n");
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  for (const BenchShape& s : shapes) {
    GemmArgs g;
    g.transA = s.ta;
    g.transB = s.tb;
    g.M = s.M;
    g.N = s.N;
    g.K = s.K;
    g.lda = s.lda ? s.lda : (s.ta ? s.M : s.K);
    g.ldb = s.ldb ? s.ldb : (s.tb ? s.K : s.N);
    g.ldc = s.ldc ? s.ldc : s.N;
    std::vector<float> a(size_t(s.ta ? s.K : s.M) * g.lda), b(size_t(s.tb ? s.N : s.K) * g.ldb),
        c(size_t(s.M) * g.ldc);
    for (auto& x : a) x = uni(rng);
    for (auto& x : b) x = uni(rng);
    for (auto& x : c) x = uni(rng);
    g.A = a.data();
    g.B = b.data();
    g.C = c.data();
    g.beta = 0.0f;
    const double flops = 2.0 * s.M * s.N * s.K;
    std::printf("%-16s %c%c %5d %5d %5d", s.what, s.ta ? 'T' : 'N', s.tb ? 'T' : 'N', s.M, s.N, s.K);
    for (auto& v : vars) {
      double best = 1e30, total = 0.0;
      const int min_reps = v.first == GemmVariant::Ref ? 1 : 10;
      for (int r = 0; r < 1000 && (r < min_reps || total < 0.3); ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        spdfq::cpu::gemm(g, v.first);
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = dt < best ? dt : best;
        total += dt;
      }
      std::printf(" %9.1f", flops / best * 1e-9);
    }
    std::printf("\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool do_bench = false, with_ref = false, verbose = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--bench") do_bench = true;
    else if (a == "--ref") with_ref = true;
    else if (a == "-v") verbose = true;
    else {
      std::fprintf(stderr, "usage: %s [--bench [--ref]] [-v]\n", argv[0]);
      return 2;
    }
  }
  const auto& f = spdfq::cpu::cpu_features();
  std::printf("cpu: avx2_fma=%d avx512f=%d avx512_vnni=%d avx_vnni=%d\n", f.avx2_fma, f.avx512f,
              f.avx512_vnni, f.avx_vnni);
  if (do_bench) {
    bench(with_ref);
    return 0;
  }
  return check(verbose);
}
