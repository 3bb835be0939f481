// The model-independent part of block reconstruction (reconstruct.h), written once for
// every CPU model M with the reconstruction hooks (cpu::CpuVit, cpu::CpuSwin): prepare,
// params, quant_params, grads, set_qdrop, set_lsq / lsq_grads, set_act_quant,
// set_weight_quant, forward. A model is cut into Stages (a block, a patch merging, the
// patch embedding, the head), each trained in order on the output of the reconstructed
// stages before it (reconstruct_stages, below); reconstruct.cc cuts a ViT,
// reconstruct_swin.cc a Swin.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "../core/errors.h"
#include "reconstruct.h"

namespace spdfq::quant::recon {

inline void check_cancel(const std::atomic<bool>* cancel) {
  if (cancel && cancel->load(std::memory_order_relaxed)) fail("E_CANCELLED", "reconstruction cancelled");
}

inline double mse(const float* a, const float* b, int64_t n) {
  double e = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = double(a[i]) - b[i];
    e += d * d;
  }
  return e / double(n);
}

// One piece of the model that reconstruction trains on its own: a transformer block, the
// patch embedding or the head. It maps an input per image (in_len floats: the image, or the
// token stream) to an output per image (out_len floats: tokens, or logits), and is trained
// so that its output on the quantized model's input matches the full-precision model's.
struct Stage {
  std::string name;                       // "patch_embed", "blocks.3", "head"
  std::vector<const ParamInfo*> trained;  // STE: weights and biases; AdaRound: biases only
  std::vector<const WeightQuant*> wq;     // the stage's quantized weights
  int block = -1;                         // a block stage's index (learned steps)
  int64_t in_len = 0, out_len = 0;
  // After m.prepare(batch): runs the stage on `in`, returning its output.
  std::function<const float*(const float* in)> forward;
  // After forward on the same input: writes the trained tensors' gradients into m.grads().
  std::function<void(const float* in, const float* dout)> backward;
};

// The stage loss mean((out − target)²) over `cnt` values, its gradient 2(out − target)/cnt
// written to dout.
inline double stage_loss(const float* out, const float* target, int64_t cnt, float* dout) {
  double loss = 0.0;
  for (int64_t i = 0; i < cnt; ++i) {
    const float d = out[i] - target[i];
    loss += double(d) * d;
    dout[i] = 2.0f * d / float(cnt);
  }
  return loss / double(cnt);
}

// One stage's loss on `batch` inputs towards `target`, and its gradient with respect to the
// stage's trained tensors written into `grads` (the model's parameter layout; every other
// entry 0): the step train_stage takes, for the finite-difference tests.
template <class M>
double stage_gradient(M& m, const Stage& st, const float* in, const float* target, int batch, float* grads) {
  m.prepare(batch);
  const float* out = st.forward(in);
  std::vector<float> dout(size_t(batch) * size_t(st.out_len));
  const double loss = stage_loss(out, target, int64_t(batch) * st.out_len, dout.data());
  st.backward(in, dout.data());
  std::memset(grads, 0, sizeof(float) * size_t(m.param_count()));
  for (auto* p : st.trained) std::memcpy(grads + p->offset, m.grads() + p->offset, sizeof(float) * size_t(p->size));
  return loss;
}

// Runs a stage on every image's input (in chunks), writing outputs.
template <class M>
void stage_chunks(M& m, const Stage& st, const float* in, float* out, int n, int chunk) {
  for (int s = 0; s < n; s += chunk) {
    const int b = std::min(chunk, n - s);
    m.prepare(b);
    const float* y = st.forward(in + int64_t(s) * st.in_len);
    std::memcpy(out + int64_t(s) * st.out_len, y, sizeof(float) * size_t(b * st.out_len));
  }
}

inline bool is_bias(const std::string& name) { return name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0; }

// The stage's tensors: parameters for which `mine(name)` holds that are quantized weights
// (with `weights`) or biases, and the quantized weights among them.
inline void select_tensors(Stage& st, const std::vector<ParamInfo>& infos, const WeightQuantTable& wq, bool weights,
                    const std::function<bool(const std::string&)>& mine) {
  for (const auto& w : wq)
    if (mine(w.name)) st.wq.push_back(&w);
  for (const auto& p : infos) {
    if (!mine(p.name)) continue;
    const bool quantized = std::any_of(st.wq.begin(), st.wq.end(), [&](const WeightQuant* w) { return w->name == p.name; });
    if (is_bias(p.name) || (weights && quantized)) st.trained.push_back(&p);
  }
}

