// The synthesis loop (see synth_loop.h for the step and the conventions).
#include "synth_loop.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>

#include "../core/errors.h"
#include "../core/fast_math.h"
#include "../cpu/ops.h"
#include "adam.h"
#include "patch_similarity.h"
#include "rng.h"
#include "swin_synth_engine.h"

namespace spdfq::synth {

namespace {

void zero(float* p, int64_t n) { std::memset(p, 0, size_t(n) * sizeof(float)); }

bool all_finite(const float* p, int64_t n) {
  // Summing would hide a +Inf/−Inf pair; x − x is NaN exactly for NaN and ±Inf.
  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) acc += p[i] - p[i];
  return acc == 0.0f;
}

std::string mib(int64_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }

}  // namespace

void jitter_prior(float* out, const float* prior, int gh, int gw, int patch, const StepAugment& a) {
  const double sy = double(a.dy) / patch, sx = double(a.dx) / patch;
  auto wrap = [](double v, int n) {
    v = std::fmod(v, double(n));
    return v < 0 ? v + n : v;
  };
  for (int r = 0; r < gh; ++r) {
    const double fy = wrap(r - sy, gh);
    const int y0 = int(fy) % gh, y1 = (y0 + 1) % gh;
    const double ly = fy - std::floor(fy);
    for (int q = 0; q < gw; ++q) {
      const double fx = wrap((a.flip ? gw - 1 - q : q) - sx, gw);
      const int x0 = int(fx) % gw, x1 = (x0 + 1) % gw;
      const double lx = fx - std::floor(fx);
      const double top = (1 - lx) * prior[y0 * gw + x0] + lx * prior[y0 * gw + x1];
      const double bot = (1 - lx) * prior[y1 * gw + x0] + lx * prior[y1 * gw + x1];
      out[r * gw + q] = float((1 - ly) * top + ly * bot);
    }
  }
}

Synthesizer::Synthesizer(cpu::CpuVit& model, SynthConfig config)
    : Synthesizer(std::make_unique<CpuSynthEngine>(model), std::move(config)) {}

Synthesizer::Synthesizer(cpu::CpuSwin& model, SynthConfig config)
    : Synthesizer(std::make_unique<CpuSwinSynthEngine>(model), std::move(config)) {}

Synthesizer::Synthesizer(std::unique_ptr<SynthEngine> engine, SynthConfig config)
    : engine_(std::move(engine)),
      model_(*engine_),
      info_(model_.model()),
      cfg_(std::move(config)),
      pool_(model_.host_threads()) {
  for (int l = 0; l < info_.blocks; ++l) layouts_.push_back(model_.tap_layout(l));
  cfg_.validate(info_);
  // PSAQ-ViT's similarities need two patch tokens in a block (a window: real tokens).
  if (cfg_.pse)
    for (int l : cfg_.pse_blocks)
      if (layouts_[size_t(l)].tokens - layouts_[size_t(l)].prefix < 2)
        fail("E_CONFIG", "synthesis option pse: expected a model with at least 2 patches per block (per window), found " +
                             std::to_string(layouts_[size_t(l)].tokens - layouts_[size_t(l)].prefix));
  cells_ = cfg_.msr_grid * cfg_.msr_grid;
  draw_targets();
  if (cfg_.apa) draw_priors();
  if (cfg_.tv_target) {
    Rng rng = Rng::stream(cfg_.seed, Stream::TvTarget);
    tv_target_ = rng.uniform(cfg_.tv_target_min, cfg_.tv_target_max) * cfg_.tv_target_scale;
  }
  plan_ = make_plan();
}

