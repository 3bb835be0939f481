// The synthesis loop: optimizes a batch of calibration images on a frozen ViT with Adam
// on the pixels, from a plain SynthConfig (SPDFQ, PSAQ-ViT and the plain inversion are
// the same loop with different loss parts switched on). The model is any SynthEngine
// (synth_engine.h): a ViT on the CPU or on CUDA (cuda_synth_engine.h), or a Swin on the CPU
// (swin_synth_engine.h), whose taps are per window (TapLayout). The images, the optimizer
// and the losses live on the host either way.
//
// Per step: draw the step's randomness (roll + flip of the whole batch; MSR regions),
// then for each micro-batch of images: forward the jittered images, the classification
// loss on their targets, APA at the attention taps and PSAQ-ViT's patch-similarity
// entropy at the A·V taps, backward to the pixels; then forward/backward the images' MSR
// regions (crop + resize, their own targets) and scatter their gradients into the boxes;
// add the TV prior; check every loss part and the gradient for NaN/Inf; Adam step; clamp.
//
// Every loss is a sum of per-image (or per-region) terms over a normalizer fixed before
// the passes (images B, or classified samples B + R); the TV prior and the PSAQ-ViT
// similarity range are batch-wide and computed on the whole batch. The classification
// gradient is rounded per pass, as (p − y)/n · float(w·n) with n the pass's samples, so the
// micro-batch plan (from the memory budget and, on the CPU, the thread count) is part of
// the result: results are deterministic for a seed, a thread count and a memory budget.
//
// Shards (SynthConfig::shard_begin/end): a shard optimizes a slice of the batch and must
// give exactly the unsplit run's images for it. It draws everything for the whole batch,
// plans the whole batch's micro-batches and walks them, passing only its own images (and
// their regions) of each, with each sample's gradient divided by the n of the unsplit pass
// it belongs to; auto α is measured on the whole batch at step 0 (its images are the
// seed's). That is exact because every engine op is per sample and the CPU GEMM computes
// each element with one FMA chain over K whatever M and N (gemm_pack.h): a row's result does
// not depend on the rows beside it. test/synth.shard.test.ts checks it bit for bit.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../cpu/swin_cpu.h"
#include "../cpu/thread_pool.h"
#include "../cpu/vit_cpu.h"
#include "attention_prior.h"
#include "augment.h"
#include "msr_regions.h"
#include "synth_config.h"
#include "synth_engine.h"

namespace spdfq::synth {

struct StepLosses {
  double total = 0;        // α·apa + w_cls·cls + w_tv·tv + w_pse·pse
  double apa = 0;          // Σ_l (l/L) Σ_h MSE, mean over images (unweighted by α)
  double cls = 0;          // soft or hard cross-entropy, mean over images and regions
  double tv = 0;           // TV, or |TV − v| with PSAQ-ViT's target
  double pse = 0;          // −Σ_blocks mean_images entropy
  double target_prob = 0;  // mean softmax probability of each (jittered) image's own class
};

struct SynthProgress {
  int step = 0;  // 0-based global step just completed
  int total_steps = 0;
  int round = 0;
  double lr = 0;
  double alpha = 0;
  StepLosses losses;
  double images_per_second = 0;  // whole images optimized per second, over the last step
  double seconds = 0;            // since the loop started
  // < 1 while `step` is still under way: large batches also report each finished
  // micro-batch (at most every kChunkProgressSeconds), so progress never stalls for long.
  double step_fraction = 1.0;
};
using ProgressFn = std::function<void(const SynthProgress&)>;

// How the loop ended early; code is empty when it ran to the end.
struct SynthStop {
  std::string code;  // "E_CANCELLED" or "E_NUMERIC"
  std::string part;  // E_NUMERIC: "apa", "cls", "tv", "pse", "gradient" or "alpha"
  int step = -1;
  std::string message;
};

// Micro-batching chosen from the memory budget.
struct SynthPlan {
  int chunk_images = 0;  // whole images per pass
  int region_batch = 0;  // regions per pass (0 without MSR)
  int64_t bytes = 0;     // working memory at that plan (SynthEngine::plan_bytes: on CUDA, device memory)
};

struct SynthResult {
  std::vector<float> images;           // [B, C, H, W], normalized space
  std::vector<int32_t> targets;        // [B] each image's own class
  std::vector<float> target_logits;    // [B] SL logit Z of the own class
  std::vector<int32_t> cell_classes;   // [B, grid²] MSR classes per cell (fixed mode)
  std::vector<float> cell_logits;      // [B, grid²] their SL logits
  // APA priors, one table per prior group (TapLayout::group: the ViT's one; a Swin's aligned
  // stages, in stage order), sets = 1 or one per aligned block of the group.
  std::vector<AttentionPriors> priors;
  std::vector<int> prior_groups;       // the group of each table
  std::vector<StepLosses> history;     // one entry per completed step
  std::vector<double> lrs;             // learning rate of each completed step
  double alpha = 0;                    // α used for APA
  int steps_done = 0;
  SynthStop stop;
  double seconds = 0;
  SynthPlan plan;
};

class Synthesizer {
 public:
  // Validates the config against the model and plans the micro-batches (E_MEMORY when
  // even one image per pass does not fit the budget). Draws targets and priors.
  Synthesizer(std::unique_ptr<SynthEngine> engine, SynthConfig config);
  // On the CPU engines.
  Synthesizer(cpu::CpuVit& model, SynthConfig config);
  Synthesizer(cpu::CpuSwin& model, SynthConfig config);