// The held-out images of the stopping rule, gathered for one stage: inputs and targets.
struct HeldOut {
  std::vector<int> ids;
  std::vector<float> x, y, out;
  void gather(const Stage& st, const float* in, const float* target) {
    const size_t k = ids.size();
    x.resize(k * size_t(st.in_len));
    y.resize(k * size_t(st.out_len));
    out.resize(k * size_t(st.out_len));
    for (size_t i = 0; i < k; ++i) {
      std::memcpy(x.data() + i * st.in_len, in + int64_t(ids[i]) * st.in_len, sizeof(float) * size_t(st.in_len));
      std::memcpy(y.data() + i * st.out_len, target + int64_t(ids[i]) * st.out_len, sizeof(float) * size_t(st.out_len));
    }
  }
};

// The trained tensors' fake-quantized copies after their fp values changed: biases are not
// quantized (copied); weights are re-quantized, unless AdaRound's soft rounding (`soft`)
// writes them.
template <class M>
void refresh_quantized(M& m, const Stage& st, bool soft) {
  float* qp = m.quant_params();
  for (auto* p : st.trained) std::memcpy(qp + p->offset, m.params() + p->offset, sizeof(float) * size_t(p->size));
  if (!soft)
    for (auto* w : st.wq) apply_weight_quant(*w, m.params(), qp);
}

// One Adam step (bias-corrected, step t ≥ 1) on the trained tensors from their gradients.
inline void adam_step(float* params, const float* grads, const std::vector<const ParamInfo*>& trained, std::vector<float>& adam_m,
               std::vector<float>& adam_v, float lr, int t, const ReconstructConfig& cfg) {
  const float bc1 = 1.0f - std::pow(cfg.beta1, float(t)), bc2 = 1.0f - std::pow(cfg.beta2, float(t));
  int64_t k = 0;
  for (auto* p : trained)
    for (int64_t i = 0; i < p->size; ++i, ++k) {
      const float g = grads[p->offset + i];
      adam_m[size_t(k)] = cfg.beta1 * adam_m[size_t(k)] + (1.0f - cfg.beta1) * g;
      adam_v[size_t(k)] = cfg.beta2 * adam_v[size_t(k)] + (1.0f - cfg.beta2) * g * g;
      params[p->offset + i] -= lr * (adam_m[size_t(k)] / bc1) / (std::sqrt(adam_v[size_t(k)] / bc2) + cfg.eps);
    }
}

// LSQ for one block stage: log(step) of the block's Linear-input quantizers, trained by Adam
// from the gradients the engine accumulates (M::set_lsq, cpu/recon_hooks.h), written back into the model's
// quantizer state so the next forward uses them.
template <class M>
class LearnedSteps {
 public:
  static constexpr Site kSites[4] = {Site::QkvIn, Site::ProjIn, Site::Fc1In, Site::Fc2In};  // recon_hooks.h's LSQ order

  LearnedSteps(M& m, ActQuantState* aq, int block) : m_(m), aq_(aq), block_(block) {
    for (int i = 0; i < 4; ++i) on_[i] = aq && aq->at(kSites[i], block).kind == QuantKind::Uniform;
    m_.set_lsq(block);
  }
  ~LearnedSteps() { m_.set_lsq(-1); }
  // One Adam step on log(step) from d loss/d step (∂/∂log s = s·∂/∂s).
  void step(float lr, int t, const ReconstructConfig& cfg) {
    const auto& g = m_.lsq_grads();
    const float bc1 = 1.0f - std::pow(cfg.beta1, float(t)), bc2 = 1.0f - std::pow(cfg.beta2, float(t));
    for (int i = 0; i < 4; ++i) {
      if (!on_[i]) continue;
      TensorQuant& q = aq_->at(kSites[i], block_);
      const float gl = float(g[size_t(i)]) * q.scale;
      m1_[i] = cfg.beta1 * m1_[i] + (1.0f - cfg.beta1) * gl;
      m2_[i] = cfg.beta2 * m2_[i] + (1.0f - cfg.beta2) * gl * gl;
      q.scale *= std::exp(-lr * (m1_[i] / bc1) / (std::sqrt(m2_[i] / bc2) + cfg.eps));
    }
  }
  std::array<float, 4> scales() const {
    std::array<float, 4> s{};
    for (int i = 0; i < 4; ++i) s[size_t(i)] = aq_ ? aq_->at(kSites[i], block_).scale : 0.0f;
    return s;
  }
  void set_scales(const std::array<float, 4>& s) {
    for (int i = 0; i < 4; ++i)
      if (on_[i]) aq_->at(kSites[i], block_).scale = s[size_t(i)];
  }
  std::vector<std::pair<Site, float>> learned() const {
    std::vector<std::pair<Site, float>> out;
    for (int i = 0; i < 4; ++i)
      if (on_[i]) out.emplace_back(kSites[i], aq_->at(kSites[i], block_).scale);
    return out;
  }

