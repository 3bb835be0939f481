// What the synthesis loop (synth_loop.h) needs from a ViT engine: forward a batch, read the
// logits and the two taps, backward with tap gradients to the pixels, and say how much
// memory a pass costs. CpuSynthEngine (below) adapts cpu::CpuVit; cuda::CudaSynthEngine
// (native/synth/cuda_synth_engine.h) adapts cuda::CudaVit.
//
// Why a small interface and not a template over the engine type: the loop makes a handful
// of engine calls per pass (forward, logits, one tap per aligned block, backward), each
// costing a whole pass, so a virtual call is free next to them. With the interface the loop
// stays one translation unit in the core library, compiled once by g++ without any CUDA
// header, so the CPU-only builds (CMake with SPDFQ_CUDA=OFF, node-gyp) are unchanged and the
// CPU path makes exactly the calls it made before, in the same order: its results are
// bit-identical. A template would move the 450-line loop into a header, compile it twice,
// and need a translation unit that sees CudaVit and SPDFQ_WITH_CUDA (only the binding does).
//
// Every pointer here is a HOST pointer; the losses are computed on the host. A pointer an
// accessor returns is valid until the same accessor is called again or the next pass (the
// CUDA engine downloads into one staging buffer per accessor; the CPU engine's pointers
// live longer, which the loop does not rely on).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "../core/vit_config.h"
#include "../cpu/vit_cpu.h"

namespace spdfq::synth {

class SynthEngine {
 public:
  virtual ~SynthEngine() = default;

  virtual const VitConfig& config() const = 0;
  // Host threads for the work the loop does on the host (jitter, MSR crops, PSAQ-ViT's
  // entropy). Results do not depend on it: that work is split per image.
  virtual int host_threads() const = 0;
  // Bytes that a plan of `n` samples per pass counts against memoryBudgetBytes, given the
  // loop's own host working set for that plan (`host_bytes`: images, gradient, Adam
  // moments, inputs and crops, tap gradients). Monotone in n.
  virtual int64_t plan_bytes(int n, int64_t host_bytes) const = 0;
  // What plan_bytes counts, for the over-budget message (starts with a space).
  virtual std::string plan_bytes_note(int images) const = 0;

  // Forward `batch` images [batch, C, H, W]; polls `cancel` (E_CANCELLED).
  virtual void forward(const float* images, int batch, const std::atomic<bool>* cancel) = 0;
  virtual int batch() const = 0;
  virtual const float* logits() = 0;                 // [batch, K]
  virtual const float* attention(int block) = 0;     // [batch, H, N, N]
  virtual const float* attention_values(int block) = 0;  // [batch, N, D]
  // Backward of the last forward from dlogits [batch, K] and the tap gradients (host
  // pointers, one per block or empty); overwrites dimages [batch, C, H, W]. The weights are
  // frozen: no weight gradients.
  virtual void backward(const float* dlogits, const TapGrads& taps, float* dimages,
                        const std::atomic<bool>* cancel) = 0;
};

// The CPU engine: the budget bounds host memory, the loop's buffers and the activations.
class CpuSynthEngine final : public SynthEngine {
 public:
  explicit CpuSynthEngine(cpu::CpuVit& model) : m_(model) {}

  const VitConfig& config() const override { return m_.config(); }
  int host_threads() const override { return m_.threads(); }
  int64_t plan_bytes(int n, int64_t host_bytes) const override {
    return host_bytes + cpu::CpuVit::activation_bytes(m_.config(), n, m_.threads());
  }
  std::string plan_bytes_note(int images) const override {
    return " (" + std::to_string(images) + " images and their optimizer state included)";
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
  cpu::CpuVit& m_;
};

}  // namespace spdfq::synth
