// Range checks of the synthesis config against the model it will run on.
#include "synth_config.h"

#include <cmath>
#include <string>

#include "../core/errors.h"
#include "synth_engine.h"

namespace spdfq::synth {

namespace {
template <class T>
void require(bool ok, const char* field, const std::string& expected, T found) {
  if (!ok) fail("E_CONFIG", std::string("synthesis option ") + field + ": expected " + expected + ", found " + std::to_string(found));
}
}  // namespace

void SynthConfig::validate(const SynthModel& m) const {
  require(images >= 1 && images <= (1 << 20), "images", "an integer in [1, 1048576]", images);
  require(!rounds.empty(), "rounds", "at least one round", int(rounds.size()));
  for (const auto& r : rounds) {
    require(r.iters >= 0, "rounds[].iters", "≥ 0", r.iters);
    require(r.warmup >= 0 && r.warmup <= r.iters, "rounds[].warmup", "in [0, iters]", r.warmup);
    require(r.roll_max_h >= 0 && r.roll_max_h < m.image_h, "rounds[].roll_max_h", "in [0, image height)", r.roll_max_h);
    require(r.roll_max_w >= 0 && r.roll_max_w < m.image_w, "rounds[].roll_max_w", "in [0, image width)", r.roll_max_w);
  }
  require(std::isfinite(lr) && lr > 0, "lr", "a positive finite number", lr);
  require(beta1 >= 0 && beta1 < 1, "beta1", "in [0, 1)", beta1);
  require(beta2 >= 0 && beta2 < 1, "beta2", "in [0, 1)", beta2);
  require(adam_eps > 0 && std::isfinite(adam_eps), "adam_eps", "a positive finite number", adam_eps);
  require(init_std >= 0 && std::isfinite(init_std), "init_std", "≥ 0", init_std);
  require(int(clamp_lo.size()) == m.channels, "clamp_lo", "one value per channel (" + std::to_string(m.channels) + ")",
          int(clamp_lo.size()));
  require(int(clamp_hi.size()) == m.channels, "clamp_hi", "one value per channel (" + std::to_string(m.channels) + ")",
          int(clamp_hi.size()));
  for (int c = 0; c < m.channels; ++c)
    require(std::isfinite(clamp_lo[c]) && std::isfinite(clamp_hi[c]) && clamp_lo[c] < clamp_hi[c], "clamp_lo/clamp_hi",
            "finite lo < hi per channel", c);
  require(targets.empty() || int(targets.size()) == images, "targets", "empty or one class per image",
          int(targets.size()));
  for (int32_t t : targets) require(t >= 0 && t < m.num_classes, "targets[]", "a class in [0, num_classes)", t);
  require(cls_weight >= 0 && std::isfinite(cls_weight), "cls_weight", "≥ 0", cls_weight);
  require(soft_logit_min <= soft_logit_max && std::isfinite(soft_logit_min) && std::isfinite(soft_logit_max),
          "soft_logit_min/max", "finite min ≤ max", soft_logit_min);
  if (apa) {
    require(std::isfinite(apa_alpha), "apa_alpha", "a finite number (≤ 0 for automatic)", apa_alpha);
    require(apa_components >= 1, "apa_components", "≥ 1", apa_components);
    require(prior_std_min > 0, "prior_std_min", "> 0", prior_std_min);
    require(prior_std_max_fraction > 0, "prior_std_max_fraction", "> 0", prior_std_max_fraction);
    require(!apa_blocks.empty(), "apa_blocks", "at least one block", 0);
    for (int b : apa_blocks) require(b >= 0 && b < m.blocks, "apa_blocks[]", "a block index in [0, blocks)", b);
    require(apa_query == ApaQuery::Mean || m.class_token, "apa_query", "'mean' for a model without a class token", 0);
    require(cls != ClsLoss::None || apa_alpha > 0, "apa_alpha",
            "an explicit value when there is no classification loss to balance against", apa_alpha);
  }
  if (msr) {
    require(msr_grid >= 1 && msr_grid <= m.image_h && msr_grid <= m.image_w, "msr_grid", "in [1, image side]", msr_grid);
    require(msr_max_regions >= 1 && msr_max_regions <= msr_grid * msr_grid, "msr_max_regions",
            "in [1, grid²] (regions lie in distinct cells)", msr_max_regions);
    require(msr_box_min > 0 && msr_box_min <= msr_box_max && msr_box_max <= 1, "msr_box_min/max",
            "0 < min ≤ max ≤ 1", msr_box_min);
    require(cls != ClsLoss::None, "msr", "a classification loss (regions are optimized toward their class)", 0);
  }
  require(tv_weight >= 0 && std::isfinite(tv_weight), "tv_weight", "≥ 0", tv_weight);
  require(!tv_target || (tv_target_min <= tv_target_max && tv_target_min >= 0), "tv_target_min/max", "0 ≤ min ≤ max",
          tv_target_min);
  require(std::isfinite(tv_target_scale) && tv_target_scale > 0, "tv_target_scale", "> 0", tv_target_scale);
  if (pse) {
    require(pse_weight >= 0 && std::isfinite(pse_weight), "pse_weight", "≥ 0", pse_weight);
    require(kde_bandwidth > 0 && std::isfinite(kde_bandwidth), "kde_bandwidth", "> 0", kde_bandwidth);
    require(kde_points >= 2, "kde_points", "≥ 2", kde_points);
    require(!pse_blocks.empty(), "pse_blocks", "at least one block", 0);
    for (int b : pse_blocks) require(b >= 0 && b < m.blocks, "pse_blocks[]", "a block index in [0, blocks)", b);
  }
  require(memory_budget >= 1, "memory_budget", "≥ 1 byte", memory_budget);
  require(shard_begin >= 0 && shard_begin < shard_end && shard_end <= images, "shard_begin/shard_end",
          "0 ≤ begin < end ≤ images", shard_begin);
  // The TS layer refuses these with the reason (lib/synth/options.ts); here for callers of
  // the core without it.
  if (sharded()) {
    require(!pse, "pse", "off in a shard (the patch-similarity range spans the whole batch)", 1);
    require(!tv_target, "tv_target", "off in a shard (the TV target is on the whole batch's TV)", 1);
    require(tv != TvForm::L2, "tv", "'l1' or 'none' in a shard (the L2 norm spans the whole batch)", 1);
  }
}

}  // namespace spdfq::synth
