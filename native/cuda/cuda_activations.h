// The CUDA model's device memory per batch size: the model's layout (core/activations.h)
// carved from one cudaMalloc by a bump planner, the attention backward's scratch sized as
// the batched dP/dS [B, H, N, N] (the CPU uses one N×N tile per thread instead), then the
// GPU's own extras: the column-reduction partials and the staging slots for host ↔ device
// transfers (images, gradients, taps).
// B = batch, N = tokens, D = dim, H = heads, M = MLP hidden, P = patches, L = C·p·p.
#pragma once

#include <cstdint>
#include <vector>

#include "../core/activations.h"

namespace spdfq::cuda {

// Partials of the deterministic two-stage column reductions (ops.h reduce_scratch_floats).
struct DeviceScratch {
  float* reduce = nullptr;
  int64_t reduce_floats = 0;
};

// Staging for the host API (the device API reads and writes caller memory instead).
struct DeviceIo {
  float* images;    // [B, C, H, W]
  float* dimages;   // [B, C, H, W]
  float* dlogits;   // [B, K]
  float* tap_attn;  // [B, H, N, N]  one block's injected gradient at a time
  float* tap_av;    // [B, N, D]
  float* x_in;      // [B, N, D]  block-level passes: the block input
};

// With base == nullptr only counts; returns bytes. quant: the quantized copies.
int64_t plan_device_activations(const VitConfig& c, int batch, bool quant, char* base, VitActs* acts,
                                VitGrads* grads, DeviceScratch* scratch, DeviceIo* io);

}  // namespace spdfq::cuda
