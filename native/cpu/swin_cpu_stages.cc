// CpuSwin's stage-level passes for block reconstruction (native/quant/reconstruct_swin.cc):
// the patch embedding, one block, one patch merging and the head, each alone on its input,
// with their backwards into the piece's weight gradients — core/swin_passes.h's sequences,
// the same the whole-model forward and backward run.
#include <cstring>
#include <string>

#include "../core/errors.h"
#include "swin_cpu.h"
#include "swin_cpu_ops.h"

namespace spdfq::cpu {

namespace {

// Stage and index within it of the stage-major block l (E_CONFIG when out of range).
std::pair<int, int> block_position(const SwinConfig& c, int l) {
  if (l >= 0)
    for (int s = 0, first = 0; s < c.stages(); first += c.depths[size_t(s)], ++s)
      if (l < first + c.depths[size_t(s)]) return {s, l - first};
  fail("E_CONFIG", "block index " + std::to_string(l) + " out of range (this model has " +
                       std::to_string(c.blocks()) + " blocks)");
}

void check_merge(const SwinConfig& c, int s) {
  if (s < 0 || s + 1 >= c.stages())
    fail("E_CONFIG", "patch merging " + std::to_string(s) + " out of range (this model has " +
                         std::to_string(c.stages() - 1) + ")");
}

}  // namespace

void CpuSwin::prepare(int batch) {
  if (batch < 1) fail("E_TENSOR", "batch must be at least 1, received " + std::to_string(batch));
  batch_ = 0;
  ensure_arena(batch);
  batch_ = batch;
}

float* CpuSwin::grads() {
  if (!grads_) {
    grads_ = alloc_floats(param_count_, "weight gradients");
    std::memset(grads_.get(), 0, sizeof(float) * size_t(param_count_));
  }
  return grads_.get();
}

SwinParams CpuSwin::piece_grads(const float* first, const float* last_end) {
  float* g = grads();
  const int64_t a = first - params_.get(), b = last_end - params_.get();
  std::memset(g + a, 0, sizeof(float) * size_t(b - a));
  return bind_swin_params(config_, g);
}

void CpuSwin::forward_block(int l, const float* x) {
  if (batch_ == 0) fail("E_STATE", "forward_block needs prepare(batch) first");
  const auto [s, i] = block_position(config_, l);
  SwinOps ops{*this, exec()};
  core::swin_block_forward(ops, s, i, x);
}

void CpuSwin::backward_block(int l, const float* x, const float* dout, float* dx) {
  if (batch_ == 0) fail("E_STATE", "backward_block needs forward_block first");
  const auto [s, i] = block_position(config_, l);
  ensure_grad_arena();
  const SwinBlockParams& b = p_.blocks[size_t(l)];
  SwinParams gp = piece_grads(b.norm1_w, b.fc2_b + config_.dim(s));  // a block's tensors are contiguous
  const int64_t n = int64_t(batch_) * config_.tokens(s) * config_.dim(s);
  std::memcpy(g_.dres, dout, sizeof(float) * size_t(n));
  SwinOps ops{*this, exec()};
  core::swin_block_backward(ops, s, i, x, core::SwinBlockTaps{}, &gp);
  if (dx) std::memcpy(dx, g_.dres, sizeof(float) * size_t(n));
}

void CpuSwin::forward_merge(int s, const float* x) {
  if (batch_ == 0) fail("E_STATE", "forward_merge needs prepare(batch) first");
  check_merge(config_, s);
  SwinOps ops{*this, exec()};
  core::swin_merge_forward(ops, s, x);
}

void CpuSwin::backward_merge(int s, const float* dout, float* dx) {
  if (batch_ == 0) fail("E_STATE", "backward_merge needs forward_merge first");
  check_merge(config_, s);
  ensure_grad_arena();
  const SwinMergeParams& m = p_.merges[size_t(s)];
  SwinParams gp = piece_grads(m.reduction_w, m.norm_b + 4 * config_.dim(s));
  std::memcpy(g_.dres, dout, sizeof(float) * size_t(int64_t(batch_) * config_.tokens(s + 1) * config_.dim(s + 1)));
  SwinOps ops{*this, exec()};
  core::swin_merge_backward(ops, s, &gp);
  if (dx) std::memcpy(dx, g_.dres, sizeof(float) * size_t(int64_t(batch_) * config_.tokens(s) * config_.dim(s)));
}

void CpuSwin::forward_embed(const float* images) {
  if (batch_ == 0) fail("E_STATE", "forward_embed needs prepare(batch) first");
  SwinOps ops{*this, exec()};
  core::swin_embed_forward(ops, images);
}

void CpuSwin::backward_embed(const float* dx0, float* dimages) {
  if (batch_ == 0) fail("E_STATE", "backward_embed needs forward_embed first");
  ensure_grad_arena();
  SwinParams gp = piece_grads(p_.patch_w, p_.patch_norm_b + config_.dim(0));
  std::memcpy(g_.dres, dx0, sizeof(float) * size_t(int64_t(batch_) * config_.tokens(0) * config_.dim(0)));
  SwinOps ops{*this, exec()};
  core::swin_embed_backward(ops, dimages, &gp);
}

void CpuSwin::forward_head(const float* x) {
  if (batch_ == 0) fail("E_STATE", "forward_head needs prepare(batch) first");
  SwinOps ops{*this, exec()};
  core::swin_head_forward(ops, x);
}

void CpuSwin::backward_head(const float* x, const float* dlogits) {
  if (batch_ == 0) fail("E_STATE", "backward_head needs forward_head first");
  ensure_grad_arena();
  SwinParams gp = piece_grads(p_.norm_w, p_.head_b + config_.num_classes);
  SwinOps ops{*this, exec()};
  core::swin_head_backward(ops, dlogits, x, &gp);
}

}  // namespace spdfq::cpu
