#include "reconstruct.h"

#include <cmath>
#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <string>

#include "../core/errors.h"

namespace spdfq::quant {

namespace {

using cpu::CpuVit;

void check_cancel(const std::atomic<bool>* cancel) {
  if (cancel && cancel->load(std::memory_order_relaxed)) fail("E_CANCELLED", "reconstruction cancelled");
}

// Runs the whole model on `images` in chunks of `chunk`, calling visit(first image, count)
// after each chunk's forward.
void forward_chunks(CpuVit& m, const float* images, int n, int chunk, const std::function<void(int, int)>& visit) {
  const int64_t img = m.config().image_len();
  for (int s = 0; s < n; s += chunk) {
    const int b = std::min(chunk, n - s);
    m.forward(images + int64_t(s) * img, b);
    visit(s, b);
  }
}

// Runs block l on every image's input (in chunks), writing outputs.
void block_chunks(CpuVit& m, int l, const float* in, float* out, int n, int chunk, int64_t per_image) {
  for (int s = 0; s < n; s += chunk) {
    const int b = std::min(chunk, n - s);
    m.prepare(b);
    m.forward_block(l, in + int64_t(s) * per_image);
    std::memcpy(out + int64_t(s) * per_image, m.block_output(l), sizeof(float) * size_t(b * per_image));
  }
}

}  // namespace

void soft_rounding(float v, float* h, float* dh) {
  const float sig = 1.0f / (1.0f + std::exp(-v));
  const float raw = sig * (kAdaZeta - kAdaGamma) + kAdaGamma;
  *h = std::min(std::max(raw, 0.0f), 1.0f);
  *dh = raw > 0.0f && raw < 1.0f ? (kAdaZeta - kAdaGamma) * sig * (1.0f - sig) : 0.0f;
}

float soft_rounded_weight(float v, float base, const TensorQuant& q, float* dw_dv) {
  float h, dh;
  soft_rounding(v, &h, &dh);
  const float code = base + h + q.zero;
  // The clamp to the grid passes no gradient.
  *dw_dv = code >= q.qmin && code <= q.qmax ? q.scale * dh : 0.0f;
  return (std::min(std::max(code, q.qmin), q.qmax) - q.zero) * q.scale;
}

double rounding_regularizer(float v, float beta, float* dreg_dv) {
  float h, dh;
  soft_rounding(v, &h, &dh);
  const float u = 2.0f * h - 1.0f;
  const float au = std::fabs(u);
  *dreg_dv = au > 0.0f ? -beta * std::pow(au, beta - 1.0f) * (u > 0 ? 1.0f : -1.0f) * 2.0f * dh : 0.0f;
  return 1.0 - std::pow(double(au), double(beta));
}

namespace {

// AdaRound's soft rounding of one block's weight tensors (see reconstruct.h).
class SoftRounding {
 public:
  static constexpr float kZeta = kAdaZeta, kGamma = kAdaGamma;

  SoftRounding(const std::vector<const WeightQuant*>& tensors, const float* params) : tensors_(tensors) {
    for (const WeightQuant* w : tensors) {
      for (int64_t r = 0; r < w->rows; ++r) {
        const float sc = w->channels[size_t(r)].scale;
        for (int64_t j = 0; j < w->cols; ++j) {
          const float x = params[w->offset + r * w->cols + j] / sc;
          const float down = std::floor(x);
          // σ(V)·(ζ − γ) + γ = the fractional part: no change before training.
          const float t = std::min(std::max(((x - down) - kGamma) / (kZeta - kGamma), 1e-4f), 1.0f - 1e-4f);
          base_.push_back(down);
          v_.push_back(std::log(t / (1.0f - t)));
        }
      }
    }
    m_.assign(v_.size(), 0.0f);
    s_.assign(v_.size(), 0.0f);
  }

  static void h(float v, float* out, float* dout) { soft_rounding(v, out, dout); }

