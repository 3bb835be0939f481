// CudaVit's state and the passes over it (cuda_vit_forward.cu, cuda_vit_backward.cu).
// CUDA-aware; only the CUDA translation units include it.
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <vector>

#include "fast_math_cuda.h"  // first: see there
#include "../core/vit_params.h"
#include "cuda_activations.h"
#include "cuda_vit.h"
#include "device.h"
#include "ops.h"

namespace spdfq::cuda {

struct CudaVit::Impl {
  VitConfig c;
  int device = 0;
  int64_t nparams = 0;
  cudaStream_t stream = nullptr;

  // Weights: device arenas bound as VitParams of device pointers, and host mirrors.
  DeviceBuffer d_params, d_qparams, d_grads;
  VitParams p{}, pq{}, gp{};
  std::vector<float> h_params, h_qparams, h_grads;
  bool params_dirty = true, qparams_dirty = false, grads_on_device = false;
  bool weight_quant = false;

  const quant::ActQuantState* act_quant = nullptr;
  quant::ActObserver observer;
  GemmMath math = GemmMath::Tf32;
  int64_t budget = -1;  // < 0: the device's free memory

  DeviceBuffer arena;
  int arena_batch = 0;
  bool arena_quant = false;
  int batch = 0;
  VitActs a;
  VitGrads g{};
  DeviceScratch scratch{};
  DeviceIo io{};

  // Host staging for the accessors and the observer.
  mutable std::vector<float> h_logits, h_attn, h_av, h_feat, h_block_out, h_embed;
  std::vector<float> h_site;

  Impl(const VitConfig& config, int dev);
  ~Impl();

  Ctx ctx() const { return Ctx{stream, math, scratch.reduce, scratch.reduce_floats}; }
  const VitParams& wq() const { return weight_quant ? pq : p; }
  void ensure_arena(int b);
  void upload_params();  // pending host writes → device
  void sync() const;
  void check_cancel(const std::atomic<bool>* cancel) const;
  // Downloads n floats into *dst (resized) and returns its data.
  const float* download(std::vector<float>* dst, const float* src, int64_t n) const;
  void upload(float* dst, const float* src, int64_t n) const;
  void zero(float* p, int64_t n) const;
  void copy(float* dst, const float* src, int64_t n) const;

  // Passes (device pointers): core/vit_passes.h's sequences on the GPU op table (cuda_ops.h).
  // Reports a site to the observer (downloaded), then fake-quantizes it in place.
  void observe(quant::Site s, int block, const float* data, int64_t rows, int64_t cols, int64_t ld);
  void site(quant::Site s, int block, float* data, int64_t rows, int64_t cols, int64_t ld);
  const quant::TensorQuant* probs_quant(int block) const;
  const float* block_output(int l) const;
  void forward(const float* images, int b, const std::atomic<bool>* cancel);
  void block_forward(int l, const float* x);
  // Taps: device pointers, or host pointers staged one block at a time when taps_on_host.
  void backward(const float* dlogits, const TapGrads& taps, bool taps_on_host, float* dimages, bool weight_grads,
                const std::atomic<bool>* cancel);
  void block_backward(int l, const float* x, VitParams* gpp);  // no taps (block reconstruction)
  VitParams* begin_weight_grads();  // allocates, zeroes and binds the gradient arena
};

}  // namespace spdfq::cuda
