#include "vit_config.h"

#include "errors.h"

namespace spdfq {

namespace {
void require(bool ok, const std::string& what) {
  if (!ok) fail("E_CONFIG", "ViT config: " + what);
}
}  // namespace

void VitConfig::validate() const {
  require(image_h > 0 && image_w > 0 && channels > 0 && patch > 0, "image size, channels and patch must be positive");
  require(image_h % patch == 0 && image_w % patch == 0,
          "patch size " + std::to_string(patch) + " must divide the image size " + std::to_string(image_h) + "x" +
              std::to_string(image_w));
  require(dim > 0 && depth > 0 && heads > 0 && mlp_dim > 0 && num_classes > 0,
          "dim, depth, heads, mlp_dim and num_classes must be positive");
  require(dim % heads == 0, "heads " + std::to_string(heads) + " must divide dim " + std::to_string(dim));
  require(!(dist_token && !class_token), "a distillation token needs a class token");
  require(!(pooling == Pooling::Token && !class_token), "token pooling needs a class token");
  require(!(dist_token && pooling != Pooling::Token), "a distilled model pools by token");
  require(ln_eps > 0.0f, "LayerNorm eps must be positive");
  // Offsets are int64 but GEMM sizes are int: keep every matrix dimension in range.
  require(int64_t(tokens()) * dim < (int64_t(1) << 31) && int64_t(tokens()) * tokens() < (int64_t(1) << 31),
          "model too large for 32-bit matrix dimensions");
}

int64_t VitConfig::forward_macs() const {
  const int64_t N = tokens(), D = dim, M = mlp_dim;
  int64_t macs = int64_t(patches()) * patch_len() * D;  // patch embedding
  const int64_t per_block = N * D * 3 * D   // qkv
                            + 2 * N * N * D  // q·kᵀ and probs·v over all heads
                            + N * D * D      // proj
                            + 2 * N * D * M;  // fc1, fc2
  macs += depth * per_block;
  macs += int64_t(dist_token ? 2 : 1) * D * num_classes;
  return macs;
}

}  // namespace spdfq
