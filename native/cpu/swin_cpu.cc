// The CPU Swin model: its memory (weights, index tables, the activation arena, the
// backward's scratch and weight gradients), the forward and the backward, which run
// core/swin_passes.h's sequences on the CPU op table.
#include "swin_cpu.h"

#include <cstdio>
#include <cstring>

#include "../core/errors.h"
#include "site_quant.h"
#include "swin_cpu_ops.h"

namespace spdfq::cpu {

CpuSwin::CpuSwin(const SwinConfig& config, int threads) : config_(config) {
  config_.validate();
  patch_geom_.image_h = config_.image_h;
  patch_geom_.image_w = config_.image_w;
  patch_geom_.channels = config_.channels;
  patch_geom_.patch = config_.patch;
  param_count_ = swin_param_count(config_);
  params_ = alloc_floats(param_count_, "parameters");
  std::memset(params_.get(), 0, sizeof(float) * size_t(param_count_));
  p_ = bind_swin_params(config_, params_.get());
  indices_ = make_swin_indices(config_);
  index_ = indices_.bind(indices_.data.data());
  pool_ = std::make_unique<ThreadPool>(threads);
}

void CpuSwin::set_threads(int threads) {
  if (threads != pool_->threads()) pool_ = std::make_unique<ThreadPool>(threads);
}

Exec CpuSwin::exec() const {
  Exec ex;
  ex.pool = pool_.get();
  ex.reference = reference_;
  ex.gemm = reference_ ? GemmVariant::Ref : GemmVariant::Auto;
  return ex;
}

int64_t CpuSwin::activation_bytes(const SwinConfig& c, int batch, bool quant_probs) {
  return plan_swin_activations(c, batch, nullptr, nullptr, quant_probs) * int64_t(sizeof(float));
}

void CpuSwin::ensure_arena(int batch) {
  const bool quant = act_quant_ != nullptr;  // the quantized probabilities' copy (att_q)
  if (arena_ && batch <= arena_batch_ && quant == arena_quant_probs_) {
    plan_swin_activations(config_, batch, arena_.get(), &acts_, quant);
    return;
  }
  const int64_t bytes = activation_bytes(config_, batch, quant);
  if (bytes > activation_budget_) {
    int fit = 0;
    for (int b = batch - 1; b >= 1; --b)
      if (activation_bytes(config_, b, quant) <= activation_budget_) {
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
  plan_swin_activations(config_, batch, arena_.get(), &acts_, quant);
}

// ------------------------------------------------------------------------ quantization

float* CpuSwin::quant_params() {
  if (!qparams_) {
    qparams_ = alloc_floats(param_count_, "quantized weights");
    std::memcpy(qparams_.get(), params_.get(), sizeof(float) * size_t(param_count_));
    pq_ = bind_swin_params(config_, qparams_.get());
  }
  return qparams_.get();
}

void CpuSwin::set_act_quant(const quant::ActQuantState* state) {
  if (state && (state->blocks.size() != size_t(config_.blocks()) * quant::kBlockSites ||
                state->merges.size() != size_t(config_.stages() - 1)))
    fail("E_CONFIG", "activation quantizers: expected " + std::to_string(config_.blocks() * quant::kBlockSites) +
                         " block sites and " + std::to_string(config_.stages() - 1) + " merge sites, received " +
                         std::to_string(state->blocks.size()) + " and " + std::to_string(state->merges.size()));
  act_quant_ = state;
  batch_ = 0;  // the arena layout may change; a new forward is needed before backward
}

const quant::TensorQuant* CpuSwin::probs_quant(int block) const {
  if (!act_quant_) return nullptr;
  const quant::TensorQuant& q = act_quant_->at(quant::Site::Probs, block);
  return q.kind == quant::QuantKind::None ? nullptr : &q;
}

void CpuSwin::site(quant::Site s, int block, float* data, int64_t rows, int64_t cols, int64_t ld) {
  if (observer_) observer_(quant::SiteView{s, block, data, rows, cols, ld});
  if (act_quant_) hooks_.quantize(s, block, data, rows, cols, ld, act_quant_->at(s, block), exec());
}

void CpuSwin::forward(const float* images, int batch, const std::atomic<bool>* cancel) {
  if (batch < 1) fail("E_TENSOR", "batch must be at least 1, received " + std::to_string(batch));
  batch_ = 0;  // invalid until this pass completes
  ensure_arena(batch);
  batch_ = batch;
  SwinOps ops{*this, exec()};
  try {
    core::swin_model_forward(ops, images, [&] {
      if (cancel && cancel->load(std::memory_order_relaxed)) fail("E_CANCELLED", "cancelled");
    });
  } catch (...) {
    batch_ = 0;
    throw;
  }
}

void CpuSwin::ensure_grad_arena() {
  const int threads = exec().threads();
  if (!grad_arena_ || batch_ > grad_batch_ || threads != grad_threads_) {
    grad_arena_.reset();
    grad_batch_ = 0;
    const int64_t scratch = attention_scratch_floats(config_.window_tokens(), threads);
    grad_arena_ = alloc_floats(plan_swin_grads(config_, batch_, scratch, nullptr, nullptr), "backward scratch");
    grad_batch_ = batch_;
    grad_threads_ = threads;
    plan_swin_grads(config_, batch_, scratch, grad_arena_.get(), &g_);
  }
}

void CpuSwin::backward(const float* dlogits, const TapGrads& taps, float* dimages, bool weight_grads,
                       const std::atomic<bool>* cancel) {
  if (batch_ == 0) fail("E_STATE", "no completed forward pass on this model yet");
  const std::pair<const char*, const std::vector<const float*>*> lists[] = {{"attention", &taps.attn},
                                                                            {"attention-output (A·V)", &taps.av}};
  for (const auto& [what, list] : lists)
    if (!list->empty() && int(list->size()) != config_.blocks())
      fail("E_TENSOR", std::string(what) + " tap gradients: expected one entry per block (" +
                           std::to_string(config_.blocks()) + "), received " + std::to_string(list->size()));
  ensure_grad_arena();
  SwinParams gp{};
  if (weight_grads) {
    if (!grads_) grads_ = alloc_floats(param_count_, "weight gradients");
    std::memset(grads_.get(), 0, sizeof(float) * size_t(param_count_));
    gp = bind_swin_params(config_, grads_.get());
  }
  SwinOps ops{*this, exec()};
  core::swin_model_backward(
      ops, dlogits, dimages, weight_grads ? &gp : nullptr,
      [&](int l) {
        core::SwinBlockTaps t;
        if (!taps.attn.empty()) t.att = taps.attn[size_t(l)];
        if (!taps.av.empty()) t.av = taps.av[size_t(l)];
        return t;
      },
      [&] {
        if (cancel && cancel->load(std::memory_order_relaxed)) fail("E_CANCELLED", "cancelled");
      });
}

CpuSwin::Tensor CpuSwin::output(const std::string& name) const {
  if (batch_ == 0) fail("E_STATE", "no completed forward pass on this model yet");
  const SwinConfig& c = config_;
  const int64_t B = batch_;
  auto grid = [&](int s, int64_t C) { return std::vector<int64_t>{B, c.grid_h(s), c.grid_w(s), C}; };
  if (name == "patch_embed") return {acts_.x0, grid(0, c.dim(0))};
  if (name == "pooled") return {acts_.pooled, {B, c.features()}};
  if (name == "logits") return {acts_.logits, {B, c.num_classes}};
  int s = -1, i = -1, used = 0;
  if (std::sscanf(name.c_str(), "block.%d.%d%n", &s, &i, &used) == 2 && used == int(name.size()) && s >= 0 &&
      s < c.stages() && i >= 0 && i < c.depths[size_t(s)])
    return {acts_.blocks[size_t(swin_block_index(c, s, i))].out, grid(s, c.dim(s))};
  if (std::sscanf(name.c_str(), "attention.%d.%d%n", &s, &i, &used) == 2 && used == int(name.size()) && s >= 0 &&
      s < c.stages() && i >= 0 && i < c.depths[size_t(s)]) {
    const int64_t N = c.window_tokens();
    return {acts_.blocks[size_t(swin_block_index(c, s, i))].att, {B, c.windows(s), c.heads[size_t(s)], N, N}};
  }
  if (std::sscanf(name.c_str(), "attention_values.%d.%d%n", &s, &i, &used) == 2 && used == int(name.size()) &&
      s >= 0 && s < c.stages() && i >= 0 && i < c.depths[size_t(s)])
    return {acts_.blocks[size_t(swin_block_index(c, s, i))].av, {B, c.windows(s), c.window_tokens(), c.dim(s)}};
  if (std::sscanf(name.c_str(), "merge.%d%n", &s, &used) == 1 && used == int(name.size()) && s >= 0 &&
      s + 1 < c.stages())
    return {acts_.merges[size_t(s)].out, grid(s + 1, c.dim(s + 1))};
  fail("E_CONFIG", "unknown Swin output '" + name + "': expected patch_embed, block.<stage>.<index>, "
                   "attention.<stage>.<index>, attention_values.<stage>.<index>, merge.<stage>, pooled or logits (this model has " + std::to_string(c.stages()) + " stages)");
}

}  // namespace spdfq::cpu
