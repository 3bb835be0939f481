// PSAQ-ViT's patch-similarity entropy (Li et al., ECCV 2022; its official generate_data.py
// and utils/kde.py), on the engine's A·V tap of one block.
//
// Patch features F [P, hd] = the per-head attention outputs averaged over heads, prefix
// (class/distillation) tokens dropped. S_ij = cos(F_i, F_j) over all pairs, diagonal
// included (M = P² values). Density: Gaussian KDE with bandwidth h,
//   p(t) = (1/M) Σ_m exp(−(t − s_m)²/(2h²)) / (h√(2π)),
// at `points` evenly spaced t_k between the batch-wide min and max of S (constants: the
// endpoints carry no gradient). Entropy H = trapz_k f(p_k + 1e-4), f(p) = −p·log p.
// PSAQ-ViT minimizes −Σ_blocks mean_images H.
#pragma once

#include <cstdint>

#include "../cpu/thread_pool.h"

namespace spdfq::synth {

struct PatchSimilarityShape {
  int B, N, D, H, prefix;  // images, tokens (per window), model width, heads, prefix tokens
  // Windowed features (Swin; docs/swin.md, "Stage: synthesis"): each image holds `windows`
  // windows of N rows, and similarities are taken within each window, over its real rows
  // (slots[w·N + t] ≥ 0; nullptr: all). One KDE per image pools every window's similarities,
  // as PSAQ-ViT's view(batch, −1) does. windows = 1, slots = nullptr: the ViT's one group
  // of rows prefix … N−1.
  int windows = 1;
  const int32_t* slots = nullptr;
};

// The offset PSAQ-ViT adds inside the entropy's logarithm.
constexpr double kEntropyDensityOffset = 1e-4;

// Batch-wide min and max of the similarities of `av` [B, windows·N, D] (merged-heads A·V).
void patch_similarity_range(float* lo, float* hi, const float* av, const PatchSimilarityShape& s,
                            cpu::ThreadPool* pool);

// Returns Σ_b H_b over the B images (per_image, if non-null, gets each H_b). When dav is
// non-null, ADDS scale · d(Σ_b H_b)/d av into it ([B, windows·N, D]; prefix and padding
// rows untouched).
double patch_similarity_entropy(float* dav, double* per_image, const float* av, const PatchSimilarityShape& s,
                                float bandwidth, int points, float lo, float hi, double scale,
                                cpu::ThreadPool* pool);

}  // namespace spdfq::synth
