// `--bench`: what the GPU does with this backend — GEMM rates (TF32 tensor cores, FP32,
// INT8 tensor cores) against the datasheet peaks of the GPUs this project targets, and
// the forward+backward step time of the DeiT-Tiny/Small/Base shapes (the synthesis inner
// loop: input gradient only) in TF32 and FP32. Timed with CUDA events after a warm-up;
// each figure is the median of the repeats.
#include <algorithm>
#include <cstring>

#include "check_util.h"
#include "cuda_vit.h"
#include "device.h"
#include "gemm.h"
#include "qgemm.h"

namespace spdfq::check {

namespace {

template <class F>
double median_ms(F&& fn, int repeats) {
  cudaEvent_t a, b;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  fn();  // warm-up
  CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<float> t;
  for (int i = 0; i < repeats; ++i) {
    CUDA_CHECK(cudaEventRecord(a));
    fn();
    CUDA_CHECK(cudaEventRecord(b));
    CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0.0f;
    CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
  }
  (void)cudaEventDestroy(a);
  (void)cudaEventDestroy(b);
  std::sort(t.begin(), t.end());
  return double(t[t.size() / 2]);
}

// Dense datasheet peaks (TFLOP/s or TOP/s) by device name; 0 when unknown.
struct Peaks {
  double tf32, fp32, int8;
};
Peaks peaks_for(const std::string& name) {
  if (name.find("H100") != std::string::npos || name.find("H200") != std::string::npos)
    return {494.7, 66.9, 1978.9};  // SXM
  if (name.find("A100") != std::string::npos) return {156.0, 19.5, 624.0};
  return {0.0, 0.0, 0.0};
}

void gemm_rates(const Peaks& pk) {
  std::printf("\nGEMM (NT, as Linear forward)          TFLOP/s   of peak\n");
  Rng rng(9);
  for (int n : {1024, 4096, 8192}) {
    const std::vector<float> A = randn(int64_t(n) * n, rng), B = randn(int64_t(n) * n, rng);
    Dev<float> dA(A), dB(B), dC(int64_t(n) * n);
    for (GemmMath m : {GemmMath::Tf32, GemmMath::Fp32}) {
      cuda::GemmArgs g;
      g.transB = true;
      g.M = g.N = g.K = n;
      g.A = dA.p();
      g.B = dB.p();
      g.C = dC.p();
      g.lda = g.ldb = g.ldc = n;
      const double ms = median_ms([&] { cuda::gemm(g, m, nullptr); }, 10);
      const double tf = 2.0 * n * double(n) * n / (ms * 1e-3) / 1e12;
      const double peak = m == GemmMath::Tf32 ? pk.tf32 : pk.fp32;
      std::printf("  %-5s %5d^3                        %8.1f   %s\n", cuda::gemm_math_name(m), n, tf,
                  peak > 0 ? (std::to_string(int(100 * tf / peak)) + "%").c_str() : "?");
    }
    std::vector<uint8_t> qa(size_t(n) * size_t(n));
    for (auto& v : qa) v = uint8_t(rng.next());
    Dev<uint8_t> qA(qa), qB(qa);
    Dev<int32_t> qC(int64_t(n) * n);
    cuda::QGemmArgs q;
    q.M = q.N = q.K = n;
    q.A = qA.p();
    q.lda = n;
    q.B = qB.p();
    q.ldb = n;
    q.C32 = qC.p();
    q.ldc = n;
    const double ms = median_ms([&] { cuda::qgemm(q, nullptr); }, 10);
    const double tops = 2.0 * n * double(n) * n / (ms * 1e-3) / 1e12;
    std::printf("  int8  %5d^3                        %8.1f   %s (TOP/s)\n", n, tops,
                pk.int8 > 0 ? (std::to_string(int(100 * tops / pk.int8)) + "%").c_str() : "?");
  }
}

void step_times(int batch) {
  std::printf("\nViT step (forward + input gradient), batch %d     ms/step   img/s\n", batch);
  struct Shape {
    const char* name;
    int dim, heads;
  };
  for (const Shape& sh : {Shape{"DeiT-Tiny", 192, 3}, Shape{"DeiT-Small", 384, 6}, Shape{"DeiT-Base", 768, 12}}) {
    VitConfig c;
    c.dim = sh.dim;
    c.heads = sh.heads;
    c.mlp_dim = 4 * sh.dim;
    c.depth = 12;
    c.num_classes = 1000;
    Rng rng(3);
    cuda::CudaVit m(c, 0);
    const std::vector<float> p = randn(m.param_count(), rng, 0.02f);
    std::copy(p.begin(), p.end(), m.params());
    Dev<float> img(randn(int64_t(batch) * c.image_len(), rng)), dl(randn(int64_t(batch) * 1000, rng, 1e-3f)),
        dimg(int64_t(batch) * c.image_len());
    for (GemmMath math : {GemmMath::Tf32, GemmMath::Fp32}) {
      m.set_gemm_math(math);
      const double ms = median_ms(
          [&] {
            m.forward_device(img.p(), batch);
            m.backward_device(dl.p(), cuda::TapGrads{}, dimg.p(), false);
          },
          5);
      std::printf("  %-10s %-4s                                 %8.2f  %6.0f\n", sh.name, cuda::gemm_math_name(math),
                  ms, batch / (ms * 1e-3));
    }
  }
}

}  // namespace

void run_bench(int batch) {
  const std::string dev = cuda::device_description(0);
  std::printf("bench on cuda:0: %s\n", dev.c_str());
  const Peaks pk = peaks_for(dev);
  gemm_rates(pk);
  step_times(batch);
}

}  // namespace spdfq::check
