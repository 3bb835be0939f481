// Block-wise reconstruction (I&S-ViT / BRECQ family): block by block, train the
// block's linear weights (through straight-through fake quantization, quantizer scales
// and LayerNorms frozen) to minimize ‖block_q(x_q) − block_fp(x_fp)‖² on the calibration
// images, where x_q is the input the already-reconstructed quantized blocks produce and
// block_fp(x_fp) the full-precision model's output of that block. Adam, cosine decay to 0.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

#include "../cpu/vit_cpu.h"
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

struct ReconstructConfig {
  // Set by the binding from lib/quant/quant-config.ts, where the defaults and their
  // sources live (I&S-ViT's iterations and learning rate; AdaRound's constants).
  int iters{};             // per block
  float lr{};              // Adam learning rate of the trained weights and biases, cosine-decayed to 0
  int batch{};             // images per step
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;  // Adam defaults (Kingma & Ba)
  uint64_t seed{};         // mini-batch sampling when batch < images
  Rounding rounding{};
  float round_lr{};        // AdaRound: Adam learning rate of V
  float round_reg{};       // AdaRound: λ, against the block MSE divided by its value before training
  float round_warmup{};    // AdaRound: fraction of the iterations without the regularizer
  float qdrop{};           // QDrop: probability that an activation value stays in float
  // Guard against overfitting few images: this fraction of the images is held out, each
  // block's held-out MSE is measured every `check_every` iterations, and the block keeps
  // the weights of its best check (0: off, every image trains and the last step is kept).
  float holdout{};
  int check_every{};
};

struct ReconstructProgress {
  int block = 0, blocks = 0, iter = 0, iters = 0;
  double loss = 0.0;
};

struct BlockReport {
  double mse_before = 0.0, mse_after = 0.0;  // over all images, before and after training
  int iters_kept = 0;  // the iteration whose weights the block keeps (cfg.iters without holdout)
};

// The model must have its activation quantizers set and weight quantization on (table
// `wq` describes it). Updates the model's fp weights and its fake-quantized copy.
std::vector<BlockReport> reconstruct_blocks(cpu::CpuVit& model, const ActQuantState* aq, const WeightQuantTable& wq,
                                            const float* images, int n, const ReconstructConfig& cfg,
                                            const std::function<void(const ReconstructProgress&)>& progress,
                                            const std::atomic<bool>* cancel);

}  // namespace spdfq::quant
