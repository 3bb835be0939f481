// The synthesis run as plain data: every option of lib/synth/options.ts, fully defaulted
// by the TypeScript layer (which documents each default and its source). The native side
// trusts the values' meaning but `validate` re-checks ranges against the model, because
// the core is also usable without the TypeScript layer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>


namespace spdfq::synth {

struct SynthModel;  // synth_engine.h

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

// Every field is set by the binding from the TypeScript layer's resolved options: the
// defaults and their sources live there (lib/synth/options.ts), once; here fields start
// zeroed, and `validate` rejects a config that was not filled.

// One optimization round: its own cosine schedule with warm-up and jitter limit; Adam's
// moments carry over between rounds (PSAQ-ViT keeps one optimizer for both of its rounds).
struct SynthRound {
  int iters{};
  int warmup{};
  int roll_max_h{};  // random roll of up to ± this many pixels, rows
  int roll_max_w{};  // and columns
};

struct SynthConfig {
  int images{};
  uint64_t seed{};
  std::vector<SynthRound> rounds;

  // Adam on the pixels (PyTorch's update rule) with base learning rate `lr`.
  float lr{}, beta1{}, beta2{}, adam_eps{};
  float init_std{};  // Gaussian initialization in normalized space
  bool flip{};       // random horizontal flip of the batch, p = 0.5 per step
  // Valid normalized range per channel: ((0 − mean)/std, (1 − mean)/std).
  std::vector<float> clamp_lo, clamp_hi;

  // Each image's own class: given (length `images`), or drawn (uniform or balanced).
  std::vector<int32_t> targets;
  bool balanced_targets{};

  ClsLoss cls{};
  float cls_weight{};
  float soft_logit_min{}, soft_logit_max{};  // SL: Z_c ~ U(min, max)

  // APA.
  bool apa{};
  double apa_alpha{};  // ≤ 0: automatic, α·L_APA = L_cls at step 0
  int apa_components{};  // K_APA: k ~ U{1..K}
  float prior_std_min{};           // per-component std in patches: U[min, grid·frac]
  float prior_std_max_fraction{};
  std::vector<int> apa_blocks;          // 0-based block indices aligned (Swin: stage-major)
  bool apa_depth_weight{};         // weight (l/L), l 1-based
  ApaQuery apa_query{};
  ApaLoss apa_loss{};
  bool apa_prior_per_block{};     // false: one prior per (image, head) for all blocks

  // MSR.
  bool msr{};
  int msr_max_regions{};  // K_MSR: m ~ U{1..K} regions per image per step
  int msr_grid{};         // regions lie in distinct cells of a grid × grid split
  float msr_box_min{}, msr_box_max{};  // box side = U[min, max] × cell side
  bool msr_flip{};                 // random horizontal flip of each region
  bool msr_resample_classes{};    // false: one class per (image, cell) for the run

  // Image prior.
  TvForm tv{};
  float tv_weight{};
  bool tv_target{};                // PSAQ-ViT: |TV − v| instead of TV
  float tv_target_min{}, tv_target_max{};
  double tv_target_scale{};          // v is multiplied by this (batch and image size)

  // PSAQ-ViT's patch-similarity entropy.
  bool pse{};
  float pse_weight{};
  float kde_bandwidth{};
  int kde_points{};
  std::vector<int> pse_blocks;  // 0-based; PSAQ-ViT uses every block

  // Working memory the loop may use (images, Adam moments, the model's activations, tap
  // gradients, region crops); passes are split into micro-batches to stay below it.
  int64_t memory_budget{};

  // The images this process optimizes: [shard_begin, shard_end) of the batch ([0, images)
  // unsplit). Every draw, the micro-batch plan and every loss normalizer stay the whole
  // batch's, so the shards of a batch together give the unsplit run's images bit for bit
  // (synth_loop.h says how; docs/scale-out.md). Parts that couple all images within a step
  // (PSAQ-ViT's patch-similarity range and TV target, the L2 TV norm) would need the other
  // shards' images at every step, so a shard refuses them.
  int shard_begin{}, shard_end{};
  bool sharded() const { return shard_begin > 0 || shard_end < images; }

  int total_iters() const {
    int n = 0;
    for (const auto& r : rounds) n += r.iters;
    return n;
  }
  // Throws spdfq::Error("E_CONFIG") naming the field, the expected and the found value.
  void validate(const SynthModel& model) const;
};

}  // namespace spdfq::synth
