// What the synthesis loop (synth_loop.h) needs from a model engine: what the model is
// (SynthModel), where each block's two taps lie (TapLayout), forward a batch, read the logits
// and the taps, backward with tap gradients to the pixels, and say how much memory a pass
// costs. CpuSynthEngine (below) adapts cpu::CpuVit; cuda::CudaSynthEngine
// (native/synth/cuda_synth_engine.h) adapts cuda::CudaVit; CpuSwinSynthEngine
// (native/synth/swin_synth_engine.h) adapts cpu::CpuSwin, whose taps are per window.
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

// The model as the loop sees it, whatever its architecture.
struct SynthModel {
  int channels = 0, image_h = 0, image_w = 0, num_classes = 0;
  int blocks = 0;            // taps are numbered 0 … blocks−1 (Swin: stage-major)
  bool class_token = false;  // APA's 'class' query needs one
  int64_t image_len() const { return int64_t(channels) * image_h * image_w; }
};

// Where block l's taps lie. Attention probabilities [B, windows, heads, tokens, tokens];
// A·V, heads concatenated, [B, windows·tokens, dim]. A ViT is one window of all its tokens,
// the first `prefix` of them class/distillation tokens; a Swin block has its stage's
// windows, prefix 0, and `slots` says which grid token each window row holds.
struct TapLayout {
  int windows = 1, heads = 0, tokens = 0, prefix = 0, dim = 0;
  // The token grid APA's priors live on (ViT: the patch grid; Swin: the stage's grid), one
  // token's side in pixels (the jitter moves the priors by roll / token_pixels), and the
  // prior group (blocks of one group share a grid and head count: ViT 0, Swin the stage).
  int grid_h = 0, grid_w = 0, token_pixels = 0, group = 0;
  int window_h = 0, window_w = 0;  // windowed taps: the window (tokens = window_h · window_w)
  // [windows·tokens]: the grid token a window row holds, −1 for a padding row (Swin's
  // core::SwinIndexView src tables, with the shift of shifted blocks); nullptr: row
  // prefix + j holds grid token j (ViT).
  const int32_t* slots = nullptr;
  int64_t attention_floats(int batch) const { return int64_t(batch) * windows * heads * tokens * tokens; }
  int64_t av_floats(int batch) const { return int64_t(batch) * windows * tokens * dim; }
};

// The ViT's layout: every block alike, one window.
inline TapLayout vit_tap_layout(const VitConfig& c) {
  TapLayout t;
  t.heads = c.heads;
  t.tokens = c.tokens();
  t.prefix = c.prefix();
  t.dim = c.dim;
  t.grid_h = c.grid_h();
  t.grid_w = c.grid_w();
  t.token_pixels = c.patch;
  return t;
}

inline SynthModel vit_synth_model(const VitConfig& c) {
  SynthModel m;
  m.channels = c.channels;
  m.image_h = c.image_h;
  m.image_w = c.image_w;
  m.num_classes = c.num_classes;
  m.blocks = c.depth;
  m.class_token = c.class_token;
  return m;
}

class SynthEngine {
 public:
  virtual ~SynthEngine() = default;

  virtual SynthModel model() const = 0;
  virtual TapLayout tap_layout(int block) const = 0;
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
  virtual const float* attention(int block) = 0;         // TapLayout: [batch, windows, H, N, N]
  virtual const float* attention_values(int block) = 0;  // TapLayout: [batch, windows·N, D]
  // Backward of the last forward from dlogits [batch, K] and the tap gradients (host
  // pointers, one per block or empty); overwrites dimages [batch, C, H, W]. The weights are
  // frozen: no weight gradients.
  virtual void backward(const float* dlogits, const TapGrads& taps, float* dimages,
                        const std::atomic<bool>* cancel) = 0;
};

// What every CPU model engine (cpu::CpuVit, cpu::CpuSwin) forwards to the model as it is:
// the passes, their outputs and the host threads. The adapters add what differs: the model
// description, the tap layouts and the memory a plan needs.
template <class Model>
class CpuModelEngine : public SynthEngine {
 public:
  explicit CpuModelEngine(Model& model) : m_(model) {}

  int host_threads() const override { return m_.threads(); }
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

 protected:
  Model& m_;
};

// The CPU ViT engine: the budget bounds host memory, the loop's buffers and the activations.
class CpuSynthEngine final : public CpuModelEngine<cpu::CpuVit> {
 public:
  using CpuModelEngine::CpuModelEngine;

  SynthModel model() const override { return vit_synth_model(m_.config()); }
  TapLayout tap_layout(int) const override { return vit_tap_layout(m_.config()); }
  int64_t plan_bytes(int n, int64_t host_bytes) const override {
    return host_bytes + cpu::CpuVit::activation_bytes(m_.config(), n, m_.threads());
  }
};

}  // namespace spdfq::synth