 private:
  M& m_;
  ActQuantState* aq_;
  int block_;
  bool on_[4]{};
  float m1_[4]{}, m2_[4]{};
};

// The held-out stopping rule for one stage: the stage's trained tensors (and AdaRound's
// rounding variables) at its best held-out check, put back at the end.
template <class M>
class BestCheck {
 public:
  BestCheck(M& m, const Stage& st, SoftRounding* soft, LearnedSteps<M>* steps)
      : m_(m), st_(st), soft_(soft), steps_(steps) {}
  void offer(int it, double held_out_mse) {
    if (it != 0 && !(held_out_mse < best_)) return;
    best_ = held_out_mse;
    kept_ = it;
    params_.clear();
    for (auto* p : st_.trained) params_.insert(params_.end(), m_.params() + p->offset, m_.params() + p->offset + p->size);
    if (soft_) v_ = soft_->variables();
    if (steps_) scales_ = steps_->scales();
  }
  int kept() const { return kept_; }
  void restore() {
    size_t k = 0;
    for (auto* p : st_.trained) {
      std::memcpy(m_.params() + p->offset, params_.data() + k, sizeof(float) * size_t(p->size));
      k += size_t(p->size);
    }
    if (soft_) soft_->set_variables(v_);
    if (steps_) steps_->set_scales(scales_);
    refresh_quantized(m_, st_, soft_ != nullptr);
  }

 private:
  M& m_;
  const Stage& st_;
  SoftRounding* soft_;
  LearnedSteps<M>* steps_;
  std::array<float, 4> scales_{};
  double best_ = 0.0;
  int kept_ = 0;
  std::vector<float> params_, v_;
};