  // The rounding variables, for the held-out stopping rule's snapshots.
  const std::vector<float>& variables() const { return v_; }
  void set_variables(const std::vector<float>& v) { v_ = v; }

  // Writes the (soft, or hard at the end) quantized weights into qparams, and with `hard`
  // also the grid values into params, so that plain fake quantization reproduces them.
  void write(float* params, float* qparams, bool hard) const {
    size_t k = 0;
    for (const WeightQuant* w : tensors_)
      for (int64_t r = 0; r < w->rows; ++r) {
        const TensorQuant& q = w->channels[size_t(r)];
        for (int64_t j = 0; j < w->cols; ++j, ++k) {
          float dw;
          const float value = hard ? (std::min(std::max(base_[k] + (v_[k] >= 0.0f ? 1.0f : 0.0f) + q.zero, q.qmin), q.qmax) - q.zero) * q.scale
                                   : soft_rounded_weight(v_[k], base_[k], q, &dw);
          qparams[w->offset + r * w->cols + j] = value;
          if (hard) params[w->offset + r * w->cols + j] = value;
        }
      }
  }

  // One Adam step on V from d loss/d ŵ (grads at the weights' offsets), the MSE scaled by
  // `rec_scale`, plus λ·mean(1 − |2h − 1|^β) when reg > 0. Returns the regularizer's value.
  double step(const float* grads, float rec_scale, float reg, float beta_exp, float lr, int t, float b1, float b2,
              float eps) {
    const float bc1 = 1.0f - std::pow(b1, float(t)), bc2 = 1.0f - std::pow(b2, float(t));
    const float inv_n = 1.0f / float(v_.size());
    double reg_sum = 0.0;
    size_t k = 0;
    for (const WeightQuant* w : tensors_)
      for (int64_t r = 0; r < w->rows; ++r) {
        const TensorQuant& q = w->channels[size_t(r)];
        for (int64_t j = 0; j < w->cols; ++j, ++k) {
          float dw;
          soft_rounded_weight(v_[k], base_[k], q, &dw);
          float g = rec_scale * grads[w->offset + r * w->cols + j] * dw;
          if (reg > 0.0f) {
            float dr;
            reg_sum += rounding_regularizer(v_[k], beta_exp, &dr);
            g += reg * inv_n * dr;
          }
          m_[k] = b1 * m_[k] + (1.0f - b1) * g;
          s_[k] = b2 * s_[k] + (1.0f - b2) * g * g;
          v_[k] -= lr * (m_[k] / bc1) / (std::sqrt(s_[k] / bc2) + eps);
        }
      }
    return reg > 0.0f ? reg * reg_sum * inv_n : 0.0;
  }

 private:
  std::vector<const WeightQuant*> tensors_;
  std::vector<float> base_, v_, m_, s_;
};

double mse(const float* a, const float* b, int64_t n) {
  double e = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = double(a[i]) - b[i];
    e += d * d;
  }
  return e / double(n);
}

}  // namespace

