// Block-wise reconstruction (I&S-ViT / BRECQ family): block by block, train the
// block's linear weights (through straight-through fake quantization, quantizer scales
// and LayerNorms frozen) to minimize ‖block_q(x_q) − block_fp(x_fp)‖² on the calibration
// images, where x_q is the input the already-reconstructed quantized blocks produce and
// block_fp(x_fp) the full-precision model's output of that block. Adam, cosine decay to 0.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "../cpu/vit_cpu.h"
#include "adaround.h"
#include "weight_quant.h"

namespace spdfq::cpu {
class CpuSwin;
}

namespace spdfq::quant {

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
  // Also reconstruct the patch embedding (before the blocks, towards the fp embeddings) and
  // the head (after them, towards the fp logits), as BRECQ reconstructs first and last layers.
  bool embed{};
  bool head{};
  // LSQ: also learn the step sizes of each block's Linear-input activation quantizers
  // (qkv, proj, fc1, fc2 inputs; uniform grids, pre-norm blocks), Adam on log(step) at
  // `step_lr`, cosine-decayed like the weights (Esser et al. 2020; the log keeps steps
  // positive and makes the update relative).
  bool learn_steps{};
  float step_lr{};
};

struct ReconstructProgress {
  int block = 0, blocks = 0, iter = 0, iters = 0;  // block: the stage's position among `blocks` stages
  double loss = 0.0;
  std::string stage;  // "patch_embed", "blocks.3", "head"; a Swin's: "features.0", "features.1.0", "features.2", "head"
};

struct BlockReport {
  std::string stage;  // "patch_embed", "blocks.3", "head"
  int block = -1;     // the block index of a block stage (a Swin's: stage-major)
  double mse_before = 0.0, mse_after = 0.0;  // over all images, before and after training
  int iters_kept = 0;  // the iteration whose weights the block keeps (cfg.iters without holdout)
  // Learned step sizes (learn_steps): the block's Linear-input sites and their new steps.
  std::vector<std::pair<Site, float>> steps;
};

// The model must have its activation quantizers set and weight quantization on (table
// `wq` describes it). Updates the model's fp weights and its fake-quantized copy.
// With learn_steps, `aq` (the model's activation quantizers) receives the learned steps.
std::vector<BlockReport> reconstruct_blocks(cpu::CpuVit& model, ActQuantState* aq, const WeightQuantTable& wq,
                                            const float* images, int n, const ReconstructConfig& cfg,
                                            const std::function<void(const ReconstructProgress&)>& progress,
                                            const std::atomic<bool>* cancel);

// The same for a Swin (reconstruct_swin.cc): its stages in data-flow order — the patch
// embedding (cfg.embed), each block, each patch merging after its stage's blocks (its
// reduction trained towards the fp merge output), the head (cfg.head) — with `wq` over
// torchvision's names. LSQ learns each block's qkv, proj, fc1 and fc2 input steps, as the ViT's.
std::vector<BlockReport> reconstruct_swin(cpu::CpuSwin& model, ActQuantState* aq, const WeightQuantTable& wq,
                                          const float* images, int n, const ReconstructConfig& cfg,
                                          const std::function<void(const ReconstructProgress&)>& progress,
                                          const std::atomic<bool>* cancel);

// One Swin stage's reconstruction loss on `batch` inputs (in_count floats) towards `target`
// (target_count floats), returned, and its gradient with respect to the stage's trained
// tensors (`grads`: the model's parameter layout, every other entry 0), as each training
// step computes them; `stage` as BlockReport::stage ("features.0", "features.1.0",
// "features.2", "head"). For the finite-difference tests. E_CONFIG for an unknown stage,
// E_TENSOR for lengths that do not fit it.
double swin_stage_gradient(cpu::CpuSwin& model, const WeightQuantTable& wq, const std::string& stage, const float* in,
                           int64_t in_count, const float* target, int64_t target_count, int batch, float* grads);

}  // namespace spdfq::quant