// Trains a stage on the images `order` lists (inputs x_q, targets y) for cfg.iters
// iterations; with held-out images, keeps the weights of the best check. Returns the
// iteration kept.
template <class M>
int train_stage(M& m, const Stage& st, int position, int stages, const float* x_q, const float* y, double mse0,
                const ReconstructConfig& cfg, std::mt19937_64& rng, std::vector<int>& order, HeldOut* held,
                ActQuantState* aq, std::vector<std::pair<Site, float>>* learned,
                const std::function<void(const ReconstructProgress&)>& progress, const std::atomic<bool>* cancel) {
  const int n = int(order.size());
  const int b = std::min(cfg.batch, n);
  int64_t nparams = 0;
  for (auto* p : st.trained) nparams += p->size;
  std::vector<float> adam_m(size_t(nparams), 0.0f), adam_v(size_t(nparams), 0.0f);
  std::unique_ptr<SoftRounding> soft =
      cfg.rounding == Rounding::AdaRound ? std::make_unique<SoftRounding>(st.wq, m.params()) : nullptr;
  const float rec_scale = mse0 > 0.0 ? float(1.0 / mse0) : 1.0f;
  const int warm = int(cfg.round_warmup * float(cfg.iters));

  std::vector<float> xin(size_t(b) * st.in_len), target(size_t(b) * st.out_len), dout(size_t(b) * st.out_len);
  int cursor = n;  // `order` carries its shuffles over from the previous stage
  const uint64_t qdrop_seed = cfg.seed * 1000003ull + uint64_t(position);
  m.set_qdrop(cfg.qdrop, qdrop_seed);

  std::unique_ptr<LearnedSteps<M>> steps =
      cfg.learn_steps && st.block >= 0 ? std::make_unique<LearnedSteps<M>>(m, aq, st.block) : nullptr;
  BestCheck<M> check(m, st, soft.get(), steps.get());
  auto held_out_mse = [&](int it) {
    m.set_qdrop(0.0f, 0);  // the model as it will run
    const int k = int(held->ids.size());
    stage_chunks(m, st, held->x.data(), held->out.data(), k, b);
    m.set_qdrop(cfg.qdrop, qdrop_seed + uint64_t(it) * 7919ull);
    return mse(held->out.data(), held->y.data(), int64_t(k) * st.out_len);
  };
  const int every = std::max(1, cfg.check_every);
  if (held) {
    if (soft) soft->write(m.params(), m.quant_params(), false);
    check.offer(0, held_out_mse(0));
  }
  for (int it = 0; it < cfg.iters; ++it) {
    check_cancel(cancel);
    // Mini-batch: a fresh permutation each epoch (all images when batch ≥ n).
    if (cursor + b > n) {
      std::shuffle(order.begin(), order.end(), rng);
      cursor = 0;
    }
    for (int i = 0; i < b; ++i) {
      const int idx = order[size_t(cursor + i)];
      std::memcpy(xin.data() + int64_t(i) * st.in_len, x_q + int64_t(idx) * st.in_len, sizeof(float) * size_t(st.in_len));
      std::memcpy(target.data() + int64_t(i) * st.out_len, y + int64_t(idx) * st.out_len, sizeof(float) * size_t(st.out_len));
    }
    cursor += b;
    if (soft) soft->write(m.params(), m.quant_params(), false);
    m.prepare(b);
    const float* out = st.forward(xin.data());
    double loss = stage_loss(out, target.data(), int64_t(b) * st.out_len, dout.data());
    if (!std::isfinite(loss))
      fail("E_NUMERIC", "reconstruction of " + st.name + ": loss became " + std::to_string(loss) + " at iteration " +
                            std::to_string(it));
    st.backward(xin.data(), dout.data());

    // Adam with cosine decay to 0 over the stage's iterations.
    const float decay = 0.5f * (1.0f + std::cos(float(M_PI) * float(it) / float(cfg.iters)));
    const float lr = cfg.lr * decay;
    const float* grads = m.grads();
    adam_step(m.params(), grads, st.trained, adam_m, adam_v, lr, it + 1, cfg);
    if (steps) steps->step(cfg.step_lr * decay, it + 1, cfg);
    if (soft) {
      // β from 20 to 2 over the iterations after the warm-up (AdaRound's annealing).
      const bool regularize = it >= warm;
      const float frac = regularize && cfg.iters > warm ? float(it - warm) / float(cfg.iters - warm) : 0.0f;
      const float beta_exp = 20.0f + (2.0f - 20.0f) * frac;
      loss = loss * rec_scale + soft->step(grads, rec_scale, regularize ? cfg.round_reg : 0.0f, beta_exp,
                                           cfg.round_lr * decay, it + 1, cfg.beta1, cfg.beta2, cfg.eps);
    }
    refresh_quantized(m, st, soft != nullptr);
    if (progress) progress(ReconstructProgress{position, stages, it + 1, cfg.iters, loss, st.name});
    if (held && ((it + 1) % every == 0 || it + 1 == cfg.iters)) {
      if (soft) soft->write(m.params(), m.quant_params(), false);
      check.offer(it + 1, held_out_mse(it + 1));
    }
  }
  m.set_qdrop(0.0f, 0);
  if (held) check.restore();
  // AdaRound ends with hard rounding, written as grid values into the fp weights too.
  if (soft) soft->write(m.params(), m.quant_params(), true);
  if (steps) *learned = steps->learned();
  return held ? check.kept() : cfg.iters;
}

// Trains one stage from input x_q to target y and reports its MSE before and after; the
// stage's outputs with the trained weights are written to x_next (the next stage's input).
template <class M>
BlockReport run_stage(M& m, const Stage& st, int position, int stages, const float* x_q, const float* y,
                      float* x_next, int n, const ReconstructConfig& cfg, std::mt19937_64& rng,
                      std::vector<int>& order, HeldOut* held, ActQuantState* aq,
                      const std::function<void(const ReconstructProgress&)>& progress, const std::atomic<bool>* cancel) {
  const int chunk = std::min(cfg.batch, n);
  BlockReport r;
  r.stage = st.name;
  r.block = st.block;
  stage_chunks(m, st, x_q, x_next, n, chunk);
  r.mse_before = mse(x_next, y, int64_t(n) * st.out_len);
  if (held) held->gather(st, x_q, y);
  r.iters_kept =
      train_stage(m, st, position, stages, x_q, y, r.mse_before, cfg, rng, order, held, aq, &r.steps, progress, cancel);
  stage_chunks(m, st, x_q, x_next, n, chunk);
  r.mse_after = mse(x_next, y, int64_t(n) * st.out_len);
  return r;
}


// Runs the whole model on `images` in chunks of `chunk`, calling visit(first image, count)
// after each chunk's forward.
template <class M>
void forward_chunks(M& m, const float* images, int n, int chunk, const std::function<void(int, int)>& visit) {
  const int64_t img = m.config().image_len();
  for (int s = 0; s < n; s += chunk) {
    const int b = std::min(chunk, n - s);
    m.forward(images + int64_t(s) * img, b);
    visit(s, b);
  }
}

