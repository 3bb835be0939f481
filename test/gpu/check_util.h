// Shared pieces of the CUDA op checker (test/gpu/check_*.cu): random data, device
// arrays, the relative error every check reports, the pass/fail report, and the model
// specs (the engine fixtures' configs, passed on the command line by scripts/test-gpu.js).
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "fast_math_cuda.h"  // first: see there
#include "cuda_check.h"
#include "gemm_math.h"
#include "../../native/core/vit_config.h"

namespace spdfq::check {

using cuda::GemmMath;

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  float uniform() { return float((next() >> 40) * (1.0 / 16777216.0)); }  // [0, 1)
  float normal() {
    const float u = uniform() + 1e-7f, v = uniform();
    return std::sqrt(-2.0f * std::log(u)) * std::cos(6.28318530718f * v);
  }
};

inline std::vector<float> randn(int64_t n, Rng& r, float scale = 1.0f) {
  std::vector<float> v(size_t(n > 0 ? n : 0));
  for (auto& x : v) x = r.normal() * scale;
  return v;
}

// A device array owned by the checker (plain cudaMalloc; CUDA_CHECK throws on failure).
template <class T>
class Dev {
 public:
  explicit Dev(int64_t n) : n_(n) { CUDA_CHECK(cudaMalloc(&p_, size_t(n > 0 ? n : 1) * sizeof(T))); }
  explicit Dev(const std::vector<T>& h) : Dev(int64_t(h.size())) { put(h); }
  ~Dev() { (void)cudaFree(p_); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  T* p() const { return p_; }
  int64_t n() const { return n_; }
  // Synchronizes after each transfer: CudaVit works on its own non-blocking stream, which
  // does not wait for the legacy default stream these helpers use.
  void put(const std::vector<T>& h) {
    CUDA_CHECK(cudaMemcpy(p_, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaDeviceSynchronize());
  }
  std::vector<T> get() const {
    std::vector<T> h(static_cast<size_t>(n_));
    CUDA_CHECK(cudaDeviceSynchronize());
    CUDA_CHECK(cudaMemcpy(h.data(), p_, h.size() * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
  // Poison (NaN bytes) so that unwritten outputs fail their check.
  void poison() {
    CUDA_CHECK(cudaMemset(p_, 0xFF, size_t(n_) * sizeof(T)));
    CUDA_CHECK(cudaDeviceSynchronize());
  }

 private:
  T* p_ = nullptr;
  int64_t n_ = 0;
};

// max |a − b| / max |b| (the engine tests' measure); NaN or a length mismatch → +inf.
inline double rel_error(const float* a, const float* b, int64_t n) {
  double diff = 0.0, scale = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = std::fabs(double(a[i]) - double(b[i]));
    if (!(d <= diff)) diff = std::isnan(d) ? INFINITY : d;
    scale = std::fmax(scale, std::fabs(double(b[i])));
  }
  return scale == 0.0 ? diff : diff / scale;
}
inline double rel_error(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() ? rel_error(a.data(), b.data(), int64_t(a.size())) : INFINITY;
}

struct Report {
  int passed = 0, failed = 0;
  std::string prefix;
  void check(const std::string& name, double err, double tol) {
    const bool ok = err <= tol;
    ok ? ++passed : ++failed;
    std::printf("  %s  %-58s rel.err %.3e  (tol %.0e)\n", ok ? "pass" : "FAIL", (prefix + name).c_str(), err, tol);
  }
  void expect(const std::string& name, bool ok, const std::string& detail = "") {
    ok ? ++passed : ++failed;
    std::printf("  %s  %-58s %s\n", ok ? "pass" : "FAIL", (prefix + name).c_str(), detail.c_str());
  }
};

// A model shape to check: a fixture's config and batch, or a built-in one.
struct Spec {
  std::string name;
  VitConfig c;
  int batch = 2;
};

// "name=deit_cls,imageHeight=32,...,batch=2" (the fixture JSON's field names) → Spec.
// Unknown keys or bad values throw spdfq::Error("E_CONFIG").
Spec parse_spec(const std::string& text);
// Built-in shapes: small odd ones, and DeiT-Tiny at 224² with fewer blocks.
std::vector<Spec> builtin_specs();

// Tolerances (relative to each tensor's max |value|; see docs/cuda.md):
//   FP32 GEMMs: the CPU engine's bar against PyTorch float64.
//   TF32 GEMMs: operands rounded to 10 explicit mantissa bits (unit roundoff 2⁻¹¹ ≈ 4.9e-4)
//   with FP32 accumulation; one GEMM lands near 3e-4, errors add up over the blocks and the
//   backward goes through twice as many products as the forward.
struct Tol {
  double gemm, fwd, bwd;
};
inline Tol tolerances(GemmMath m) {
  return m == GemmMath::Fp32 ? Tol{1e-5, 1e-4, 1e-4} : Tol{2e-3, 5e-3, 1e-2};
}

int run_op_checks(const Spec& s, Report& r);
int run_model_checks(const Spec& s, Report& r);
int run_error_checks(Report& r);
// The Swin forward and backward on CUDA against CpuSwin (check_swin.cu).
int run_swin_checks(Report& r);
void run_bench(int batch);

}  // namespace spdfq::check
