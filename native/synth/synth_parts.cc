// The parts of the synthesis objective that Synthesizer::objective_over calls per
// micro-batch (synth_loop.cc): the image targets, APA, the MSR region passes and the TV
// prior. Apart from the loop so that each file stays readable; see synth_loop.h for the
// conventions (normalizers, shards).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "../cpu/ops.h"
#include "apa_loss.h"
#include "soft_labels.h"
#include "synth_loop.h"
#include "tv_loss.h"

namespace spdfq::synth {

namespace {
void zero(float* p, int64_t n) { std::memset(p, 0, size_t(n) * sizeof(float)); }
}  // namespace

// The priors, moved with the step's jitter (see jitter_prior) into prior_aug_.
void Synthesizer::move_priors(const StepAugment& aug) {
  for (size_t t = 0; t < priors_.size(); ++t) {
    const AttentionPriors& pr = priors_[t];
    const int P = pr.patches();
    const int token_pixels = layouts_[size_t(prior_block_[t])].token_pixels;
    const int64_t maps = int64_t(pr.images) * pr.sets * pr.heads;
    for (int64_t i = 0; i < maps; ++i)
      jitter_prior(prior_aug_[t].data() + i * P, pr.maps.data() + i * P, pr.grid_h, pr.grid_w, token_pixels, aug);
  }
}

// The classification losses of m samples of a pass of n (logits [m, K]; hard labels, or the
// soft target rows in targets_buf_): Σ over them, and d(w · Σ)/dlogits into dlogits_,
// formed as the whole pass forms it, d(Σ/n)/dlogits times float(w·n), so each sample's
// gradient rounds alike whether the pass is whole (m = n) or a shard's part of it.
double Synthesizer::classify(const float* logits, int m, int n, const int32_t* labels, double w) {
  const int K = info_.num_classes;
  const double mean = cfg_.cls == ClsLoss::Soft
                          ? cpu::cross_entropy_soft(dlogits_.data(), logits, targets_buf_.data(), m, K, n)
                          : cpu::cross_entropy_hard(dlogits_.data(), logits, labels, m, K, n);
  const float k = float(w * n);
  for (int64_t i = 0; i < int64_t(m) * K; ++i) dlogits_[i] *= k;
  return mean * n;
}

// Targets of the whole images b0 … b0+n−1 into labels (hard) or targets_buf_ rows (soft:
// the own class plus this step's region classes); returns Σ of each image's softmax
// probability of its own class (reported, not optimized).
double Synthesizer::image_targets(const StepDraw& d, int b0, int n, const float* logits, int32_t* labels) {
  const int K = info_.num_classes;
  double prob_sum = 0;
  for (int i = 0; i < n; ++i) {
    const int b = b0 + i;
    labels[i] = targets_[b];
    if (cfg_.cls == ClsLoss::Soft) {
      std::vector<int32_t> cls{targets_[b]};
      std::vector<float> z{target_logits_[b]};
      for (int r = d.first_region[b]; r < d.first_region[b + 1]; ++r) {
        cls.push_back(d.region_cls[r]);
        z.push_back(d.region_logit[r]);
      }
      soft_label_row(targets_buf_.data() + int64_t(i) * K, K, cls.data(), z.data(), int(cls.size()));
    }
    const float* zr = logits + int64_t(i) * K;
    double mx = zr[0], s = 0;
    for (int k = 1; k < K; ++k) mx = std::max(mx, double(zr[k]));
    for (int k = 0; k < K; ++k) s += std::exp(double(zr[k]) - mx);
    prob_sum += std::exp(double(zr[targets_[b]]) - mx) / s;
  }
  return prob_sum;
}

// APA of the images b0 … b0+n−1 of the last forward, summed over the aligned blocks with
// their l/L weights; with grad, their tap gradients (scaled by α and 1/B) go into taps.
double Synthesizer::attention_prior_loss(int b0, int n, double alpha, bool grad, TapGrads* taps) {
  const int B = cfg_.images;
  const double L_depth = info_.blocks;
  double sum = 0;
  for (size_t a = 0; a < cfg_.apa_blocks.size(); ++a) {
    const int l = cfg_.apa_blocks[a];
    const TapLayout& t = layouts_[size_t(l)];
    const AttentionPriors& pr = priors_[size_t(apa_table_[a])];
    const int H = t.heads, N = t.tokens, P = pr.patches();
    const int64_t prior_stride = int64_t(pr.sets) * H * P;
    const double w = cfg_.apa_depth_weight ? (l + 1) / L_depth : 1.0;  // l/L with 1-based l
    const float* pri = prior_aug_[size_t(apa_table_[a])].data() + int64_t(b0) * prior_stride +
                       int64_t(apa_set_[a]) * H * P;
    float* tap = nullptr;
    if (grad) {
      tap = apa_taps_[a].data();
      zero(tap, t.attention_floats(n));
      taps->attn[l] = tap;
    }
    const double scale = alpha * w / B;
    sum += w * (t.slots ? window_apa_loss(tap, model_.attention(l), pri, prior_stride, n, H, t.windows, N, t.slots,
                                          P, cfg_.apa_loss, scale)
                        : apa_loss(tap, model_.attention(l), pri, prior_stride, n, H, N, t.prefix, cfg_.apa_query,
                                   cfg_.apa_loss, scale));
  }
  return sum;
}

// The MSR regions [r_begin, r_end) of a micro-batch of images: each cropped, resized to the
// input size and classified with its own target, in passes of plan_.region_batch from
// r_begin; with grad, their gradients are scattered back into their boxes. Only the regions
// [own_begin, own_end) are passed (a shard's; all of them unsplit), each normalized by its
// whole pass's nr. Returns Σ of the passed regions' classification losses.
double Synthesizer::region_passes(const float* x, const StepDraw& d, int r_begin, int r_end, int own_begin,
                                  int own_end, double w_cls, float* grad, int32_t* labels,
                                  const std::atomic<bool>* cancel) {
  const SynthModel& mc = info_;
  const int K = mc.num_classes, C = mc.channels, IH = mc.image_h, IW = mc.image_w;
  const int64_t L = mc.image_len();
  double cls_sum = 0;
  for (int p0 = r_begin; p0 < r_end; p0 += plan_.region_batch) {
    const int nr = std::min(plan_.region_batch, r_end - p0);
    const int r0 = std::max(p0, own_begin), m = std::min(p0 + nr, own_end) - r0;
    if (m <= 0) continue;
    parallel(m, [&](int64_t i) {
      const Region& rg = d.regions[r0 + i];
      crop_resize_forward(xin_.data() + i * L, x + rg.image * L, C, IH, IW, rg, IH, IW);
    });
    model_.forward(xin_.data(), m, cancel);
    for (int i = 0; i < m; ++i) {
      labels[i] = d.region_cls[r0 + i];
      if (cfg_.cls == ClsLoss::Soft)
        soft_label_row(targets_buf_.data() + int64_t(i) * K, K, &d.region_cls[r0 + i], &d.region_logit[r0 + i], 1);
    }
    cls_sum += classify(model_.logits(), m, nr, labels, w_cls);
    if (!grad) continue;
    model_.backward(dlogits_.data(), TapGrads{}, dxin_.data(), cancel);
    // Regions of one image are disjoint boxes but share the image's rows: scatter
    // serially (cheap next to the passes) to keep the accumulation order fixed.
    for (int i = 0; i < m; ++i) {
      const Region& rg = d.regions[r0 + i];
      crop_resize_backward(grad + rg.image * L, dxin_.data() + int64_t(i) * L, C, IH, IW, rg, IH, IW);
    }
  }
  return cls_sum;
}

// The TV prior of the images [b_begin, b_end) of x (TV, or |TV − v| with PSAQ-ViT's
// target), its means over the whole batch; with grad, adds its weighted gradient. Returns
// the unweighted value (a shard's part of the batch's: 'l1' is a sum over images).
double Synthesizer::image_prior(const float* x, float* grad, int b_begin, int b_end) const {
  if (cfg_.tv == TvForm::None) return 0.0;
  const SynthModel& mc = info_;
  const int B = cfg_.images, C = mc.channels, IH = mc.image_h, IW = mc.image_w, n = b_end - b_begin;
  const int64_t off = int64_t(b_begin) * mc.image_len();
  float* g = grad ? grad + off : nullptr;
  const double tv = tv_loss(nullptr, x + off, n, C, IH, IW, cfg_.tv, 0.0, B);
  if (cfg_.tv_target) {  // never in a shard (SynthConfig::validate)
    const double sign = tv > tv_target_ ? 1.0 : tv < tv_target_ ? -1.0 : 0.0;
    if (g && sign != 0.0) tv_loss(g, x + off, n, C, IH, IW, cfg_.tv, cfg_.tv_weight * sign, B);
    return std::fabs(tv - tv_target_);
  }
  if (g) tv_loss(g, x + off, n, C, IH, IW, cfg_.tv, cfg_.tv_weight, B);
  return tv;
}

}  // namespace spdfq::synth
