// AdaRound (Nagel et al. 2020; BRECQ's block-wise form): a rounding variable per weight
// chooses between rounding down and up, trained with a regularizer annealed to hard 0/1.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "weight_quant.h"

namespace spdfq::quant {

// How the block's weights are trained: the weights themselves through straight-through
// rounding (I&S-ViT), or AdaRound's soft rounding variables with the weights frozen
// (Nagel et al. 2020; BRECQ's block-wise form): h(V) = clip(σ(V)(ζ − γ) + γ, 0, 1) chooses
// between rounding down and up, a regularizer λ·mean(1 − |2h − 1|^β) with β annealed from
// 20 to 2 pushes h to 0 or 1, and the final rounding is h ≥ ½.
enum class Rounding { Ste, AdaRound };

// AdaRound's stretch of the sigmoid (ζ, γ), from its paper.
constexpr float kAdaZeta = 1.1f, kAdaGamma = -0.1f;
// h(V) = clip(σ(V)(ζ − γ) + γ, 0, 1) and dh/dV (0 where the clip is active).
void soft_rounding(float v, float* h, float* dh);
// The weight a rounding variable gives: ŵ = (clamp(⌊w/s⌋ + h(V) + z, qmin, qmax) − z)·s,
// with dŵ/dV (0 where the clamp is active). `base` = ⌊w/s⌋.
float soft_rounded_weight(float v, float base, const TensorQuant& q, float* dw_dv);
// One element's rounding regularizer 1 − |2h(V) − 1|^β and its derivative in V.
double rounding_regularizer(float v, float beta, float* dreg_dv);

// The soft rounding of a set of weight tensors (one stage's quantized Linear weights).
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

}  // namespace spdfq::quant
