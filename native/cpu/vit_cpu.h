// The ViT on the CPU: owns the parameters, their gradients, the activation arena and a
// thread pool; runs forward and backward by calling the layer ops in ops.h.
// One model runs one pass at a time (the binding serializes calls per model).
#pragma once

#include <array>
#include <atomic>
#include <string>
#include <cstdint>
#include <memory>
#include <vector>

#include "../core/act_sites.h"
#include "../core/vit_config.h"
#include "../core/vit_params.h"
#include "../core/vit_passes.h"
#include "exec.h"
#include "qlinear.h"
#include "recon_hooks.h"
#include "vit_activations.h"

namespace spdfq::cpu {

struct AlignedFree {
  void operator()(float* p) const;
};
using FloatBuffer = std::unique_ptr<float[], AlignedFree>;
// 64-byte aligned, uninitialized; throws spdfq::Error("E_MEMORY") when the system refuses.
FloatBuffer alloc_floats(int64_t n, const char* what);

struct Ops;

class CpuVit {
 public:
  CpuVit(const VitConfig& config, int threads);

  const VitConfig& config() const { return config_; }
  int64_t param_count() const { return param_count_; }
  float* params() { return params_.get(); }
  // Weight gradients (allocated on first use), laid out like params().
  float* grads();

  // ---- Quantization hooks (issue #4) ---------------------------------------------------
  // Fake-quantized weights: a second parameter arena (same layout) that forward and
  // backward use instead of params() while weight quantization is on; weight gradients
  // are then taken at the quantized weights — the straight-through estimator.
  float* quant_params();
  void set_weight_quant(bool on) { weight_quant_ = on && qparams_ != nullptr; }
  bool weight_quant() const { return weight_quant_; }
  // Activation quantizers (owned by the caller, must outlive their use; nullptr: none).
  void set_act_quant(const quant::ActQuantState* state);
  // Called with every site's values before quantization (calibration); empty: none.
  void set_observer(quant::ActObserver observer) { observer_ = std::move(observer); }
  // QDrop during block reconstruction: each activation value stays in float with
  // probability p (0: off, the default) at the sites this model fake-quantizes.
  // LSQ during block reconstruction: while set to block l (−1: off), the forward keeps the
  // float inputs of block l's Linear-input sites (qkv, proj, fc1, fc2 inputs) and the
  // backward accumulates d loss/d step of each (lsq_grads(), in that order, reset by
  // each forward), with the clipped inputs' gradients zeroed (quant::lsq_step_gradient).
  void set_lsq(int block) { hooks_.set_lsq(block); }
  const std::array<double, 4>& lsq_grads() const { return hooks_.lsq_grads(); }
  // The backward's hook at a site (after d loss/d site output is complete in `grad`).
  void site_grad(quant::Site s, int block, float* grad, int64_t rows, int64_t cols) {
    hooks_.site_grad(s, block, grad, rows, cols, act_quant_);
  }
  void set_qdrop(float p, uint64_t seed) { hooks_.set_qdrop(p, seed); }

  // Integer execution: Linear layers with a uniform input quantizer and packed integer
  // weights run on the int8/int4 kernels (qlinear.h) instead of the float simulation.
  // Forward only (backward of an integer pass is refused). Layers are keyed by timm
  // weight name ("blocks.3.mlp.fc1.weight", "patch_embed.proj.weight", "head.weight").
  void set_integer_weights(std::vector<std::pair<std::string, QLinearWeights>> layers);
  void set_integer_mode(bool on) { integer_mode_ = on && !integer_.empty(); }
  bool integer_mode() const { return integer_mode_; }

