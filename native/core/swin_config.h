// The Swin Transformer (V1, torchvision's `SwinTransformer`) as plain data, and the
// geometry every backend derives from it: each stage's token grid, the padded grid its
// windows tile, and whether its odd blocks shift. lib/swin.ts validates first;
// `validate` re-checks here because the core is also used without the TypeScript layer.
//
// Geometry, as torchvision 0.14 computes it (models/swin_transformer.py):
//   stage 0 grid = image / patch (the Conv2d's floor; we require an exact division);
//   stage s+1 grid = ceil(stage s grid / 2) (PatchMerging pads an odd side with zeros);
//   a block pads its grid on the bottom/right to a multiple of the window
//   (shifted_window_attention's F.pad), and a shift of window//2 along an axis is switched
//   off when the window covers the whole padded axis (`window_size[i] >= pad_H/pad_W`).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vit_config.h"  // Activation

namespace spdfq {

struct SwinConfig {
  int image_h = 224, image_w = 224, channels = 3, patch = 4;
  int embed_dim = 96;
  std::vector<int> depths{2, 2, 6, 2};
  std::vector<int> heads{3, 6, 12, 24};
  int window_h = 7, window_w = 7;
  float mlp_ratio = 4.0f;
  bool qkv_bias = true;
  // Ours, not torchvision's (its reduction has no bias): quantization gives the merges'
  // reduction a bias, which RepQ-ViT's reparameterization of its input folds into.
  bool reduction_bias = false;
  float ln_eps = 1e-5f;  // torchvision: partial(nn.LayerNorm, eps=1e-5)
  int num_classes = 1000;
  Activation activation = Activation::GeluErf;

  int stages() const { return int(depths.size()); }
  int blocks() const;  // Σ depths
  int dim(int s) const { return embed_dim << s; }
  int head_dim(int s) const { return dim(s) / heads[size_t(s)]; }
  // torchvision: MLP(dim, [int(dim * mlp_ratio), dim]) — truncation, as Python's int().
  int mlp_dim(int s) const { return int(float(dim(s)) * mlp_ratio); }
  int grid_h(int s) const;
  int grid_w(int s) const;
  int tokens(int s) const { return grid_h(s) * grid_w(s); }
  int padded_h(int s) const { return (grid_h(s) + window_h - 1) / window_h * window_h; }
  int padded_w(int s) const { return (grid_w(s) + window_w - 1) / window_w * window_w; }
  int windows(int s) const { return (padded_h(s) / window_h) * (padded_w(s) / window_w); }
  int window_tokens() const { return window_h * window_w; }
  // The cyclic shift of the odd blocks of stage s along each axis (0: none).
  int shift_h(int s) const { return window_h >= padded_h(s) ? 0 : window_h / 2; }
  int shift_w(int s) const { return window_w >= padded_w(s) ? 0 : window_w / 2; }
  bool block_shifted(int s, int i) const { return i % 2 == 1 && shift_h(s) + shift_w(s) > 0; }
  int features() const { return dim(stages() - 1); }  // the head's input width
  int patch_len() const { return channels * patch * patch; }
  int64_t image_len() const { return int64_t(channels) * image_h * image_w; }
  // The relative-position bias table's rows: (2·wh − 1)·(2·ww − 1).
  int bias_table_rows() const { return (2 * window_h - 1) * (2 * window_w - 1); }

  // Throws spdfq::Error("E_CONFIG") naming the first inconsistent field.
  void validate() const;
  // Multiply–accumulates of one image's forward pass (×2 for FLOPs), padded windows included.
  int64_t forward_macs() const;
};

}  // namespace spdfq
