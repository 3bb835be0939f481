// The engine behind one JavaScript VitModel: a CpuVit, or a CudaVit when the addon was
// built with the CUDA backend (SPDFQ_WITH_CUDA) and the model was created on 'cuda:N'.
// Operations both engines share are written once, as generic lambdas passed to visit();
// the few places where their interfaces differ (threads, activation bytes, the tap
// gradient type) are overloads below. What only the CPU engine can do (integer execution,
// synthesis, block reconstruction) goes through cpu(), which refuses with E_CONFIG naming
// the operation when the model is on a GPU. Without SPDFQ_WITH_CUDA the variant has one
// alternative and no CUDA header is included, so node-gyp's CPU build is unchanged.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <variant>

#include "../core/vit_config.h"
#include "../cpu/vit_cpu.h"
#ifdef SPDFQ_WITH_CUDA
#include "../cuda/cuda_vit.h"
#endif

namespace spdfq::binding {

// Where a model runs.
struct Device {
  bool cuda = false;
  int index = 0;  // CUDA device index; 0 for the CPU
  std::string name() const { return cuda ? "cuda:" + std::to_string(index) : "cpu"; }
};

// "cpu", "cuda" or "cuda:N" (lib/vit.ts validates first; this is the second line).
// Throws spdfq::Error E_CONFIG, naming what was expected and received, and saying so when
// this build has no CUDA backend.
Device parse_device(const std::string& text);

class VitEngine {
 public:
  // Throws spdfq::Error: E_CONFIG for a bad config or an unusable CUDA device (with the
  // reason), E_MEMORY / E_CUDA from the CUDA engine's first allocations.
  VitEngine(const VitConfig& config, int threads, const Device& device);

  const Device& device() const { return device_; }
  bool on_cuda() const { return device_.cuda; }
  const VitConfig& config() const { return config_; }

  // Calls f(CpuVit&) or f(CudaVit&); every branch of f must return the same type.
  template <class F>
  decltype(auto) visit(F&& f) {
    return std::visit([&](auto& m) -> decltype(auto) { return f(*m); }, model_);
  }

  // The CPU engine for an operation only it runs; E_CONFIG naming `what` on a GPU model.
  cpu::CpuVit& cpu(const char* what);

 private:
  Device device_;
  VitConfig config_;
#ifdef SPDFQ_WITH_CUDA
  std::variant<std::unique_ptr<cpu::CpuVit>, std::unique_ptr<cuda::CudaVit>> model_;
#else
  std::variant<std::unique_ptr<cpu::CpuVit>> model_;
#endif
};

// ---- Where the two engines' interfaces differ -----------------------------------------

inline void set_threads(cpu::CpuVit& m, int threads) { m.set_threads(threads); }
// Host memory of the CPU arena for `batch` (as before the CUDA backend existed).
inline int64_t activation_bytes(cpu::CpuVit& m, int batch) {
  return cpu::CpuVit::activation_bytes(m.config(), batch, m.threads());
}
// `taps` is the binding's carrier for tap gradients (host pointers, one per block).
inline void run_backward(cpu::CpuVit& m, const float* dlogits, const TapGrads& taps, float* dimages,
                         bool weight_grads, const std::atomic<bool>* cancel) {
  m.backward(dlogits, taps, dimages, weight_grads, cancel);
}

#ifdef SPDFQ_WITH_CUDA
// A GPU pass uses no host worker threads: accepted and ignored, so code that tunes
// threads works on either device.
inline void set_threads(cuda::CudaVit&, int) {}
// Device memory of the CUDA arena for `batch`.
inline int64_t activation_bytes(cuda::CudaVit& m, int batch) { return cuda::CudaVit::activation_bytes(m.config(), batch); }
inline void run_backward(cuda::CudaVit& m, const float* dlogits, const TapGrads& taps, float* dimages,
                         bool weight_grads, const std::atomic<bool>* cancel) {
  m.backward(dlogits, taps, dimages, weight_grads, cancel);
}
#endif

}  // namespace spdfq::binding