  const SynthPlan& plan() const { return plan_; }
  const SynthConfig& config() const { return cfg_; }
  const SynthModel& model() const { return info_; }

  // Runs every round. Cancellation and NaN/Inf end the loop early with result.stop set and
  // the images of the last completed step; any other failure throws spdfq::Error.
  SynthResult run(const std::atomic<bool>* cancel, const ProgressFn& progress);

  // The loss parts at `images` [B, C, H, W] with the randomness of global step `step`, and,
  // if grad is non-null, d total / d images into it (overwritten). For tests and tools.
  // In a shard: its images' parts of the losses and of the gradient (the rest of grad is
  // left as it was).
  StepLosses objective(const float* images, int step, double alpha, float* grad, const std::atomic<bool>* cancel);

 private:
  struct StepDraw {
    StepAugment aug;
    std::vector<Region> regions;
    std::vector<int32_t> region_cls;
    std::vector<float> region_logit;
    std::vector<int> first_region;  // [B + 1] regions of image b: [first[b], first[b+1])
  };
  StepDraw draw_step(int step) const;
  // objective() over the images [b_begin, b_end) of the batch (the rest as in the unsplit
  // run: the whole batch's draws, passes and normalizers).
  StepLosses objective_over(const float* x, int step, double alpha, float* grad, const std::atomic<bool>* cancel,
                            int b_begin, int b_end);
  int round_of(int step) const;
  void draw_targets();
  void draw_priors();
  SynthPlan make_plan() const;
  void ensure_buffers();
  int64_t plan_bytes(int n) const;
  void init_images(std::vector<float>* x) const;
  void clamp_images(float* x) const;
  // Parts of objective() (synth_parts.cc says what each computes).
  void move_priors(const StepAugment& aug);
  double classify(const float* logits, int m, int n, const int32_t* labels, double w);
  double image_targets(const StepDraw& d, int b0, int n, const float* logits, int32_t* labels);
  double attention_prior_loss(int b0, int n, double alpha, bool grad, TapGrads* taps);
  double region_passes(const float* x, const StepDraw& d, int r_begin, int r_end, int own_begin, int own_end,
                       double w_cls, float* grad, int32_t* labels, const std::atomic<bool>* cancel);
  double image_prior(const float* x, float* grad, int b_begin, int b_end) const;
  // fn(i) for i in [0, n), on the pool when there is one and n > 1.
  template <class F>
  void parallel(int64_t n, F&& fn) {
    if (pool_.threads() > 1 && n > 1)
      pool_.parallel_for(n, [&](int64_t i, int) { fn(i); });
    else
      for (int64_t i = 0; i < n; ++i) fn(i);
  }

  // Called after each micro-batch of a step's whole images (done, total); run() reports it.
  std::function<void(int, int)> chunk_done_;
  std::unique_ptr<SynthEngine> engine_;
  SynthEngine& model_;
  SynthModel info_;
  std::vector<TapLayout> layouts_;  // per block
  SynthConfig cfg_;
  SynthPlan plan_;
  cpu::ThreadPool pool_;
  int cells_ = 0;
  std::vector<int32_t> targets_, cell_classes_;
  std::vector<float> target_logits_, cell_logits_;
  // APA: one prior table per group (SynthResult::priors) and, per aligned block, its table
  // and set.
  std::vector<AttentionPriors> priors_;
  std::vector<int> prior_groups_, prior_block_;  // per table: its group, its first aligned block
  std::vector<int> apa_table_, apa_set_;
  double tv_target_ = 0;
  // Working buffers, sized by the plan.
  std::vector<float> xin_, dxin_, dlogits_, targets_buf_;
  std::vector<std::vector<float>> apa_taps_, pse_taps_;
  std::vector<std::vector<float>> prior_aug_;  // per table, moved with the step's jitter
};

// Moves a prior map [gh, gw] with the step's jitter, so it stays on the image content the
// model sees: aug patch (r, q) reads the prior at (r − dy/p, q − dx/p), columns mirrored
// first when flipped, bilinear with wrap-around (as torch.roll wraps), which keeps the sum.
void jitter_prior(float* out, const float* prior, int gh, int gw, int patch, const StepAugment& a);

}  // namespace spdfq::synth
