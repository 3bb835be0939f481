// The CUDA model's device memory per batch size, planned like the CPU arena
// (native/cpu/vit_activations.h, same field names): one cudaMalloc, carved by a bump
// planner. Besides what the CPU keeps, the GPU plan holds the batched attention-backward
// scratch (the CPU uses one N×N tile per thread instead), the column-reduction partials,
// and the staging slots for host ↔ device transfers (images, gradients, taps).
// B = batch, N = tokens, D = dim, H = heads, M = MLP hidden, P = patches, L = C·p·p.
#pragma once

#include <cstdint>
#include <vector>

#include "../core/vit_config.h"

namespace spdfq::cuda {

struct DeviceBlockActs {
  float* ln1;       // [B, N, D]
  float* ln1_mean;  // [B·N]
  float* ln1_rstd;  // [B·N]
  float* qkv;       // [B, N, 3D]
  float* att;       // [B, H, N, N]  softmax probabilities — the attention tap
  float* att_q;     // [B, H, N, N]  fake-quantized copy P·v reads; nullptr unless quantized
  float* av;        // [B, N, D]     the A·V tap
  float* qkv_in_q;  // [B, N, D]     post-norm + quantization only (see cpu::BlockActs)
  float* fc1_in_q;  // [B, N, D]     likewise
  float* sum1;      // [B, N, D]
  float* ln2;       // [B, N, D]
  float* ln2_mean;  // [B·N]
  float* ln2_rstd;  // [B·N]
  float* fc1;       // [B, N, M]
  float* act;       // [B, N, M]
  float* sum2;      // [B, N, D]
};

struct DeviceActs {
  float* patches;  // [B, P, L]
  float* x0;       // [B, N, D]
  std::vector<DeviceBlockActs> blocks;
  float* fnorm;       // [B, N, D] (Tokens) or [B, hin, D] (Pooled); nullptr for None
  float* fnorm_mean;
  float* fnorm_rstd;
  float* pooled;   // [B, hin, D]
  float* feat;     // [B, hin, D]  the head input (pooled, or fnorm when Pooled)
  float* logits;   // [B, K]
};

struct DeviceGrads {
  float* dres;      // [B, N, D]
  float* dtmp;      // [B, N, D]
  float* dtmp2;     // [B, N, D]
  float* dqkv;      // [B, N, 3D]
  float* dhid;      // [B, N, M]
  float* dhid2;     // [B, N, M]
  float* dfeat;     // [B, hin, D]
  float* dpool;     // [B, hin, D]
  float* dpatches;  // [B, P, L]
  float* datt;      // [B, H, N, N]  attention backward: dP, then dS in place
  float* reduce;    // column-reduction partials (ops.h reduce_scratch_floats)
  int64_t reduce_floats;
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

inline int head_inputs(const VitConfig& c) { return c.dist_token ? 2 : 1; }

// With base == nullptr only counts; returns bytes. quant: the quantized copies.
int64_t plan_device_activations(const VitConfig& c, int batch, bool quant, char* base, DeviceActs* acts,
                                DeviceGrads* grads, DeviceIo* io);

}  // namespace spdfq::cuda