namespace {

// The trained tensors of block l: its Linear weights and biases (STE), or only the
// biases (AdaRound, whose weights move through their rounding variables).
std::vector<const ParamInfo*> trained_params(const std::vector<ParamInfo>& infos, int l, bool weights) {
  const std::string prefix = "blocks." + std::to_string(l) + ".";
  std::vector<const ParamInfo*> out;
  for (const auto& p : infos) {
    const bool linear = p.name.rfind(prefix, 0) == 0 && (p.name.find(".attn.") != std::string::npos || p.name.find(".mlp.") != std::string::npos);
    const bool bias = p.name.size() > 5 && p.name.compare(p.name.size() - 5, 5, ".bias") == 0;
    if (linear && (weights || bias)) out.push_back(&p);
  }
  return out;
}

// The held-out images of the stopping rule, gathered for one block: inputs and targets.
struct HeldOut {
  std::vector<float> x, y, out;
  int n = 0;
};

// Trains block l on the images `order` lists (inputs x_q [*, N, D], targets y_l) for
// cfg.iters iterations; with held-out images, keeps the weights of the best check.
// Returns the iteration kept.
int train_block(CpuVit& m, int l, const WeightQuantTable& wq, const std::vector<ParamInfo>& infos, const float* x_q,
                const float* y_l, double mse0, const ReconstructConfig& cfg, std::mt19937_64& rng,
                std::vector<int>& order, HeldOut* held, const std::function<void(const ReconstructProgress&)>& progress,
                const std::atomic<bool>* cancel) {
  const VitConfig& c = m.config();
  const int64_t per_image = int64_t(c.tokens()) * c.dim;
  const int n = int(order.size());
  const int b = std::min(cfg.batch, n);
  const bool ada = cfg.rounding == Rounding::AdaRound;
  const std::string prefix = "blocks." + std::to_string(l) + ".";
  std::vector<const WeightQuant*> block_wq;
  for (const auto& w : wq)
    if (w.name.rfind(prefix, 0) == 0) block_wq.push_back(&w);
  const auto trained = trained_params(infos, l, !ada);
  int64_t nparams = 0;
  for (auto* p : trained) nparams += p->size;
  std::vector<float> adam_m(size_t(nparams), 0.0f), adam_v(size_t(nparams), 0.0f);
  std::unique_ptr<SoftRounding> soft = ada ? std::make_unique<SoftRounding>(block_wq, m.params()) : nullptr;
  const float rec_scale = mse0 > 0.0 ? float(1.0 / mse0) : 1.0f;
  const int warm = int(cfg.round_warmup * float(cfg.iters));

  std::vector<float> xin(size_t(b) * per_image), target(size_t(b) * per_image), dout(size_t(b) * per_image);
  int cursor = n;  // `order` carries its shuffles over from the previous block
  const uint64_t qdrop_seed = cfg.seed * 1000003ull + uint64_t(l);
  m.set_qdrop(cfg.qdrop, qdrop_seed);

  // The held-out stopping rule: the trained tensors (and rounding variables) of the best check.
  int kept = cfg.iters;
  double best = 0.0;
  std::vector<float> best_params, best_v;
  auto snapshot = [&](int it) {
    kept = it;
    best_params.clear();
    for (auto* p : trained) best_params.insert(best_params.end(), m.params() + p->offset, m.params() + p->offset + p->size);
    if (soft) best_v = soft->variables();
  };
  auto held_out_mse = [&](int it) {
    m.set_qdrop(0.0f, 0);  // the model as it will run
    block_chunks(m, l, held->x.data(), held->out.data(), held->n, b, per_image);
    m.set_qdrop(cfg.qdrop, qdrop_seed + uint64_t(it) * 7919ull);
    return mse(held->out.data(), held->y.data(), int64_t(held->n) * per_image);
  };
  const int every = std::max(1, cfg.check_every);
  if (held) {
    if (soft) soft->write(m.params(), m.quant_params(), false);
    best = held_out_mse(0);
    snapshot(0);
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
      std::memcpy(xin.data() + int64_t(i) * per_image, x_q + int64_t(idx) * per_image, sizeof(float) * size_t(per_image));
      std::memcpy(target.data() + int64_t(i) * per_image, y_l + int64_t(idx) * per_image, sizeof(float) * size_t(per_image));
    }
    cursor += b;
    if (soft) soft->write(m.params(), m.quant_params(), false);
    m.prepare(b);
    m.forward_block(l, xin.data());
    const float* out = m.block_output(l);
    const int64_t cnt = int64_t(b) * per_image;
    double loss = 0.0;
    for (int64_t i = 0; i < cnt; ++i) {
      const float d = out[i] - target[size_t(i)];
      loss += double(d) * d;
      dout[size_t(i)] = 2.0f * d / float(cnt);
    }
    loss /= double(cnt);
    if (!std::isfinite(loss))
      fail("E_NUMERIC", "reconstruction of block " + std::to_string(l) + ": loss became " + std::to_string(loss) +
                            " at iteration " + std::to_string(it));
    m.backward_block(l, xin.data(), dout.data(), nullptr, true);

    // Adam with cosine decay to 0 over the block's iterations.
    const float decay = 0.5f * (1.0f + std::cos(float(M_PI) * float(it) / float(cfg.iters)));
    const float lr = cfg.lr * decay;
    const float bc1 = 1.0f - std::pow(cfg.beta1, float(it + 1)), bc2 = 1.0f - std::pow(cfg.beta2, float(it + 1));
    float* params = m.params();
    const float* grads = m.grads();
    int64_t k = 0;
    for (auto* p : trained)
      for (int64_t i = 0; i < p->size; ++i, ++k) {
        const float g = grads[p->offset + i];
        adam_m[size_t(k)] = cfg.beta1 * adam_m[size_t(k)] + (1.0f - cfg.beta1) * g;
        adam_v[size_t(k)] = cfg.beta2 * adam_v[size_t(k)] + (1.0f - cfg.beta2) * g * g;
        params[p->offset + i] -= lr * (adam_m[size_t(k)] / bc1) / (std::sqrt(adam_v[size_t(k)] / bc2) + cfg.eps);
      }
    if (soft) {
      // β from 20 to 2 over the iterations after the warm-up (AdaRound's annealing).
      const bool regularize = it >= warm;
      const float frac = regularize && cfg.iters > warm ? float(it - warm) / float(cfg.iters - warm) : 0.0f;
      const float beta_exp = 20.0f + (2.0f - 20.0f) * frac;
      loss = loss * rec_scale + soft->step(grads, rec_scale, regularize ? cfg.round_reg : 0.0f, beta_exp,
                                           cfg.round_lr * decay, it + 1, cfg.beta1, cfg.beta2, cfg.eps);
    }
    // Biases are not quantized: copy them; weights are re-fake-quantized.
    float* qp = m.quant_params();
    for (auto* p : trained) std::memcpy(qp + p->offset, params + p->offset, sizeof(float) * size_t(p->size));
    if (!soft)
      for (auto* w : block_wq) apply_weight_quant(*w, params, qp);
    if (progress) progress(ReconstructProgress{l, c.depth, it + 1, cfg.iters, loss});
    if (held && ((it + 1) % every == 0 || it + 1 == cfg.iters)) {
      if (soft) soft->write(m.params(), m.quant_params(), false);
      const double e = held_out_mse(it + 1);
      if (e < best) {
        best = e;
        snapshot(it + 1);
      }
    }
  }
  m.set_qdrop(0.0f, 0);
  if (held && kept != cfg.iters) {  // back to the best check's tensors
    float* params = m.params();
    float* qp = m.quant_params();
    size_t k = 0;
    for (auto* p : trained) {
      std::memcpy(params + p->offset, best_params.data() + k, sizeof(float) * size_t(p->size));
      std::memcpy(qp + p->offset, params + p->offset, sizeof(float) * size_t(p->size));
      k += size_t(p->size);
    }
    if (soft) soft->set_variables(best_v);
    else
      for (auto* w : block_wq) apply_weight_quant(*w, params, qp);
  }
  // AdaRound ends with hard rounding, written as grid values into the fp weights too.
  if (soft) soft->write(m.params(), m.quant_params(), true);
  return kept;
}

}  // namespace