// APA's priors, one table per prior group of the aligned blocks (TapLayout::group), each
// aligned block bound to its table and set. A ViT has one group: the table the loop always
// drew. A windowed group (Swin stage) gets window priors (attention_prior.h).
void Synthesizer::draw_priors() {
  const PriorSpec spec{cfg_.apa_components, cfg_.prior_std_min, cfg_.prior_std_max_fraction};
  std::vector<int> blocks_in;  // aligned blocks per table
  for (int l : cfg_.apa_blocks) {
    const int g = layouts_[size_t(l)].group;
    const auto it = std::find(prior_groups_.begin(), prior_groups_.end(), g);
    const int table = int(it - prior_groups_.begin());
    if (it == prior_groups_.end()) {
      prior_groups_.push_back(g);
      blocks_in.push_back(0);
    }
    apa_table_.push_back(table);
    apa_set_.push_back(cfg_.apa_prior_per_block ? blocks_in[size_t(table)] : 0);
    blocks_in[size_t(table)]++;
  }
  for (size_t t = 0; t < prior_groups_.size(); ++t) {
    const auto first = std::find_if(cfg_.apa_blocks.begin(), cfg_.apa_blocks.end(),
                                    [&](int l) { return layouts_[size_t(l)].group == prior_groups_[t]; });
    prior_block_.push_back(*first);
    const TapLayout& lay = layouts_[size_t(*first)];
    const int sets = cfg_.apa_prior_per_block ? blocks_in[t] : 1;
    if (lay.slots) {
      priors_.push_back(sample_window_priors(cfg_.images, sets, lay.heads, lay.grid_h, lay.grid_w, lay.window_h,
                                             lay.window_w, prior_groups_[t], spec, cfg_.seed));
    } else {
      priors_.push_back(
          sample_attention_priors(cfg_.images, sets, lay.heads, lay.grid_h, lay.grid_w, spec, cfg_.seed));
    }
  }
}

// The working buffers are allocated on first use, so planning (synthPlan) costs nothing.
void Synthesizer::ensure_buffers() {
  if (!xin_.empty()) return;
  const int64_t L = info_.image_len(), K = info_.num_classes;
  const int n = std::max(plan_.chunk_images, plan_.region_batch);
  xin_.resize(size_t(n * L));
  dxin_.resize(size_t(n * L));
  dlogits_.resize(size_t(n * K));
  targets_buf_.resize(size_t(n * K));
  apa_taps_.resize(cfg_.apa ? cfg_.apa_blocks.size() : 0);
  for (size_t a = 0; a < apa_taps_.size(); ++a)
    apa_taps_[a].resize(size_t(layouts_[size_t(cfg_.apa_blocks[a])].attention_floats(plan_.chunk_images)));
  pse_taps_.resize(cfg_.pse ? cfg_.pse_blocks.size() : 0);
  for (size_t k = 0; k < pse_taps_.size(); ++k)
    pse_taps_[k].resize(size_t(layouts_[size_t(cfg_.pse_blocks[k])].av_floats(plan_.chunk_images)));
  prior_aug_.resize(priors_.size());
  for (size_t t = 0; t < priors_.size(); ++t) prior_aug_[t].resize(priors_[t].maps.size());
}

void Synthesizer::draw_targets() {
  const int B = cfg_.images, K = info_.num_classes;
  targets_ = cfg_.targets;
  if (targets_.empty()) {
    Rng rng = Rng::stream(cfg_.seed, Stream::Labels, 0);
    targets_.resize(B);
    if (cfg_.balanced_targets) {
      // Round-robin over the classes, then a Fisher–Yates shuffle.
      for (int b = 0; b < B; ++b) targets_[b] = b % K;
      for (int b = B - 1; b > 0; --b) std::swap(targets_[b], targets_[rng.uniform_int(0, b)]);
    } else {
      for (int b = 0; b < B; ++b) targets_[b] = rng.uniform_int(0, K - 1);
    }
  }
  // Per image: its own SL logit, then each cell's class and logit (streams per image, so
  // image b's draws do not depend on how many images there are).
  target_logits_.resize(B);
  cell_classes_.resize(size_t(B) * cells_);
  cell_logits_.resize(size_t(B) * cells_);
  for (int b = 0; b < B; ++b) {
    Rng rng = Rng::stream(cfg_.seed, Stream::Labels, 1 + uint64_t(b));
    target_logits_[b] = float(rng.uniform(cfg_.soft_logit_min, cfg_.soft_logit_max));
    for (int c = 0; c < cells_; ++c) {
      cell_classes_[size_t(b) * cells_ + c] = rng.uniform_int(0, K - 1);
      cell_logits_[size_t(b) * cells_ + c] = float(rng.uniform(cfg_.soft_logit_min, cfg_.soft_logit_max));
    }
  }
}

int64_t Synthesizer::plan_bytes(int n) const {
  const int64_t B = cfg_.images, L = info_.image_len(), K = info_.num_classes;
  const int chunk = int(std::min<int64_t>(n, B));
  int64_t floats = 4 * B * L;          // images, gradient, Adam m and v
  floats += 2 * int64_t(n) * L;        // jittered inputs / region crops and their gradients
  floats += 2 * int64_t(n) * K;        // dlogits, target rows
  if (cfg_.apa) {
    for (const AttentionPriors& p : priors_) floats += 2 * int64_t(p.maps.size());
    for (int l : cfg_.apa_blocks) floats += layouts_[size_t(l)].attention_floats(chunk);
  }
  if (cfg_.pse)
    for (int l : cfg_.pse_blocks) floats += layouts_[size_t(l)].av_floats(chunk);
  return model_.plan_bytes(n, floats * int64_t(sizeof(float)));
}