// How a model is cut for reconstruction: its stages in data-flow order, and where a
// whole-model forward leaves each stage's output (the fp targets) and the first stage's input.
struct StagePlan {
  std::vector<Stage> stages;
  bool first_takes_images = false;  // the first stage is the patch embedding
  std::function<const float*(int k)> output;   // stage k's output, [batch, out_len]
  std::function<const float*()> first_input;   // the first stage's input (unless the images)
};

inline void check_config(const ReconstructConfig& cfg, int n) {
  if (n < 1) fail("E_CONFIG", "reconstruction needs at least one calibration image");
  if (cfg.iters < 0 || cfg.batch < 1 || !(cfg.lr >= 0.0f) || !(cfg.qdrop >= 0.0f && cfg.qdrop < 1.0f) ||
      !(cfg.holdout >= 0.0f && cfg.holdout < 1.0f))
    fail("E_CONFIG",
         "reconstruction: iterations ≥ 0, batch ≥ 1, lr ≥ 0, QDrop probability and holdout fraction in [0, 1) expected");
}

// Held-out images: a seeded choice of round(holdout·n) of them (at least 1, at most n − 1),
// taken out of `order`; nullptr without holdout.
inline std::unique_ptr<HeldOut> hold_out(const ReconstructConfig& cfg, int n, std::vector<int>& order) {
  if (!(cfg.holdout > 0.0f && n >= 2)) return nullptr;
  std::mt19937_64 pick(cfg.seed ^ 0x5bd1e995ull);
  std::shuffle(order.begin(), order.end(), pick);
  const int k = std::min(n - 1, std::max(1, int(std::lround(cfg.holdout * float(n)))));
  auto held = std::make_unique<HeldOut>();
  held->ids.assign(order.begin(), order.begin() + k);
  order.erase(order.begin(), order.begin() + k);
  std::sort(order.begin(), order.end());  // the training stream as without holdout, over fewer images
  return held;
}

// Reconstructs the plan's stages in order, each on the output of the reconstructed
// quantized stages before it, towards the full-precision model's output of that stage.
template <class M>
std::vector<BlockReport> reconstruct_stages(M& m, ActQuantState* aq, const StagePlan& plan, const float* images, int n,
                                            const ReconstructConfig& cfg,
                                            const std::function<void(const ReconstructProgress&)>& progress,
                                            const std::atomic<bool>* cancel) {
  check_config(cfg, n);
  const int chunk = std::min(cfg.batch, n);
  const int stages = int(plan.stages.size());
  std::vector<BlockReport> reports;

  // 1. Full-precision targets: every stage's output of the fp model.
  std::vector<size_t> at(size_t(stages) + 1, 0);
  for (int k = 0; k < stages; ++k) at[size_t(k) + 1] = at[size_t(k)] + size_t(n) * size_t(plan.stages[size_t(k)].out_len);
  std::vector<float> y_fp(at.back());
  m.set_act_quant(nullptr);
  m.set_weight_quant(false);
  forward_chunks(m, images, n, chunk, [&](int s, int b) {
    for (int k = 0; k < stages; ++k) {
      const int64_t len = plan.stages[size_t(k)].out_len;
      std::memcpy(y_fp.data() + at[size_t(k)] + size_t(s) * size_t(len), plan.output(k), sizeof(float) * size_t(b * len));
    }
  });
  check_cancel(cancel);

  std::mt19937_64 rng(cfg.seed);
  std::vector<int> order(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) order[size_t(i)] = i;
  std::unique_ptr<HeldOut> held = hold_out(cfg, n, order);

  // 2. The quantized model's input to the first stage: the images, or what the quantized
  // model computes before it.
  m.set_act_quant(aq);
  m.set_weight_quant(true);
  std::vector<float> x_q, x_next;
  const float* x = images;
  if (!plan.first_takes_images && stages > 0) {
    const int64_t len = plan.stages[0].in_len;
    x_q.resize(size_t(n) * size_t(len));
    forward_chunks(m, images, n, chunk, [&](int s, int b) {
      std::memcpy(x_q.data() + int64_t(s) * len, plan.first_input(), sizeof(float) * size_t(b * len));
    });
    x = x_q.data();
  }

  // 3. Stage by stage, each on the output of the reconstructed stages before it.
  for (int k = 0; k < stages; ++k) {
    const Stage& st = plan.stages[size_t(k)];
    x_next.resize(size_t(n) * size_t(st.out_len));
    reports.push_back(
        run_stage(m, st, k, stages, x, y_fp.data() + at[size_t(k)], x_next.data(), n, cfg, rng, order, held.get(), aq, progress, cancel));
    x_q.swap(x_next);
    x = x_q.data();
  }
  m.set_act_quant(aq);
  m.set_weight_quant(true);
  return reports;
}

}  // namespace spdfq::quant::recon
