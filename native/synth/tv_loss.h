// Total-variation image prior over a batch [B, C, H, W], the four neighbour differences of
// PSAQ-ViT's get_image_prior_losses (from DeepInversion): horizontal x[y,x]−x[y,x+1],
// vertical x[y,x]−x[y+1,x], and the two diagonals x[y+1,x]−x[y,x+1], x[y,x]−x[y+1,x+1].
//   L2 (PSAQ-ViT): Σ_dir ‖Δ_dir‖₂, each norm over the whole batch tensor.
//   L1:            Σ_dir mean |Δ_dir| over the batch tensor.
#pragma once

#include <cstdint>

#include "synth_config.h"

namespace spdfq::synth {

// Returns the TV value; when dx is non-null ADDS scale · dTV/dx into it. 'l1' takes its
// means over the pairs of `mean_images` images (0: B), so that a slice of a batch gets its
// part of the whole batch's value and exactly its gradient.
double tv_loss(float* dx, const float* x, int B, int C, int H, int W, TvForm form, double scale, int mean_images = 0);

}  // namespace spdfq::synth
