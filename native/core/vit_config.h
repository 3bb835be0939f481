// The ViT architecture as plain data (mirrors lib/vit-config.ts, which validates it first;
// `validate` re-checks here because the core is also used without the TypeScript layer).
#pragma once

#include <cstdint>
#include <string>

namespace spdfq {

// Mean: over the patch tokens (timm); MeanAll: over every token, prefix included
// (vit-pytorch's pool='mean').
enum class Pooling { Token, Mean, MeanAll };
enum class NormPlacement { Pre, Post };
enum class FinalNorm { Tokens, Pooled, None };
// The MLP's nonlinearity: GELU (erf; tanh approximation), QuickGELU x·σ(1.702x) (CLIP),
// ReLU (nn.TransformerEncoderLayer's default), SiLU x·σ(x).
enum class Activation { GeluErf, GeluTanh, QuickGelu, Relu, Silu };

struct VitConfig {
  int image_h = 224, image_w = 224, channels = 3, patch = 16;
  int dim = 192, depth = 12, heads = 3, mlp_dim = 768;
  bool qkv_bias = true, class_token = true, dist_token = false;
  Pooling pooling = Pooling::Token;
  NormPlacement norm = NormPlacement::Pre;
  FinalNorm final_norm = FinalNorm::Tokens;
  float ln_eps = 1e-6f;
  Activation activation = Activation::GeluErf;
  // Optional LayerNorms around the embedding: on each flattened patch before the patch
  // projection and on its output (vit-pytorch), and on the embedded tokens before block 0
  // (timm norm_pre, CLIP ln_pre).
  bool patch_input_norm = false, patch_output_norm = false, embed_norm = false;
  int num_classes = 1000;

  int grid_h() const { return image_h / patch; }
  int grid_w() const { return image_w / patch; }
  int patches() const { return grid_h() * grid_w(); }
  int prefix() const { return (class_token ? 1 : 0) + (dist_token ? 1 : 0); }
  // First token a mean pooling averages from.
  int pool_start() const { return pooling == Pooling::MeanAll ? 0 : prefix(); }
  int tokens() const { return prefix() + patches(); }
  int head_dim() const { return dim / heads; }
  int patch_len() const { return channels * patch * patch; }  // one im2col row
  int64_t image_len() const { return int64_t(channels) * image_h * image_w; }

  // Throws spdfq::Error("E_CONFIG") naming the first inconsistent field.
  void validate() const;
  // Multiply–accumulates of one image's forward pass (×2 for FLOPs).
  int64_t forward_macs() const;
};

}  // namespace spdfq
