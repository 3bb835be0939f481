// What block reconstruction (native/quant/reconstruct*) adds at the activation sites of a
// CPU model, shared by CpuVit and CpuSwin:
// - QDrop (Wei et al., ICLR 2022): each value is quantized with probability 1 − p and left
//   in float otherwise, independently per value and pass. The stream is a counter-based
//   hash of (seed, pass, row, column), so it does not depend on the thread count.
// - LSQ (Esser et al., ICLR 2020): while set to block l (−1: off), the forward keeps the
//   float inputs of block l's Linear-input sites (qkv, proj, fc1, fc2 inputs) and the
//   backward accumulates d loss/d step of each (lsq_grads(), in that order, reset by each
//   forward), with the clipped inputs' gradients zeroed (quant::lsq_step_gradient).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "../core/act_sites.h"
#include "../core/quantizer.h"
#include "exec.h"
#include "site_quant.h"

namespace spdfq::cpu {

class ReconSiteHooks {
 public:
  void set_lsq(int block) {
    lsq_block_ = block;
    lsq_grads_.fill(0.0);
  }
  const std::array<double, 4>& lsq_grads() const { return lsq_grads_; }
  void set_qdrop(float p, uint64_t seed) {
    qdrop_prob_ = p;
    qdrop_seed_ = seed;
    qdrop_counter_ = 0;
  }

  // Fake-quantizes a site in place with `q`, keeping LSQ's inputs and applying QDrop.
  void quantize(quant::Site s, int block, float* data, int64_t rows, int64_t cols, int64_t ld,
                const quant::TensorQuant& q, const Exec& ex) {
    if (q.kind == quant::QuantKind::None) return;
    const int slot = block == lsq_block_ ? lsq_slot(s) : -1;
    if (slot >= 0 && q.kind == quant::QuantKind::Uniform) {  // Linear inputs are contiguous (ld = cols)
      lsq_inputs_[size_t(slot)].assign(data, data + rows * cols);
      lsq_grads_[size_t(slot)] = 0.0;
    }
    if (qdrop_prob_ > 0.0f) {
      qdrop(q, data, rows, cols, ld, ex);
      return;
    }
    fake_quant_rows(data, rows, cols, ld, q, ex);
  }

  // The backward's hook at a site (after d loss/d site output is complete in `grad`).
  void site_grad(quant::Site s, int block, float* grad, int64_t rows, int64_t cols, const quant::ActQuantState* aq) {
    const int slot = block == lsq_block_ && aq ? lsq_slot(s) : -1;
    if (slot < 0) return;
    const quant::TensorQuant& q = aq->at(s, block);
    const auto& x = lsq_inputs_[size_t(slot)];
    if (q.kind != quant::QuantKind::Uniform || int64_t(x.size()) != rows * cols) return;
    lsq_grads_[size_t(slot)] = quant::lsq_step_gradient(x.data(), grad, rows * cols, q);
  }

 private:
  // The slot of a Linear-input site in a block's LSQ state (−1: not learned).
  static int lsq_slot(quant::Site s) {
    switch (s) {
      case quant::Site::QkvIn: return 0;
      case quant::Site::ProjIn: return 1;
      case quant::Site::Fc1In: return 2;
      case quant::Site::Fc2In: return 3;
      default: return -1;
    }
  }

  void qdrop(const quant::TensorQuant& q, float* data, int64_t rows, int64_t cols, int64_t ld, const Exec& ex) {
    const uint64_t pass = qdrop_counter_++;
    const uint32_t threshold = uint32_t(double(qdrop_prob_) * 4294967296.0);
    const uint64_t seed = qdrop_seed_;
    ex.parallel_rows(rows, [&](int64_t r0, int64_t r1, int) {
      for (int64_t r = r0; r < r1; ++r) {
        float* row = data + r * ld;
        for (int64_t j = 0; j < cols; ++j) {
          uint64_t h = seed ^ (pass * 0x9E3779B97F4A7C15ull) ^ (uint64_t(r) * 0xBF58476D1CE4E5B9ull) ^
                       (uint64_t(j) * 0x94D049BB133111EBull);
          h ^= h >> 31;
          h *= 0xD6E8FEB86659FD93ull;
          h ^= h >> 32;
          if (uint32_t(h) >= threshold) quant::fake_quant_tensor(row + j, 1, q);
        }
      }
    });
  }

  int lsq_block_ = -1;
  std::array<std::vector<float>, 4> lsq_inputs_;
  std::array<double, 4> lsq_grads_{};
  float qdrop_prob_ = 0.0f;
  uint64_t qdrop_seed_ = 0, qdrop_counter_ = 0;
};

}  // namespace spdfq::cpu