  // ---- Block-level passes (block reconstruction) ----------------------------------------
  // Plans the arena for `batch` (as forward does) without running the model.
  void prepare(int batch);
  // Runs block l alone on x_in [batch, N, D]; its output is block_output(l).
  void forward_block(int l, const float* x_in);
  // Backward of block l from dout [batch, N, D] (after forward_block on the same x_in):
  // writes dx_in (if not null) and, when weight_grads, overwrites block l's gradients in grads().
  void backward_block(int l, const float* x_in, const float* dout, float* dx_in, bool weight_grads);
  const float* block_output(int l) const;
  // The embeddings (block 0's input) of the last forward, [batch, N, D].
  const float* embeddings() const { return acts_.x0; }
  // The patch embedding alone on `images` (after prepare): embeddings() holds its output.
  void forward_embed(const float* images);
  // Its backward from dx0 [batch, N, D] (after forward_embed on the same images): writes
  // dimages and overwrites grads() (the embedding's gradients; the others zero).
  void backward_embed(const float* dx0, float* dimages);
  // The head alone (final norm, pooling, classifier) on the token stream `tokens`
  // [batch, N, D] (after prepare): logits() holds its output.
  void forward_head(const float* tokens);
  // Its backward from dlogits (after forward_head): overwrites grads() (the head's and the
  // final norm's gradients; the others zero).
  void backward_head(const float* dlogits);

  int threads() const { return pool_->threads(); }
  void set_threads(int threads);
  void set_reference(bool reference) { reference_ = reference; }
  // Activation memory above which forward refuses a batch (E_MEMORY) instead of trying.
  void set_activation_budget(int64_t bytes) { activation_budget_ = bytes; }
  static int64_t activation_bytes(const VitConfig& c, int batch, int threads, bool quant_probs = false);

  // Forward on `batch` NCHW images; keeps everything backward and the taps need.
  // `cancel` (optional) is polled between blocks: when set, throws E_CANCELLED.
  void forward(const float* images, int batch, const std::atomic<bool>* cancel = nullptr);
  // Backward from d loss/d logits (+ optional tap gradients) of the last forward;
  // overwrites dimages [batch, C, H, W]; also overwrites grads() when weight_grads.
  void backward(const float* dlogits, const TapGrads& taps, float* dimages, bool weight_grads,
                const std::atomic<bool>* cancel = nullptr);

  int batch() const { return batch_; }
  const float* logits() const { return acts_.logits; }
  const float* attention(int block) const { return acts_.blocks[block].att; }
  const float* attention_values(int block) const { return acts_.blocks[block].av; }
  // The head's input [B, heads_in, D]: the penultimate features.
  const float* features() const { return acts_.feat; }

 private:
  friend struct Ops;  // the op table the shared passes run on (cpu_ops.h)
  Exec exec() const;
  void ensure_arena(int batch);
  // Reports a site to the observer, then fake-quantizes it in place when a quantizer is set.
  void site(quant::Site s, int block, float* data, int64_t rows, int64_t cols, int64_t ld);
  const quant::TensorQuant* probs_quant(int block) const;
  // A Linear forward that runs on the integer kernels when integer mode has this layer.
  void linear(float* out, const float* in, const float* w, const float* b, int64_t rows, int I, int O, const Exec& ex,
              const QLinearWeights* qw, quant::Site site, int block);
  const QLinearWeights* integer_layer(const std::string& name) const;
  // The packed integer weights of a Linear while integer execution is on, else nullptr.
  const QLinearWeights* integer_weights(const core::LinearRef& ref) const;
  // The weights passes use: the fake-quantized copy while weight quantization is on.
  const VitParams& wq() const { return weight_quant_ ? pq_ : p_; }

  VitConfig config_;
  int64_t param_count_;
  FloatBuffer params_;
  FloatBuffer grads_;
  VitParams p_;
  FloatBuffer qparams_;
  VitParams pq_{};
  bool weight_quant_ = false;
  const quant::ActQuantState* act_quant_ = nullptr;
  ReconSiteHooks hooks_;  // QDrop and LSQ during block reconstruction (recon_hooks.h)
  quant::ActObserver observer_;
  std::vector<std::pair<std::string, QLinearWeights>> integer_;
  bool integer_mode_ = false;
  // Per block: qkv, proj, fc1, fc2 integer layers (nullptr when absent); patch and head.
  std::vector<std::array<const QLinearWeights*, 4>> integer_blocks_;
  const QLinearWeights* integer_patch_ = nullptr;
  const QLinearWeights* integer_head_ = nullptr;
  std::unique_ptr<ThreadPool> pool_;
  bool reference_ = false;
  int64_t activation_budget_ = int64_t(8) << 30;

  FloatBuffer arena_;
  int arena_batch_ = 0;
  bool arena_quant_probs_ = false;
  int batch_ = 0;
  VitActs acts_;
  VitGrads g_;
};

}  // namespace spdfq::cpu
