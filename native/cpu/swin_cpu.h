// The Swin Transformer on the CPU: owns the parameters, the index tables of the window
// ops, the activation arena, the backward's scratch and weight gradients, and a thread
// pool; runs core/swin_passes.h's forward and backward on the CPU op table
// (swin_cpu_ops.h). One model runs one pass at a time (the binding serializes calls per
// model).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../core/act_sites.h"
#include "../core/swin_config.h"
#include "../core/swin_params.h"
#include "../core/activations.h"  // TapGrads
#include "../core/vit_config.h"
#include "exec.h"
#include "vit_cpu.h"  // FloatBuffer, alloc_floats

namespace spdfq::cpu {

struct SwinOps;

class CpuSwin {
 public:
  CpuSwin(const SwinConfig& config, int threads);

  const SwinConfig& config() const { return config_; }
  int64_t param_count() const { return param_count_; }
  float* params() { return params_.get(); }

  int threads() const { return pool_->threads(); }
  void set_threads(int threads);
  void set_reference(bool reference) { reference_ = reference; }
  void set_activation_budget(int64_t bytes) { activation_budget_ = bytes; }
  static int64_t activation_bytes(const SwinConfig& c, int batch, bool quant_probs = false);

  // Forward on `batch` NCHW images; keeps every intermediate (see SwinActs). `cancel`
  // (optional) is polled between blocks: when set, throws E_CANCELLED.
  void forward(const float* images, int batch, const std::atomic<bool>* cancel = nullptr);

  int batch() const { return batch_; }
  const float* logits() const { return acts_.logits; }
  // Block l's (stage-major) attention probabilities [batch·nW, H, N, N] and attention
  // output before proj [batch·nW·N, D] (windows in the order of the index tables).
  const float* attention(int block) const { return acts_.blocks[size_t(block)].att; }
  const float* attention_values(int block) const { return acts_.blocks[size_t(block)].av; }
  // The window index tables (src: window slot → grid token or −1 for padding).
  const SwinIndexView& index() const { return index_; }

  // Backward of the last forward from dlogits [batch, K]: dimages [batch, C, H, W] written
  // (nullptr: not needed); with weight_grads, every weight's gradient in weight_grads()
  // (same layout as params()). taps.attn[l] is block l's injected gradient at its attention
  // probabilities [batch·nW, H, N, N], taps.av[l] at its attention output before proj
  // [batch·nW·N, D] (core::SwinBlockTaps), or nullptr; an empty vector means none at all.
  // Throws E_STATE before a forward, E_TENSOR for a tap list of the wrong length,
  // E_CANCELLED when `cancel` is set between blocks.
  void backward(const float* dlogits, const TapGrads& taps, float* dimages, bool weight_grads,
                const std::atomic<bool>* cancel = nullptr);
  const float* weight_grads() const { return grads_.get(); }

  // ---- Quantization (docs/swin.md, "Stage: quantization"; CpuVit's hooks) ---------------
  // Fake-quantized weights: a second parameter arena (same layout) the passes use instead
  // of params() while weight quantization is on (weight gradients are then taken at the
  // quantized weights: straight-through).
  float* quant_params();
  void set_weight_quant(bool on) { weight_quant_ = on && qparams_ != nullptr; }
  bool weight_quant() const { return weight_quant_; }
  // Activation quantizers (owned by the caller, outliving their use; nullptr: none): one
  // per block site of every block and one per merge (ActQuantState::merges).
  void set_act_quant(const quant::ActQuantState* state);
  // Called with every site's values before quantization (calibration); empty: none.
  void set_observer(quant::ActObserver observer) { observer_ = std::move(observer); }

  // An intermediate of the last forward by its fixture name — "patch_embed", "block.<s>.<i>",
  // "merge.<s>", "pooled", "logits" — with its channels-last shape ([B, H, W, C], [B, C]),
  // or a block's attention probabilities "attention.<s>.<i>" [B, nW, H, N, N] (the tap), or its
  // attention output before proj "attention_values.<s>.<i>" [B, nW, N, D] (the A·V tap);
  // throws E_CONFIG for an unknown name, E_STATE before a forward.
  struct Tensor {
    const float* data;
    std::vector<int64_t> shape;
  };
  Tensor output(const std::string& name) const;

 private:
  friend struct SwinOps;  // the op table the shared passes run on (swin_cpu_ops.h)
  Exec exec() const;
  void ensure_arena(int batch);
  // Reports a site to the observer, then fake-quantizes it in place when a quantizer is set.
  void site(quant::Site s, int block, float* data, int64_t rows, int64_t cols, int64_t ld);
  const quant::TensorQuant* probs_quant(int block) const;
  // The weights the passes use: the fake-quantized copy while weight quantization is on.
  const SwinParams& wq() const { return weight_quant_ ? pq_ : p_; }

  SwinConfig config_;
  VitConfig patch_geom_;  // image size, channels and patch for the shared patchify
  int64_t param_count_;
  FloatBuffer params_;
  SwinParams p_;
  FloatBuffer qparams_;
  SwinParams pq_{};
  bool weight_quant_ = false;
  const quant::ActQuantState* act_quant_ = nullptr;
  quant::ActObserver observer_;
  SwinIndices indices_;
  SwinIndexView index_;
  std::unique_ptr<ThreadPool> pool_;
  bool reference_ = false;
  int64_t activation_budget_ = int64_t(8) << 30;

  FloatBuffer arena_;
  int arena_batch_ = 0;
  bool arena_quant_probs_ = false;
  FloatBuffer grad_arena_;  // SwinGrads, planned for grad_batch_ images and the pool's threads
  int grad_batch_ = 0, grad_threads_ = 0;
  SwinGrads g_;
  FloatBuffer grads_;  // weight gradients, param_count_ floats (allocated on first use)
  int batch_ = 0;
  SwinActs acts_;
};

}  // namespace spdfq::cpu
