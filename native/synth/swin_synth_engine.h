// The synthesis loop's engine interface (synth_engine.h) on a cpu::CpuSwin (docs/swin.md,
// "Stage: synthesis"). A Swin block's taps are per window: attention probabilities
// [B·nW, H, N, N] and the attention output before proj [B·nW·N, D], with the stage's window
// index table (src: window row → grid token, −1 for padding; the shifted table for shifted
// blocks) telling the loop which image token each row holds.
//
// There is no CUDA Swin adapter: the CUDA Swin forward and backward exist as functions over
// a device model (cuda::swin_forward / swin_backward, native/cuda/cuda_swin_ops.h), but no
// class owns its device memory and uploads weights (the `CudaSwin` of docs/swin.md, "Stages
// that remain", item 2), and the CUDA backward takes no A·V tap. A CudaSwinSynthEngine
// needs both; until then a Swin synthesizes on the CPU.
#pragma once

#include <cstdint>
#include <string>

#include "../cpu/swin_cpu.h"
#include "synth_engine.h"

namespace spdfq::synth {

class CpuSwinSynthEngine final : public CpuModelEngine<cpu::CpuSwin> {
 public:
  using CpuModelEngine::CpuModelEngine;

  SynthModel model() const override {
    const SwinConfig& c = m_.config();
    SynthModel s;
    s.channels = c.channels;
    s.image_h = c.image_h;
    s.image_w = c.image_w;
    s.num_classes = c.num_classes;
    s.blocks = c.blocks();
    s.class_token = false;
    return s;
  }
  TapLayout tap_layout(int block) const override {
    const SwinConfig& c = m_.config();
    int s = 0, i = block;
    while (i >= c.depths[size_t(s)]) i -= c.depths[size_t(s++)];
    TapLayout t;
    t.windows = c.windows(s);
    t.heads = c.heads[size_t(s)];
    t.tokens = c.window_tokens();
    t.window_h = c.window_h;
    t.window_w = c.window_w;
    t.prefix = 0;
    t.dim = c.dim(s);
    t.grid_h = c.grid_h(s);
    t.grid_w = c.grid_w(s);
    // A stage-s token spans patch·2^s pixels (exactly when every merge saw an even grid;
    // an odd merge pads, and the priors then move by slightly more than their content).
    t.token_pixels = c.patch << s;
    t.group = s;
    t.slots = m_.index().stages[size_t(s)].src[c.block_shifted(s, i) ? 1 : 0];
    return t;
  }
  // The host budget bounds the loop's buffers and the forward's activations
  // (CpuSwin::activation_bytes); the backward's scratch (SwinGrads, one block's worth,
  // allocated on the first backward) is not counted, as in SwinModel.activationBytes.
  int64_t plan_bytes(int n, int64_t host_bytes) const override {
    return host_bytes + cpu::CpuSwin::activation_bytes(m_.config(), n);
  }
};

}  // namespace spdfq::synth