SynthPlan Synthesizer::make_plan() const {
  const int B = cfg_.images;
  // Passes of more than kMaxPassImages images are no faster (the GEMMs are long enough
  // well before), and a pass is the unit of progress reports and of stopping: cap them.
  constexpr int kMaxPassImages = 256;
  const int n_max = std::min(cfg_.msr ? B * cfg_.msr_max_regions : B, kMaxPassImages);
  if (plan_bytes(1) > cfg_.memory_budget)
    fail("E_MEMORY", "synthesis needs " + mib(plan_bytes(1)) + " even at one image per pass" +
                         model_.plan_bytes_note(B) + ", over the memory budget of " + mib(cfg_.memory_budget) +
                         "; raise the memory budget (memoryBudgetBytes, CLI --memory-budget-mb) or synthesize fewer images");
  int lo = 1, hi = n_max;  // largest n with plan_bytes(n) ≤ budget (monotone in n)
  while (lo < hi) {
    const int mid = lo + (hi - lo + 1) / 2;
    if (plan_bytes(mid) <= cfg_.memory_budget)
      lo = mid;
    else
      hi = mid - 1;
  }
  SynthPlan p;
  p.chunk_images = std::min(lo, B);
  p.region_batch = cfg_.msr ? lo : 0;
  p.bytes = plan_bytes(lo);
  return p;
}

int Synthesizer::round_of(int step) const {
  int start = 0;
  for (size_t r = 0; r < cfg_.rounds.size(); ++r) {
    if (step < start + cfg_.rounds[r].iters) return int(r);
    start += cfg_.rounds[r].iters;
  }
  return int(cfg_.rounds.size()) - 1;
}

Synthesizer::StepDraw Synthesizer::draw_step(int step) const {
  const SynthModel& mc = info_;
  const SynthRound& round = cfg_.rounds[round_of(step)];
  StepDraw d;
  Rng rng = Rng::stream(cfg_.seed, Stream::Step, uint64_t(step));
  d.aug.flip = cfg_.flip && rng.uniform() < 0.5;
  d.aug.dy = rng.uniform_int(-round.roll_max_h, round.roll_max_h);
  d.aug.dx = rng.uniform_int(-round.roll_max_w, round.roll_max_w);
  d.first_region.assign(cfg_.images + 1, 0);
  if (cfg_.msr) {
    Rng rr = Rng::stream(cfg_.seed, Stream::Regions, uint64_t(step));
    RegionSpec spec{cfg_.msr_max_regions, cfg_.msr_grid, cfg_.msr_box_min, cfg_.msr_box_max, cfg_.msr_flip};
    sample_regions(&d.regions, cfg_.images, mc.image_h, mc.image_w, spec, rr);
    const int K = mc.num_classes;
    for (const Region& r : d.regions) {
      if (cfg_.msr_resample_classes) {
        d.region_cls.push_back(rr.uniform_int(0, K - 1));
        d.region_logit.push_back(float(rr.uniform(cfg_.soft_logit_min, cfg_.soft_logit_max)));
      } else {
        d.region_cls.push_back(cell_classes_[size_t(r.image) * cells_ + r.cell]);
        d.region_logit.push_back(cell_logits_[size_t(r.image) * cells_ + r.cell]);
      }
      d.first_region[r.image + 1]++;
    }
    for (int b = 0; b < cfg_.images; ++b) d.first_region[b + 1] += d.first_region[b];
  }
  return d;
}

void Synthesizer::init_images(std::vector<float>* x) const {
  const SynthModel& mc = info_;
  const int64_t L = mc.image_len();
  x->assign(size_t(cfg_.images * L), 0.0f);
  for (int b = 0; b < cfg_.images; ++b) {
    Rng rng = Rng::stream(cfg_.seed, Stream::Init, uint64_t(b));
    float* img = x->data() + b * L;
    for (int64_t i = 0; i < L; i += 2) {
      double u, v;
      rng.normal_pair(&u, &v);
      img[i] = float(u * cfg_.init_std);
      if (i + 1 < L) img[i + 1] = float(v * cfg_.init_std);
    }
  }
  clamp_images(x->data());
}

