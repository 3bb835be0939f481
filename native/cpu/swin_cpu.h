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
#include "recon_hooks.h"
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

  // QDrop and LSQ during block reconstruction, as CpuVit's (recon_hooks.h; LSQ's sites are
  // the stage-major block's qkv, proj, fc1 and fc2 inputs).
  void set_qdrop(float p, uint64_t seed) { hooks_.set_qdrop(p, seed); }
  void set_lsq(int block) { hooks_.set_lsq(block); }
  const std::array<double, 4>& lsq_grads() const { return hooks_.lsq_grads(); }

  // ---- Stage-level passes (block reconstruction; swin_cpu_stages.cc) --------------------
  // Each runs one piece of the model alone on its input, after prepare(batch) plans the
  // arena as forward does; each backward follows its forward on the same input, takes
  // d loss/d (the piece's output), overwrites the piece's weight gradients in grads()
  // (the others are left as they were) and writes d loss/d input where asked.
  void prepare(int batch);
  float* grads();  // weight gradients, laid out like params() (allocated on first use)
  // Block l (stage-major) on x [batch·T, D] of its stage; its output is block_output(l).
  void forward_block(int l, const float* x);
  void backward_block(int l, const float* x, const float* dout, float* dx);
  const float* block_output(int l) const { return acts_.blocks[size_t(l)].out; }
  // The patch merging after stage s on x [batch·T_s, C]; output merge_output(s) [batch·T_{s+1}, 2C].
  void forward_merge(int s, const float* x);
  void backward_merge(int s, const float* dout, float* dx);
  const float* merge_output(int s) const { return acts_.merges[size_t(s)].out; }
  // The patch embedding on images (output embeddings() [batch·T0, D0]) and its backward
  // (dimages: nullptr when not needed).
  void forward_embed(const float* images);
  void backward_embed(const float* dx0, float* dimages);
  const float* embeddings() const { return acts_.x0; }
  // Final norm, pooling and head on the last stage's tokens (output logits()).
  void forward_head(const float* x);
  void backward_head(const float* x, const float* dlogits);

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
  // Plans the backward's scratch for batch_ images and the pool's threads.
  void ensure_grad_arena();
  // grads() with `first`'s gradient … `last`'s (inclusive) zeroed: one piece's contiguous tensors.
  SwinParams piece_grads(const float* first, const float* last_end);
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
  ReconSiteHooks hooks_;
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
