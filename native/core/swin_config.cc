#include "swin_config.h"

#include "errors.h"

namespace spdfq {

namespace {
void require(bool ok, const std::string& what) {
  if (!ok) fail("E_CONFIG", "Swin config: " + what);
}
std::string str(int v) { return std::to_string(v); }
}  // namespace

int SwinConfig::blocks() const {
  int n = 0;
  for (int d : depths) n += d;
  return n;
}

int SwinConfig::grid_h(int s) const {
  int g = image_h / patch;
  for (int i = 0; i < s; ++i) g = (g + 1) / 2;
  return g;
}

int SwinConfig::grid_w(int s) const {
  int g = image_w / patch;
  for (int i = 0; i < s; ++i) g = (g + 1) / 2;
  return g;
}

void SwinConfig::validate() const {
  require(image_h > 0 && image_w > 0 && channels > 0, "imageHeight, imageWidth and channels must be positive");
  require(patch > 0, "patchSize must be positive, received " + str(patch));
  require(image_h % patch == 0 && image_w % patch == 0,
          "patchSize " + str(patch) + " must divide the image size " + str(image_h) + "x" + str(image_w) +
              " (torchvision's Conv2d would drop the remainder; this engine refuses instead)");
  require(embed_dim > 0, "embedDim must be positive, received " + str(embed_dim));
  require(!depths.empty() && depths.size() <= 8, "depths: expected 1 to 8 stages, received " + str(int(depths.size())));
  require(heads.size() == depths.size(), "numHeads: expected one entry per stage (" + str(int(depths.size())) +
                                             "), received " + str(int(heads.size())));
  for (int s = 0; s < stages(); ++s) {
    const std::string at = "[" + str(s) + "]";
    require(depths[size_t(s)] > 0, "depths" + at + " must be positive, received " + str(depths[size_t(s)]));
    require(heads[size_t(s)] > 0 && dim(s) % heads[size_t(s)] == 0,
            "numHeads" + at + " = " + str(heads[size_t(s)]) + " must divide the stage width " + str(dim(s)));
    require(mlp_dim(s) > 0, "mlpRatio gives an empty MLP in stage " + str(s));
  }
  require(int64_t(embed_dim) << (stages() - 1) < (int64_t(1) << 24), "embedDim × 2^(stages−1) is too large");
  require(window_h > 0 && window_w > 0, "windowSize must be positive, received " + str(window_h) + "x" + str(window_w));
  require(mlp_ratio > 0.0f, "mlpRatio must be positive");
  require(ln_eps > 0.0f, "layerNormEps must be positive");
  require(num_classes > 0, "numClasses must be positive, received " + str(num_classes));
  // Offsets are int64 but GEMM sizes and gather indices are int: keep them in range.
  const int64_t wt = window_tokens();
  require(wt * wt < (int64_t(1) << 24), "windowSize " + str(window_h) + "x" + str(window_w) + " is too large");
  require(int64_t(padded_h(0)) * padded_w(0) * dim(0) < (int64_t(1) << 31),
          "model too large for 32-bit matrix dimensions");
}

int64_t SwinConfig::forward_macs() const {
  int64_t macs = int64_t(tokens(0)) * patch_len() * dim(0);  // patch embedding
  const int64_t N = window_tokens();
  for (int s = 0; s < stages(); ++s) {
    const int64_t T = tokens(s), Tp = int64_t(windows(s)) * N, D = dim(s), M = mlp_dim(s);
    const int64_t per_block = Tp * D * 3 * D    // qkv (padded tokens included)
                              + 2 * Tp * N * D   // q·kᵀ and probs·v over all heads
                              + Tp * D * D       // proj
                              + 2 * T * D * M;   // fc1, fc2
    macs += depths[size_t(s)] * per_block;
    if (s + 1 < stages()) macs += int64_t(tokens(s + 1)) * 4 * D * 2 * D;  // merge reduction
  }
  macs += int64_t(features()) * num_classes;
  return macs;
}

}  // namespace spdfq