std::vector<BlockReport> reconstruct_blocks(CpuVit& m, const ActQuantState* aq, const WeightQuantTable& wq,
                                            const float* images, int n, const ReconstructConfig& cfg,
                                            const std::function<void(const ReconstructProgress&)>& progress,
                                            const std::atomic<bool>* cancel) {
  const VitConfig& c = m.config();
  if (n < 1) fail("E_CONFIG", "reconstruction needs at least one calibration image");
  if (cfg.iters < 0 || cfg.batch < 1 || !(cfg.lr >= 0.0f) || !(cfg.qdrop >= 0.0f && cfg.qdrop < 1.0f) ||
      !(cfg.holdout >= 0.0f && cfg.holdout < 1.0f))
    fail("E_CONFIG",
         "reconstruction: iterations ≥ 0, batch ≥ 1, lr ≥ 0, QDrop probability and holdout fraction in [0, 1) expected");
  const int L = c.depth;
  const int64_t per_image = int64_t(c.tokens()) * c.dim;
  const int chunk = std::min(cfg.batch, n);
  std::vector<BlockReport> reports(static_cast<size_t>(L));

  // 1. Full-precision targets: every block's output of the fp model.
  std::vector<float> y_fp(size_t(L) * n * per_image);
  m.set_act_quant(nullptr);
  m.set_weight_quant(false);
  forward_chunks(m, images, n, chunk, [&](int s, int b) {
    for (int l = 0; l < L; ++l)
      std::memcpy(y_fp.data() + (size_t(l) * n + s) * per_image, m.block_output(l), sizeof(float) * size_t(b * per_image));
  });
  check_cancel(cancel);

  // 2. The quantized model's block-0 input (quantized patches → embeddings).
  m.set_act_quant(aq);
  m.set_weight_quant(true);
  std::vector<float> x_q(size_t(n) * per_image), x_next(size_t(n) * per_image);
  forward_chunks(m, images, n, chunk, [&](int s, int b) {
    std::memcpy(x_q.data() + int64_t(s) * per_image, m.embeddings(), sizeof(float) * size_t(b * per_image));
  });

  const auto infos = plan_params(c);
  std::mt19937_64 rng(cfg.seed);
  std::vector<int> order(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) order[size_t(i)] = i;
  // Held-out images: a seeded choice of round(holdout·n) of them (at least 1, at most n − 1).
  std::unique_ptr<HeldOut> held;
  std::vector<int> held_ids;
  if (cfg.holdout > 0.0f && n >= 2) {
    std::mt19937_64 pick(cfg.seed ^ 0x5bd1e995ull);
    std::shuffle(order.begin(), order.end(), pick);
    const int k = std::min(n - 1, std::max(1, int(std::lround(cfg.holdout * float(n)))));
    held_ids.assign(order.begin(), order.begin() + k);
    order.erase(order.begin(), order.begin() + k);
    std::sort(order.begin(), order.end());  // the training stream as without holdout, over fewer images
    held = std::make_unique<HeldOut>();
    held->n = k;
    held->x.resize(size_t(k) * per_image);
    held->y.resize(size_t(k) * per_image);
    held->out.resize(size_t(k) * per_image);
  }
  for (int l = 0; l < L; ++l) {
    const float* y_l = y_fp.data() + size_t(l) * n * per_image;
    block_chunks(m, l, x_q.data(), x_next.data(), n, chunk, per_image);
    reports[size_t(l)].mse_before = mse(x_next.data(), y_l, int64_t(n) * per_image);
    for (size_t i = 0; held && i < held_ids.size(); ++i) {
      const int64_t at = int64_t(held_ids[i]) * per_image;
      std::memcpy(held->x.data() + int64_t(i) * per_image, x_q.data() + at, sizeof(float) * size_t(per_image));
      std::memcpy(held->y.data() + int64_t(i) * per_image, y_l + at, sizeof(float) * size_t(per_image));
    }
    reports[size_t(l)].iters_kept = train_block(m, l, wq, infos, x_q.data(), y_l, reports[size_t(l)].mse_before, cfg,
                                                rng, order, held.get(), progress, cancel);
    block_chunks(m, l, x_q.data(), x_next.data(), n, chunk, per_image);
    reports[size_t(l)].mse_after = mse(x_next.data(), y_l, int64_t(n) * per_image);
    x_q.swap(x_next);
  }
  m.set_act_quant(aq);
  m.set_weight_quant(true);
  return reports;
}

}  // namespace spdfq::quant
