// The CPU model: its memory (weights, gradients, the activation arena), the quantization
// and integer-execution hooks, and the passes, which run core/vit_passes.h's sequences on
// the CPU op table (cpu_ops.h).
#include "vit_cpu.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "../core/errors.h"
#include "../core/quantizer.h"
#include "cpu_ops.h"
#include "ops.h"
#include "site_quant.h"

namespace spdfq::cpu {

void AlignedFree::operator()(float* p) const { std::free(p); }

FloatBuffer alloc_floats(int64_t n, const char* what) {
  const size_t bytes = (size_t(n > 0 ? n : 1) * sizeof(float) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes);
  if (!p)
    fail("E_MEMORY", std::string("out of memory allocating ") + std::to_string(bytes >> 20) + " MiB for " + what);
  return FloatBuffer(static_cast<float*>(p));
}

namespace {
void zero(float* p, int64_t n) { std::memset(p, 0, size_t(n) * sizeof(float)); }
void check_cancel(const std::atomic<bool>* cancel) {
  if (cancel && cancel->load(std::memory_order_relaxed)) fail("E_CANCELLED", "cancelled");
}
}  // namespace

CpuVit::CpuVit(const VitConfig& config, int threads) : config_(config) {
  config_.validate();
  param_count_ = spdfq::param_count(config_);
  params_ = alloc_floats(param_count_, "parameters");
  zero(params_.get(), param_count_);
  p_ = bind_params(config_, params_.get());
  pool_ = std::make_unique<ThreadPool>(threads);
}

float* CpuVit::grads() {
  if (!grads_) {
    grads_ = alloc_floats(param_count_, "weight gradients");
    zero(grads_.get(), param_count_);
  }
  return grads_.get();
}

void CpuVit::set_threads(int threads) {
  if (threads != pool_->threads()) {
    pool_ = std::make_unique<ThreadPool>(threads);
    arena_.reset();  // attention scratch is sized per thread
    arena_batch_ = 0;
    batch_ = 0;
  }
}

Exec CpuVit::exec() const {
  Exec ex;
  ex.pool = pool_.get();
  ex.reference = reference_;
  ex.gemm = reference_ ? GemmVariant::Ref : GemmVariant::Auto;
  return ex;
}

int64_t CpuVit::activation_bytes(const VitConfig& c, int batch, int threads, bool quant) {
  return plan_activations(c, batch, threads, quant, nullptr, nullptr, nullptr) * int64_t(sizeof(float));
}

void CpuVit::ensure_arena(int batch) {
  const bool quant = act_quant_ != nullptr;
  if (arena_ && batch <= arena_batch_ && quant == arena_quant_probs_) {
    plan_activations(config_, batch, threads(), quant, arena_.get(), &acts_, &g_);
    return;
  }
  const int64_t bytes = activation_bytes(config_, batch, threads(), quant);
  if (bytes > activation_budget_) {
    int fit = 0;
    for (int b = batch - 1; b >= 1; --b)
      if (activation_bytes(config_, b, threads(), quant) <= activation_budget_) {
        fit = b;
        break;
      }
    fail("E_MEMORY", "batch " + std::to_string(batch) + " needs " + std::to_string(bytes >> 20) +
                         " MiB of activations, over the budget of " + std::to_string(activation_budget_ >> 20) +
                         " MiB; the largest batch that fits is " + std::to_string(fit));
  }
  arena_.reset();
  arena_batch_ = 0;
  arena_ = alloc_floats(bytes / int64_t(sizeof(float)), "activations");
  arena_batch_ = batch;
  arena_quant_probs_ = quant;
  plan_activations(config_, batch, threads(), quant, arena_.get(), &acts_, &g_);
}

// ------------------------------------------------------------------------ quantization

float* CpuVit::quant_params() {
  if (!qparams_) {
    qparams_ = alloc_floats(param_count_, "quantized weights");
    std::memcpy(qparams_.get(), params_.get(), sizeof(float) * size_t(param_count_));
    pq_ = bind_params(config_, qparams_.get());
  }
  return qparams_.get();
}

void CpuVit::set_act_quant(const quant::ActQuantState* state) {
  if (state && state->blocks.size() != size_t(config_.depth) * quant::kBlockSites)
    fail("E_CONFIG", "activation quantizers: expected " + std::to_string(config_.depth * quant::kBlockSites) +
                         " block sites, received " + std::to_string(state->blocks.size()));
  act_quant_ = state;
  batch_ = 0;  // the arena layout may change; a new forward is needed before backward
}

const quant::TensorQuant* CpuVit::probs_quant(int block) const {
  if (!act_quant_) return nullptr;
  const auto& q = act_quant_->at(quant::Site::Probs, block);
  return q.kind == quant::QuantKind::None ? nullptr : &q;
}

void CpuVit::site(quant::Site s, int block, float* data, int64_t rows, int64_t cols, int64_t ld) {
  if (observer_) observer_(quant::SiteView{s, block, data, rows, cols, ld});
  if (act_quant_) hooks_.quantize(s, block, data, rows, cols, ld, act_quant_->at(s, block), exec());
}

void CpuVit::set_integer_weights(std::vector<std::pair<std::string, QLinearWeights>> layers) {
  integer_ = std::move(layers);
  integer_blocks_.assign(config_.depth, {nullptr, nullptr, nullptr, nullptr});
  integer_patch_ = integer_layer("patch_embed.proj.weight");
  // The distilled head averages two Linears over two tokens: it stays in simulation.
  integer_head_ = config_.dist_token ? nullptr : integer_layer("head.weight");
  for (int l = 0; l < config_.depth; ++l) {
    const std::string p = "blocks." + std::to_string(l) + ".";
    integer_blocks_[l] = {integer_layer(p + "attn.qkv.weight"), integer_layer(p + "attn.proj.weight"),
                          integer_layer(p + "mlp.fc1.weight"), integer_layer(p + "mlp.fc2.weight")};
  }
  if (integer_.empty()) integer_mode_ = false;
}

const QLinearWeights* CpuVit::integer_layer(const std::string& name) const {
  for (const auto& [n, w] : integer_)
    if (n == name) return &w;
  return nullptr;
}

void CpuVit::linear(float* out, const float* in, const float* w, const float* b, int64_t rows, int I, int O,
                    const Exec& ex, const QLinearWeights* qw, quant::Site site_id, int block) {
  const quant::TensorQuant* act = act_quant_ ? &act_quant_->at(site_id, block) : nullptr;
  if (!integer_mode_ || !qw || !act || !qlinear_act_supported(*act)) {
    linear_forward(out, in, w, b, rows, I, O, ex);
    return;
  }
  ex.parallel_rows(rows, [&](int64_t r0, int64_t r1, int) {
    qlinear_forward(out + r0 * O, in + r0 * I, int(r1 - r0), I, O, *act, *qw, b);
  });
}

const QLinearWeights* CpuVit::integer_weights(const core::LinearRef& ref) const {
  if (!integer_mode_) return nullptr;
  switch (ref.layer) {
    case core::LinearLayer::Qkv: return integer_blocks_[size_t(ref.block)][0];
    case core::LinearLayer::Proj: return integer_blocks_[size_t(ref.block)][1];
    case core::LinearLayer::Fc1: return integer_blocks_[size_t(ref.block)][2];
    case core::LinearLayer::Fc2: return integer_blocks_[size_t(ref.block)][3];
    case core::LinearLayer::PatchEmbed: return integer_patch_;
    case core::LinearLayer::Head: return integer_head_;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------- passes
// The sequences of ops are core/vit_passes.h's, shared with the CUDA engine.

const float* CpuVit::block_output(int l) const { return core::block_output(Ops{const_cast<CpuVit&>(*this), exec()}, l); }

void CpuVit::forward(const float* images, int batch, const std::atomic<bool>* cancel) {
  if (batch < 1) fail("E_TENSOR", "batch must be at least 1, received " + std::to_string(batch));
  batch_ = 0;  // invalid until this pass completes
  ensure_arena(batch);
  batch_ = batch;
  Ops ops{*this, exec()};
  try {
    core::model_forward(ops, images, [&] { check_cancel(cancel); });
  } catch (...) {
    batch_ = 0;
    throw;
  }
}

void CpuVit::backward(const float* dlogits, const TapGrads& taps, float* dimages, bool weight_grads,
                      const std::atomic<bool>* cancel) {
  if (batch_ == 0) fail("E_STATE", "backward needs a completed forward pass on this model first");
  if (integer_mode_) fail("E_STATE", "backward is not available in integer execution mode (it is inference only)");
  VitParams gp{};
  if (weight_grads) {
    zero(grads(), param_count_);
    gp = bind_params(config_, grads_.get());
  }
  Ops ops{*this, exec()};
  auto tap = [&](int l) {
    return std::pair<const float*, const float*>{l < int(taps.attn.size()) ? taps.attn[size_t(l)] : nullptr,
                                                 l < int(taps.av.size()) ? taps.av[size_t(l)] : nullptr};
  };
  core::model_backward(ops, dlogits, dimages, weight_grads ? &gp : nullptr, tap, [&] { check_cancel(cancel); });
}

// ------------------------------------------------------------------ block-level passes

void CpuVit::prepare(int batch) {
  if (batch < 1) fail("E_TENSOR", "batch must be at least 1, received " + std::to_string(batch));
  batch_ = 0;
  ensure_arena(batch);
  batch_ = batch;
}

void CpuVit::forward_block(int l, const float* x_in) {
  if (batch_ == 0) fail("E_STATE", "forward_block needs prepare(batch) first");
  if (l < 0 || l >= config_.depth) fail("E_CONFIG", "block index " + std::to_string(l) + " out of range");
  Ops ops{*this, exec()};
  core::block_forward(ops, l, x_in);
}

void CpuVit::backward_block(int l, const float* x_in, const float* dout, float* dx_in, bool weight_grads) {
  if (batch_ == 0) fail("E_STATE", "backward_block needs forward_block first");
  const int64_t n = int64_t(batch_) * config_.tokens() * config_.dim;
  VitParams gp{};
  if (weight_grads) {
    gp = bind_params(config_, grads());
    // A block's parameters are contiguous in the arena: norm1.weight … mlp.fc2.bias.
    const BlockParams& b = gp.blocks[l];
    zero(b.norm1_w, (b.fc2_b + config_.dim) - b.norm1_w);
  }
  std::memcpy(g_.dres, dout, sizeof(float) * size_t(n));
  Ops ops{*this, exec()};
  core::block_backward(ops, l, x_in, nullptr, nullptr, weight_grads ? &gp : nullptr);
  if (dx_in) std::memcpy(dx_in, g_.dres, sizeof(float) * size_t(n));
}

// ------------------------------------------------------- embedding and head passes

void CpuVit::forward_embed(const float* images) {
  if (batch_ == 0) fail("E_STATE", "forward_embed needs prepare(batch) first");
  Ops ops{*this, exec()};
  core::embed_forward(ops, images);
}

void CpuVit::backward_embed(const float* dx0, float* dimages) {
  if (batch_ == 0) fail("E_STATE", "backward_embed needs forward_embed first");
  zero(grads(), param_count_);
  VitParams gp = bind_params(config_, grads());
  std::memcpy(g_.dres, dx0, sizeof(float) * size_t(int64_t(batch_) * config_.tokens() * config_.dim));
  Ops ops{*this, exec()};
  core::embed_backward(ops, dimages, &gp);
}

void CpuVit::forward_head(const float* tokens) {
  if (batch_ == 0) fail("E_STATE", "forward_head needs prepare(batch) first");
  Ops ops{*this, exec()};
  // The head reads the last block's output: the given tokens take its place.
  std::memcpy(const_cast<float*>(core::block_output(ops, config_.depth - 1)), tokens,
              sizeof(float) * size_t(int64_t(batch_) * config_.tokens() * config_.dim));
  core::head_forward(ops);
}

void CpuVit::backward_head(const float* dlogits) {
  if (batch_ == 0) fail("E_STATE", "backward_head needs forward_head first");
  zero(grads(), param_count_);
  VitParams gp = bind_params(config_, grads());
  Ops ops{*this, exec()};
  core::head_backward(ops, dlogits, &gp);
}

}  // namespace spdfq::cpu
