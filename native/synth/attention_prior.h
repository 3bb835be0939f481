// APA's structured attention priors: random 2-D Gaussian mixtures over the patch grid,
// one per (image, head) — or per (image, aligned block, head) — drawn once, seeded.
//
// [summary] K_APA bounds the number of components. [ours] k ~ U{1..K}; means uniform over
// the grid (continuous, in patch-centre coordinates 0 … g−1); per-component diagonal std
// U[std_min, g·std_max_fraction] patches per axis (g = that axis' grid size); mixture
// weights ~ Dirichlet(1); the density is evaluated at the patch centres and the map is
// normalized to sum 1 over the patches.
#pragma once

#include <cstdint>
#include <vector>

#include "rng.h"

namespace spdfq::synth {

struct PriorSpec {
  int components_max = 5;
  float std_min = 0.5f;
  float std_max_fraction = 1.0f / 3.0f;
};

struct PriorComponent {
  float weight;       // mixture weight (a Dirichlet(1) draw, the map's components sum to 1)
  float mu_y, mu_x;   // mean, patch-centre coordinates
  float sd_y, sd_x;   // diagonal standard deviations, patches
};

struct AttentionPriors {
  int images = 0, sets = 0, heads = 0, grid_h = 0, grid_w = 0;
  int window_h = 0, window_w = 0;         // window priors (sample_window_priors); 0: one mixture per map
  std::vector<float> maps;                // [images, sets, heads, grid_h·grid_w], each map (or window tile) sums to 1
  std::vector<int> counts;                // [images, sets, heads(, tiles)] components per map (per tile)
  std::vector<PriorComponent> components; // all maps' components, in map order

  int patches() const { return grid_h * grid_w; }
  const float* map(int image, int set, int head) const {
    return maps.data() + ((int64_t(image) * sets + set) * heads + head) * patches();
  }
};

// One mixture map into `out` [gh·gw]; appends its components to `comps` when given.
void sample_attention_prior(float* out, int gh, int gw, const PriorSpec& spec, Rng& rng,
                            std::vector<PriorComponent>* comps);

// Every map for `images` images, `sets` prior sets (1, or one per aligned block) and
// `heads` heads. Image b's maps come from their own stream (seed, Priors, b), so they do
// not depend on how many images are drawn.
AttentionPriors sample_attention_priors(int images, int sets, int heads, int gh, int gw, const PriorSpec& spec,
                                        uint64_t seed);

// Window priors for windowed attention (Swin; docs/swin.md, "Stage: synthesis"): each map
// over a stage's token grid [gh, gw] is tiled by the unshifted wh × ww windows of the padded
// grid, and every tile holds its own mixture drawn as above on the tile's wh × ww grid (the
// part of a tile on padding tokens is cut off). A block reads the map through its windows'
// rows, so a shifted window sees the pieces of the four tiles it overlaps: the prior is a map
// of the image's tokens, like the ViT's, and moves with the jitter the same way. Image b of
// group g (the stage) draws from its own stream (seed, Priors, b | (g + 1) << 40).
AttentionPriors sample_window_priors(int images, int sets, int heads, int gh, int gw, int wh, int ww, int group,
                                     const PriorSpec& spec, uint64_t seed);

}  // namespace spdfq::synth