void Synthesizer::clamp_images(float* x) const {
  const SynthModel& mc = info_;
  const int64_t plane = int64_t(mc.image_h) * mc.image_w;
  for (int b = 0; b < cfg_.images; ++b)
    for (int c = 0; c < mc.channels; ++c) {
      float* p = x + (int64_t(b) * mc.channels + c) * plane;
      const float lo = cfg_.clamp_lo[c], hi = cfg_.clamp_hi[c];
      for (int64_t i = 0; i < plane; ++i) p[i] = clampf(p[i], lo, hi);
    }
}

// ------------------------------------------------------------------------ objective

StepLosses Synthesizer::objective(const float* x, int step, double alpha, float* grad,
                                  const std::atomic<bool>* cancel) {
  return objective_over(x, step, alpha, grad, cancel, cfg_.shard_begin, cfg_.shard_end);
}

StepLosses Synthesizer::objective_over(const float* x, int step, double alpha, float* grad,
                                       const std::atomic<bool>* cancel, int s_begin, int s_end) {
  const SynthModel& mc = info_;
  const int B = cfg_.images, K = mc.num_classes;
  const int C = mc.channels, IH = mc.image_h, IW = mc.image_w;
  const int64_t L = mc.image_len();
  ensure_buffers();
  const StepDraw d = draw_step(step);
  const int R = int(d.regions.size());
  const bool classify_on = cfg_.cls != ClsLoss::None;
  // Classification averages over every classified sample: B images and R regions.
  const double n_cls = double(B + R);
  const double w_cls = classify_on ? cfg_.cls_weight / n_cls : 0.0;
  if (grad) zero(grad + int64_t(s_begin) * L, int64_t(s_end - s_begin) * L);
  move_priors(d.aug);

  // PSAQ-ViT's features of block l: its A·V tap, per window for a windowed block.
  auto pss_of = [&](int l, int batch) {
    const TapLayout& t = layouts_[size_t(l)];
    PatchSimilarityShape s{batch, t.tokens, t.dim, t.heads, t.prefix};
    s.windows = t.windows;
    s.slots = t.slots;
    return s;
  };
  const int chunk = plan_.chunk_images;
  const int n_chunks = (B + chunk - 1) / chunk;
  std::vector<float> sim_lo(cfg_.pse_blocks.size(), 0.0f), sim_hi(cfg_.pse_blocks.size(), 0.0f);
  auto jitter = [&](int b0, int n) {
    parallel(n, [&](int64_t i) {
      augment_forward(xin_.data() + i * L, x + (b0 + i) * L, 1, C, IH, IW, d.aug);
    });
  };
  auto merge_ranges = [&](bool first) {
    for (size_t k = 0; k < cfg_.pse_blocks.size(); ++k) {
      float lo, hi;
      patch_similarity_range(&lo, &hi, model_.attention_values(cfg_.pse_blocks[k]),
                             pss_of(cfg_.pse_blocks[k], model_.batch()), &pool_);
      sim_lo[k] = first ? lo : std::min(sim_lo[k], lo);
      sim_hi[k] = first ? hi : std::max(sim_hi[k], hi);
    }
  };
  // PSAQ-ViT evaluates its KDE between the min and max over the whole batch: with several
  // micro-batches, a forward-only pass over all of them finds that range first (never in
  // a shard: SynthConfig::validate).
  if (cfg_.pse && n_chunks > 1) {
    for (int c = 0; c < n_chunks; ++c) {
      const int b0 = c * chunk, n = std::min(chunk, B - b0);
      jitter(b0, n);
      model_.forward(xin_.data(), n, cancel);
      merge_ranges(c == 0);
    }
  }

  double cls_sum = 0, apa_sum = 0, pse_sum = 0, prob_sum = 0;
  std::vector<int32_t> labels(std::max(plan_.chunk_images, plan_.region_batch));
  TapGrads taps;
  if (grad && cfg_.apa) taps.attn.assign(size_t(mc.blocks), nullptr);
  if (grad && cfg_.pse) taps.av.assign(size_t(mc.blocks), nullptr);

  // The unsplit run's micro-batches [b0, b0 + n); a shard passes its own images [lo, hi) of
  // each (all of them unsplit), normalized by the whole micro-batch's n.
  for (int c = 0; c < n_chunks; ++c) {
    const int b0 = c * chunk, n = std::min(chunk, B - b0);
    const int lo = std::max(b0, s_begin), hi = std::min(b0 + n, s_end), m = hi - lo;
    if (m <= 0) continue;
    jitter(lo, m);
    model_.forward(xin_.data(), m, cancel);
    const float* logits = model_.logits();

    prob_sum += image_targets(d, lo, m, logits, labels.data());
    if (classify_on)
      cls_sum += classify(logits, m, n, labels.data(), w_cls);
    else
      zero(dlogits_.data(), int64_t(m) * K);

    if (cfg_.apa) apa_sum += attention_prior_loss(lo, m, alpha, grad != nullptr, &taps);
    if (cfg_.pse) {
      if (n_chunks == 1) merge_ranges(true);
      for (size_t k = 0; k < cfg_.pse_blocks.size(); ++k) {
        const int l = cfg_.pse_blocks[k];
        float* tap = nullptr;
        if (grad) {
          tap = pse_taps_[k].data();
          zero(tap, layouts_[size_t(l)].av_floats(m));
          taps.av[l] = tap;
        }
        // L_PSE = −Σ_blocks mean_b H_b.
        pse_sum -= patch_similarity_entropy(tap, nullptr, model_.attention_values(l), pss_of(l, m), cfg_.kde_bandwidth,
                                            cfg_.kde_points, sim_lo[k], sim_hi[k], -double(cfg_.pse_weight) / B,
                                            &pool_);
      }
    }
    if (grad) {
      model_.backward(dlogits_.data(), taps, dxin_.data(), cancel);
      parallel(m, [&](int64_t i) {
        augment_backward(grad + (lo + i) * L, dxin_.data() + i * L, 1, C, IH, IW, d.aug);
      });
    }

    // This chunk's MSR regions, each an image of its own with its own target.
    cls_sum += region_passes(x, d, d.first_region[b0], d.first_region[b0 + n], d.first_region[lo], d.first_region[hi],
                             w_cls, grad, labels.data(), cancel);
    if (chunk_done_) chunk_done_(c + 1, n_chunks);
  }

  StepLosses out;
  out.cls = classify_on ? cls_sum / n_cls : 0.0;
  out.apa = cfg_.apa ? apa_sum / B : 0.0;
  out.pse = cfg_.pse ? pse_sum / B : 0.0;
  out.target_prob = prob_sum / B;
  out.tv = image_prior(x, grad, s_begin, s_end);
  out.total = (cfg_.apa ? alpha * out.apa : 0.0) + (classify_on ? cfg_.cls_weight * out.cls : 0.0) +
              (cfg_.tv != TvForm::None ? cfg_.tv_weight * out.tv : 0.0) + (cfg_.pse ? cfg_.pse_weight * out.pse : 0.0);
  return out;
}

