// The synthesis run as plain data: every option of lib/synth/options.ts, fully defaulted
// by the TypeScript layer (which documents each default and its source). The native side
// trusts the values' meaning but `validate` re-checks ranges against the model, because
// the core is also usable without the TypeScript layer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../core/vit_config.h"

namespace spdfq::synth {

// Classification term on whole images and regions: none, hard labels (plain
// cross-entropy, PSAQ-ViT and inversion) or SPDFQ's soft labels (SL).
enum class ClsLoss { None, Hard, Soft };
// Image prior: PSAQ-ViT's sum of the L2 norms of the four directional neighbour
// differences over the whole batch, or the sum of their mean absolute values.
enum class TvForm { None, L2, L1 };
// Which attention row APA aligns: the class token's, or the mean over all queries.
enum class ApaQuery { Class, Mean };
// How APA compares the renormalized attention map a with the prior p (both sum to 1 over
// the P patches): the paper's MSE, (1/P)·Σ(a − p)², whose size falls as 1/P² (entries are
// ~1/P); the MSE relative to the prior's own mean square, Σ(a − p)² / Σp²; or the
// Kullback–Leibler divergence KL(p ‖ a) = Σ p·log(p/a). The last two are O(1) whatever P.
enum class ApaLoss { Mse, RelativeMse, Kl };

// One optimization round: its own cosine schedule with warm-up and jitter limit; Adam's
// moments carry over between rounds (PSAQ-ViT keeps one optimizer for both of its rounds).
struct SynthRound {
  int iters = 1000;
  int warmup = 100;
  int roll_max_h = 15;  // random roll of up to ± this many pixels, rows
  int roll_max_w = 15;  // and columns
};

struct SynthConfig {
  int images = 32;
  uint64_t seed = 0;
  std::vector<SynthRound> rounds{SynthRound{}};

  // Adam on the pixels (PyTorch's update rule) with base learning rate `lr`.
  float lr = 0.25f, beta1 = 0.5f, beta2 = 0.9f, adam_eps = 1e-8f;
  float init_std = 1.0f;  // Gaussian initialization in normalized space
  bool flip = true;       // random horizontal flip of the batch, p = 0.5 per step
  // Valid normalized range per channel: ((0 − mean)/std, (1 − mean)/std).
  std::vector<float> clamp_lo, clamp_hi;

  // Each image's own class: given (length `images`), or drawn (uniform or balanced).
  std::vector<int32_t> targets;
  bool balanced_targets = false;

  ClsLoss cls = ClsLoss::Soft;
  float cls_weight = 1.0f;
  float soft_logit_min = 5.0f, soft_logit_max = 10.0f;  // SL: Z_c ~ U(min, max)

  // APA.
  bool apa = true;
  double apa_alpha = 0.0;  // ≤ 0: automatic, α·L_APA = L_cls at step 0
  int apa_components = 5;  // K_APA: k ~ U{1..K}
  float prior_std_min = 0.5f;           // per-component std in patches: U[min, grid·frac]
  float prior_std_max_fraction = 1.0f / 3.0f;
  std::vector<int> apa_blocks;          // 0-based block indices aligned
  bool apa_depth_weight = true;         // weight (l/L), l 1-based
  ApaQuery apa_query = ApaQuery::Class;
  ApaLoss apa_loss = ApaLoss::Mse;
  bool apa_prior_per_block = false;     // false: one prior per (image, head) for all blocks

  // MSR.
  bool msr = true;
  int msr_max_regions = 4;  // K_MSR: m ~ U{1..K} regions per image per step
  int msr_grid = 2;         // regions lie in distinct cells of a grid × grid split
  float msr_box_min = 0.5f, msr_box_max = 1.0f;  // box side = U[min, max] × cell side
  bool msr_flip = true;                 // random horizontal flip of each region
  bool msr_resample_classes = false;    // false: one class per (image, cell) for the run

  // Image prior.
  TvForm tv = TvForm::L2;
  float tv_weight = 0.05f;
  bool tv_target = false;                // PSAQ-ViT: |TV − v| instead of TV
  float tv_target_min = 2500.0f, tv_target_max = 3000.0f;
  double tv_target_scale = 1.0;          // v is multiplied by this (batch and image size)

  // PSAQ-ViT's patch-similarity entropy.
  bool pse = false;
  float pse_weight = 1.0f;
  float kde_bandwidth = 0.01f;
  int kde_points = 10;
  std::vector<int> pse_blocks;  // 0-based; PSAQ-ViT uses every block

  // Working memory the loop may use (images, Adam moments, the model's activations, tap
  // gradients, region crops); passes are split into micro-batches to stay below it.
  int64_t memory_budget = int64_t(4) << 30;

  int total_iters() const {
    int n = 0;
    for (const auto& r : rounds) n += r.iters;
    return n;
  }
  // Throws spdfq::Error("E_CONFIG") naming the field, the expected and the found value.
  void validate(const VitConfig& model) const;
};

}  // namespace spdfq::synth
