#include "vit_params.h"

#include <functional>

namespace spdfq {

namespace {

// Walks the canonical order once; `visit(name, shape, slot)` receives the address of the
// pointer field to bind (nullptr-free: optional tensors are simply not visited).
void walk_params(const VitConfig& c, VitParams* p,
                 const std::function<void(const std::string&, std::vector<int64_t>, float**)>& visit) {
  const int64_t D = c.dim, M = c.mlp_dim, K = c.num_classes;
  if (c.patch_input_norm) {
    visit("patch_embed.norm_in.weight", {c.patch_len()}, &p->patch_norm_in_w);
    visit("patch_embed.norm_in.bias", {c.patch_len()}, &p->patch_norm_in_b);
  }
  visit("patch_embed.proj.weight", {D, c.channels, c.patch, c.patch}, &p->patch_w);
  visit("patch_embed.proj.bias", {D}, &p->patch_b);
  if (c.patch_output_norm) {
    visit("patch_embed.norm.weight", {D}, &p->patch_norm_w);
    visit("patch_embed.norm.bias", {D}, &p->patch_norm_b);
  }
  if (c.class_token) visit("cls_token", {1, 1, D}, &p->cls_token);
  if (c.dist_token) visit("dist_token", {1, 1, D}, &p->dist_token);
  visit("pos_embed", {1, c.tokens(), D}, &p->pos_embed);
  if (c.embed_norm) {
    visit("norm_pre.weight", {D}, &p->norm_pre_w);
    visit("norm_pre.bias", {D}, &p->norm_pre_b);
  }
  p->blocks.resize(c.depth);
  for (int i = 0; i < c.depth; ++i) {
    BlockParams& b = p->blocks[i];
    const std::string pre = "blocks." + std::to_string(i) + ".";
    visit(pre + "norm1.weight", {D}, &b.norm1_w);
    visit(pre + "norm1.bias", {D}, &b.norm1_b);
    visit(pre + "attn.qkv.weight", {3 * D, D}, &b.qkv_w);
    if (c.qkv_bias) visit(pre + "attn.qkv.bias", {3 * D}, &b.qkv_b);
    visit(pre + "attn.proj.weight", {D, D}, &b.proj_w);
    visit(pre + "attn.proj.bias", {D}, &b.proj_b);
    visit(pre + "norm2.weight", {D}, &b.norm2_w);
    visit(pre + "norm2.bias", {D}, &b.norm2_b);
    visit(pre + "mlp.fc1.weight", {M, D}, &b.fc1_w);
    visit(pre + "mlp.fc1.bias", {M}, &b.fc1_b);
    visit(pre + "mlp.fc2.weight", {D, M}, &b.fc2_w);
    visit(pre + "mlp.fc2.bias", {D}, &b.fc2_b);
  }
  if (c.final_norm == FinalNorm::Tokens) {
    visit("norm.weight", {D}, &p->norm_w);
    visit("norm.bias", {D}, &p->norm_b);
  } else if (c.final_norm == FinalNorm::Pooled) {
    visit("fc_norm.weight", {D}, &p->norm_w);
    visit("fc_norm.bias", {D}, &p->norm_b);
  }
  visit("head.weight", {K, D}, &p->head_w);
  visit("head.bias", {K}, &p->head_b);
  if (c.dist_token) {
    visit("head_dist.weight", {K, D}, &p->head_dist_w);
    visit("head_dist.bias", {K}, &p->head_dist_b);
  }
}

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

}  // namespace

std::vector<ParamInfo> plan_params(const VitConfig& c) {
  std::vector<ParamInfo> out;
  VitParams scratch{};
  int64_t offset = 0;
  walk_params(c, &scratch, [&](const std::string& name, std::vector<int64_t> shape, float**) {
    const int64_t n = numel(shape);
    out.push_back({name, std::move(shape), offset, n});
    offset += n;
  });
  return out;
}

int64_t param_count(const VitConfig& c) {
  int64_t total = 0;
  for (const auto& p : plan_params(c)) total += p.size;
  return total;
}

VitParams bind_params(const VitConfig& c, float* arena) {
  VitParams p{};
  int64_t offset = 0;
  walk_params(c, &p, [&](const std::string&, std::vector<int64_t> shape, float** slot) {
    *slot = arena + offset;
    offset += numel(shape);
  });
  return p;
}

}  // namespace spdfq
