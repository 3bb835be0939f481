#include "reconstruct.h"

#include <cmath>
#include <cstring>
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

double mse(const float* a, const float* b, int64_t n) {
  double e = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = double(a[i]) - b[i];
    e += d * d;
  }
  return e / double(n);
}

}  // namespace

std::vector<BlockReport> reconstruct_blocks(CpuVit& m, const ActQuantState* aq, const WeightQuantTable& wq,
                                            const float* images, int n, const ReconstructConfig& cfg,
                                            const std::function<void(const ReconstructProgress&)>& progress,
                                            const std::atomic<bool>* cancel) {
  const VitConfig& c = m.config();
  if (n < 1) fail("E_CONFIG", "reconstruction needs at least one calibration image");
  if (cfg.iters < 0 || cfg.batch < 1 || !(cfg.lr >= 0.0f))
    fail("E_CONFIG", "reconstruction: iterations ≥ 0, batch ≥ 1 and lr ≥ 0 expected");
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

  // Parameter offsets of the trained tensors: each block's four linear layers (weights
  // and biases); LayerNorms stay frozen, as do quantizer step sizes.
  const auto infos = plan_params(c);
  std::mt19937_64 rng(cfg.seed);
  std::vector<float> xin(size_t(chunk) * per_image), target(size_t(chunk) * per_image), dout(size_t(chunk) * per_image);
  std::vector<int> order(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) order[size_t(i)] = i;

  for (int l = 0; l < L; ++l) {
    const std::string prefix = "blocks." + std::to_string(l) + ".";
    std::vector<const ParamInfo*> trained;
    for (const auto& p : infos)
      if (p.name.rfind(prefix, 0) == 0 && (p.name.find(".attn.") != std::string::npos || p.name.find(".mlp.") != std::string::npos))
        trained.push_back(&p);
    std::vector<const WeightQuant*> block_wq;
    for (const auto& w : wq)
      if (w.name.rfind(prefix, 0) == 0) block_wq.push_back(&w);
    int64_t nparams = 0;
    for (auto* p : trained) nparams += p->size;
    std::vector<float> adam_m(size_t(nparams), 0.0f), adam_v(size_t(nparams), 0.0f);

    const float* y_l = y_fp.data() + size_t(l) * n * per_image;
    block_chunks(m, l, x_q.data(), x_next.data(), n, chunk, per_image);
    reports[size_t(l)].mse_before = mse(x_next.data(), y_l, int64_t(n) * per_image);

    int cursor = n;
    for (int it = 0; it < cfg.iters; ++it) {
      check_cancel(cancel);
      // Mini-batch: a fresh permutation each epoch (all images when batch ≥ n).
      const int b = chunk;
      if (cursor + b > n) {
        std::shuffle(order.begin(), order.end(), rng);
        cursor = 0;
      }
      for (int i = 0; i < b; ++i) {
        const int idx = order[size_t(cursor + i)];
        std::memcpy(xin.data() + int64_t(i) * per_image, x_q.data() + int64_t(idx) * per_image, sizeof(float) * size_t(per_image));
        std::memcpy(target.data() + int64_t(i) * per_image, y_l + int64_t(idx) * per_image, sizeof(float) * size_t(per_image));
      }
      cursor += b;
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
      const float lr = cfg.lr * 0.5f * (1.0f + std::cos(float(M_PI) * float(it) / float(cfg.iters)));
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
      // Biases are not quantized: copy them; weights are re-fake-quantized.
      float* qp = m.quant_params();
      for (auto* p : trained) std::memcpy(qp + p->offset, params + p->offset, sizeof(float) * size_t(p->size));
      for (auto* w : block_wq) apply_weight_quant(*w, params, qp);
      if (progress) progress(ReconstructProgress{l, L, it + 1, cfg.iters, loss});
    }
    block_chunks(m, l, x_q.data(), x_next.data(), n, chunk, per_image);
    reports[size_t(l)].mse_after = mse(x_next.data(), y_l, int64_t(n) * per_image);
    x_q.swap(x_next);
  }
  m.set_act_quant(aq);
  m.set_weight_quant(true);
  return reports;
}

}  // namespace spdfq::quant
