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

struct ReconstructConfig {
  // Set by the binding from lib/quant/quant-config.ts, where the defaults and their
  // sources live (I&S-ViT's iterations and learning rate).
  int iters{};             // per block
  float lr{};              // Adam learning rate, cosine-decayed to 0
  int batch{};             // images per step
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;  // Adam defaults (Kingma & Ba)
  uint64_t seed{};         // mini-batch sampling when batch < images
};

struct ReconstructProgress {
  int block = 0, blocks = 0, iter = 0, iters = 0;
  double loss = 0.0;
};

struct BlockReport {
  double mse_before = 0.0, mse_after = 0.0;  // over all images, before and after training
};

// The model must have its activation quantizers set and weight quantization on (table
// `wq` describes it). Updates the model's fp weights and its fake-quantized copy.
std::vector<BlockReport> reconstruct_blocks(cpu::CpuVit& model, const ActQuantState* aq, const WeightQuantTable& wq,
                                            const float* images, int n, const ReconstructConfig& cfg,
                                            const std::function<void(const ReconstructProgress&)>& progress,
                                            const std::atomic<bool>* cancel);

}  // namespace spdfq::quant
