// The device option and the choice of engine for a VitModel (see vit_engine.h).
#include "vit_engine.h"

#include <climits>

#include "../core/errors.h"

namespace spdfq::binding {

namespace {

// Why CUDA is not available in this build, and how to get it (docs/cuda.md).
constexpr const char* kNoCudaBackend =
    "this build of spdfq-native has no CUDA backend (it was compiled without the CUDA toolkit); rebuild on a "
    "machine with nvcc 12 or newer: npx cmake-js compile --CDSPDFQ_CUDA=ON (docs/cuda.md)";

}  // namespace

Device parse_device(const std::string& text) {
  const std::string expected = "device: expected 'cpu', 'cuda' or 'cuda:N' (N a device index), received '" + text + "'";
  Device d;
  if (text == "cpu") return d;
  if (text.rfind("cuda", 0) != 0) fail("E_CONFIG", expected);
  d.cuda = true;
  if (text.size() > 4) {
    if (text[4] != ':' || text.size() == 5 || text.size() > 15) fail("E_CONFIG", expected);
    long long v = 0;
    for (size_t i = 5; i < text.size(); ++i) {
      if (text[i] < '0' || text[i] > '9') fail("E_CONFIG", expected);
      v = v * 10 + (text[i] - '0');
    }
    if (v > INT_MAX) fail("E_CONFIG", expected);
    d.index = int(v);
  }
#ifndef SPDFQ_WITH_CUDA
  fail("E_CONFIG", "device '" + text + "': " + kNoCudaBackend);
#endif
  return d;
}

VitEngine::VitEngine(const VitConfig& config, int threads, const Device& device) : device_(device), config_(config) {
  if (!device.cuda) {
    model_ = std::make_unique<cpu::CpuVit>(config, threads);
    return;
  }
#ifdef SPDFQ_WITH_CUDA
  model_ = std::make_unique<cuda::CudaVit>(config, device.index);
#else
  fail("E_CONFIG", "device '" + device.name() + "': " + kNoCudaBackend);
#endif
}

cpu::CpuVit& VitEngine::cpu(const char* what) {
  if (auto* m = std::get_if<std::unique_ptr<cpu::CpuVit>>(&model_)) return **m;
  fail("E_CONFIG", std::string(what) + " runs on the CPU only, and this model is on " + device_.name() +
                       "; create the model with { device: 'cpu' } for this step (docs/cuda.md lists what runs on CUDA)");
}

}  // namespace spdfq::binding