// ------------------------------------------------------------------------------ run

namespace {
// The first loss part (or the gradient) that is NaN or Inf, and a sentence saying so;
// empty when everything is finite.
std::pair<std::string, std::string> first_non_finite(const StepLosses& losses, const float* grad, int64_t n) {
  const std::pair<const char*, double> parts[] = {
      {"apa", losses.apa}, {"cls", losses.cls}, {"tv", losses.tv}, {"pse", losses.pse}};
  for (const auto& p : parts)
    if (!std::isfinite(p.second)) return {p.first, std::string("loss part '") + p.first + "' is " + std::to_string(p.second)};
  if (!all_finite(grad, n)) return {"gradient", "the gradient of the total loss has a NaN or Inf entry"};
  return {"", ""};
}
}  // namespace

SynthResult Synthesizer::run(const std::atomic<bool>* cancel, const ProgressFn& progress) {
  using clock = std::chrono::steady_clock;
  const auto t_start = clock::now();
  const int B = cfg_.images;
  const int64_t n = int64_t(B) * info_.image_len();
  SynthResult res;
  res.targets = targets_;
  res.target_logits = target_logits_;
  if (cfg_.msr) {
    res.cell_classes = cell_classes_;
    res.cell_logits = cell_logits_;
  }
  res.priors = priors_;
  res.prior_groups = prior_groups_;
  res.plan = plan_;
  init_images(&res.images);
  std::vector<float> grad(static_cast<size_t>(n)), m(static_cast<size_t>(n), 0.0f), v(static_cast<size_t>(n), 0.0f);
  const bool auto_alpha = cfg_.apa && !(cfg_.apa_alpha > 0);
  double alpha = cfg_.apa ? (auto_alpha ? 0.0 : cfg_.apa_alpha) : 0.0;
  const int total = cfg_.total_iters();

  auto stop = [&](const char* code, const std::string& part, int step, const std::string& msg) {
    res.stop.code = code;
    res.stop.part = part;
    res.stop.step = step;
    res.stop.message = msg;
  };
  int step = 0;
  // Within-step progress for large batches (several micro-batches per step).
  constexpr double kChunkProgressSeconds = 2.0;
  auto last_report = clock::now();
  int current_round = 0;
  if (progress) {
    chunk_done_ = [&](int done, int chunks) {
      const auto now = clock::now();
      if (done >= chunks || std::chrono::duration<double>(now - last_report).count() < kChunkProgressSeconds) return;
      last_report = now;
      SynthProgress p;
      p.step = step;
      p.total_steps = total;
      p.round = current_round;
      p.alpha = alpha;
      p.step_fraction = double(done) / chunks;
      p.seconds = std::chrono::duration<double>(now - t_start).count();
      progress(p);
    };
  }
  struct ClearChunkHook {
    std::function<void(int, int)>& hook;
    ~ClearChunkHook() { hook = nullptr; }
  } clear_hook{chunk_done_};
  for (size_t r = 0; r < cfg_.rounds.size() && res.stop.code.empty(); ++r) {
    current_round = int(r);
    const SynthRound& round = cfg_.rounds[r];
    for (int s = 0; s < round.iters; ++s, ++step) {
      const auto t0 = clock::now();
      const double lr = cosine_lr(s, round.iters, round.warmup, cfg_.lr);
      StepLosses losses;
      try {
        if (cancel && cancel->load(std::memory_order_relaxed)) fail("E_CANCELLED", "cancelled");
        if (auto_alpha && step == 0) {
          // [ours] α·L_APA = w_cls·L_cls at step 0, measured once (a forward-only pass) on the
          // whole batch, shard or not: every shard has the seed's initial images.
          const StepLosses l0 = objective_over(res.images.data(), 0, 1.0, nullptr, cancel, 0, B);
          alpha = cfg_.cls_weight * l0.cls / l0.apa;
          if (!(std::isfinite(alpha) && alpha > 0)) {
            stop("E_NUMERIC", "alpha", 0,
                 "step 0: cannot set α automatically (classification loss " + std::to_string(l0.cls) +
                     ", APA loss " + std::to_string(l0.apa) + "); set apa.alpha explicitly");
            break;
          }
        }
        losses = objective(res.images.data(), step, alpha, grad.data(), cancel);
      } catch (const Error& e) {
        if (e.code() != "E_CANCELLED") throw;
        stop("E_CANCELLED", "", step, "cancelled at step " + std::to_string(step) + " of " + std::to_string(total) +
                                          "; the images of the " + std::to_string(step) + " completed steps were kept");
        break;
      }
      // NaN/Inf: name the first bad part; the images are still those of the last good step.
      const auto [bad, what] = first_non_finite(losses, grad.data(), n);
      if (!bad.empty()) {
        stop("E_NUMERIC", bad, step,
             "step " + std::to_string(step) + " (round " + std::to_string(r + 1) + ", iteration " +
                 std::to_string(s) + "): " + what + "; the images of the last good step were kept");
        break;
      }
      adam_step(res.images.data(), grad.data(), m.data(), v.data(), n, step + 1, float(lr), cfg_.beta1, cfg_.beta2,
                cfg_.adam_eps);
      clamp_images(res.images.data());
      res.history.push_back(losses);
      res.lrs.push_back(lr);
      res.steps_done = step + 1;
      if (progress) {
        const auto t1 = clock::now();
        SynthProgress p;
        p.step = step;
        p.total_steps = total;
        p.round = int(r);
        p.lr = lr;
        p.alpha = alpha;
        p.losses = losses;
        const double dt = std::chrono::duration<double>(t1 - t0).count();
        p.images_per_second = dt > 0 ? (cfg_.shard_end - cfg_.shard_begin) / dt : 0;
        p.seconds = std::chrono::duration<double>(t1 - t_start).count();
        progress(p);
        last_report = t1;
      }
    }
  }
  res.alpha = alpha;
  res.seconds = std::chrono::duration<double>(clock::now() - t_start).count();
  return res;
}

}  // namespace spdfq::synth
