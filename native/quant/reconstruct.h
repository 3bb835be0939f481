// Block-wise reconstruction (I&S-ViT / BRECQ family, PEERS.md): block by block, train the
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
  int iters = 1000;        // per block; I&S-ViT: 1000 at W4A4/W3A3, 200 at W6A6
  float lr = 4e-5f;        // I&S-ViT's Adam learning rate, cosine-decayed to 0
  int batch = 32;          // images per step (I&S-ViT: 64; we usually have 32 images)
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;  // Adam defaults (Kingma & Ba)
  uint64_t seed = 0;       // mini-batch sampling when batch < images
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
