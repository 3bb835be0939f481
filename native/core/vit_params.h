// Parameters of a ViT as a struct of named pointers into one contiguous arena, in the
// canonical order of lib/vit-config.ts `vitParamSpecs` (timm names, PyTorch shapes).
// The same layout serves the weights and their gradients: plan once, bind twice.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vit_config.h"

namespace spdfq {

struct BlockParams {
  float* norm1_w;  // [D]
  float* norm1_b;  // [D]
  float* qkv_w;    // [3D, D]  rows: q (heads × head_dim), then k, then v
  float* qkv_b;    // [3D]     nullptr when the config has no qkv bias
  float* proj_w;   // [D, D]
  float* proj_b;   // [D]
  float* norm2_w;  // [D]
  float* norm2_b;  // [D]
  float* fc1_w;    // [M, D]
  float* fc1_b;    // [M]
  float* fc2_w;    // [D, M]
  float* fc2_b;    // [D]
};

struct VitParams {
  float* patch_norm_in_w;  // [C·P·P]  LayerNorm on each flattened patch (im2col order); nullptr unless
  float* patch_norm_in_b;  //          patch_input_norm
  float* patch_w;    // [D, C, P, P]  the patch-embedding conv, used as a [D, C·P·P] matrix
  float* patch_b;    // [D]
  float* patch_norm_w;  // [D]  LayerNorm on the patch projections; nullptr unless patch_output_norm
  float* patch_norm_b;  // [D]
  float* cls_token;  // [D]  nullptr without a class token
  float* dist_token; // [D]  nullptr without a distillation token
  float* pos_embed;  // [N, D]  N = prefix + patches
  float* norm_pre_w; // [D]  LayerNorm on the embedded tokens; nullptr unless embed_norm
  float* norm_pre_b; // [D]
  std::vector<BlockParams> blocks;
  float* norm_w;     // [D]  final LayerNorm (`norm` or `fc_norm`); nullptr when FinalNorm::None
  float* norm_b;     // [D]
  float* head_w;     // [K, D]
  float* head_b;     // [K]
  float* head_dist_w;  // [K, D]  nullptr without a distillation token
  float* head_dist_b;  // [K]
};

struct ParamInfo {
  std::string name;            // timm name, e.g. "blocks.3.mlp.fc1.weight"
  std::vector<int64_t> shape;  // PyTorch shape
  int64_t offset;              // in floats from the arena start
  int64_t size;
};

// The layout of every parameter for a config, in canonical order.
std::vector<ParamInfo> plan_params(const VitConfig& c);
int64_t param_count(const VitConfig& c);
// Binds the named pointers to `arena` (which holds param_count(c) floats).
VitParams bind_params(const VitConfig& c, float* arena);

}  // namespace spdfq
