// The synthesis loop's engine interface (native/synth/synth_engine.h) on a CudaVit: the
// passes run on the GPU, the losses on the host (docs/cuda.md, "Synthesis on CUDA").
// Per pass, the jittered images (or MSR crops) are uploaded, the logits and every tap a loss
// reads are downloaded (CudaVit's host accessors), and dlogits and the tap gradients are
// uploaded for the backward (CudaVit's host TapGrads path, one block at a time), which
// downloads the input gradient. Plain C++ (no CUDA types), so the binding (g++) includes it.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "../cuda/cuda_vit.h"
#include "synth_engine.h"

namespace spdfq::synth {

class CudaSynthEngine final : public SynthEngine {
 public:
  explicit CudaSynthEngine(cuda::CudaVit& model) : m_(model) {}

  SynthModel model() const override { return vit_synth_model(m_.config()); }
  TapLayout tap_layout(int) const override { return vit_tap_layout(m_.config()); }
  // A GPU pass uses no host threads, so the host's share of synthesis (jitter, crops,
  // PSAQ-ViT's entropy, all split per image, so the results do not depend on the count)
  // gets every hardware thread.
  int host_threads() const override { return int(std::max(1u, std::thread::hardware_concurrency())); }
  // On CUDA memoryBudgetBytes bounds device memory: the activation arena of one pass, which
  // includes CudaVit's staging for the host transfers. The loop's own buffers (images,
  // Adam moments, crops, tap gradients: `host_bytes`) are in host memory and not counted.
  int64_t plan_bytes(int n, int64_t /*host_bytes*/) const override {
    return cuda::CudaVit::activation_bytes(m_.config(), n);
  }
  std::string plan_bytes_note(int /*images*/) const override {
    return " of device memory on cuda:" + std::to_string(m_.device()) +
           " (the model's activations; images and optimizer state stay in host memory)";
  }
  void forward(const float* images, int batch, const std::atomic<bool>* cancel) override {
    m_.forward(images, batch, cancel);
  }
  int batch() const override { return m_.batch(); }
  const float* logits() override { return m_.logits(); }
  const float* attention(int block) override { return m_.attention(block); }
  const float* attention_values(int block) override { return m_.attention_values(block); }
  void backward(const float* dlogits, const TapGrads& taps, float* dimages,
                const std::atomic<bool>* cancel) override {
    m_.backward(dlogits, taps, dimages, false, cancel);
  }

 private:
  cuda::CudaVit& m_;
};

}  // namespace spdfq::synth
