// The ViT on a CUDA GPU, with CpuVit's public interface (native/cpu/vit_cpu.h) so that
// the binding drives either the same way. Plain C++ header (no CUDA types): the binding,
// compiled by g++, includes it; the CUDA state lives behind a pimpl.
//
// Host-facing semantics, as CpuVit:
// - params() / quant_params() return HOST mirrors of the weight arenas; each call marks
//   the mirror as (possibly) written, and it is uploaded before the next pass. Write
//   through the pointer before the next pass (as the binding and the quantizer do).
// - grads() downloads the last backward's weight gradients into a host mirror.
// - logits(), attention(l), attention_values(l), features(), block_output(l) and
//   embeddings() download into host staging buffers, one per accessor, valid until the
//   same accessor is called again or the next pass.
// - forward/backward take host pointers; *_device variants take device pointers (for
//   device-resident pipelines such as synthesis on the GPU) and device_*() accessors
//   return device pointers into the activation arena.
// Every CUDA failure throws spdfq::Error (E_CUDA, or E_MEMORY for out-of-memory, naming
// the call and file:line); nothing aborts. One pass at a time per model; the model may be
// driven from any host thread (each call makes its device current).
//
// GEMM arithmetic: TF32 tensor cores by default; set_reference(true) (or
// set_gemm_math(GemmMath::Fp32)) selects the FP32 kernels.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "../core/activations.h"
#include "../core/vit_config.h"
#include "../core/act_sites.h"
#include "gemm_math.h"

namespace spdfq::cuda {

using spdfq::TapGrads;  // gradients injected at the taps (core/activations.h)

class CudaVit {
 public:
  // Throws E_CONFIG when `device` is not a usable CUDA device (sm_80 or newer).
  CudaVit(const VitConfig& config, int device = 0);
  ~CudaVit();
  CudaVit(const CudaVit&) = delete;
  CudaVit& operator=(const CudaVit&) = delete;

  const VitConfig& config() const;
  int device() const;
  int64_t param_count() const;
  float* params();  // host mirror, uploaded before the next pass
  float* grads();   // host copy of the last weight gradients (zeros before any)

  // ---- Quantization hooks (as CpuVit) ---------------------------------------------------
  float* quant_params();  // host mirror of the fake-quantized weight arena
  void set_weight_quant(bool on);
  bool weight_quant() const;
  void set_act_quant(const quant::ActQuantState* state);
  // Sites are downloaded to the host to be observed (calibration is not the hot path).
  void set_observer(quant::ActObserver observer);

  // ---- Block-level passes (block reconstruction), host pointers -----------------------
  void prepare(int batch);
  void forward_block(int l, const float* x_in);
  void backward_block(int l, const float* x_in, const float* dout, float* dx_in, bool weight_grads);
  const float* block_output(int l) const;
  const float* embeddings() const;

  void set_reference(bool reference);  // true: FP32 GEMMs; false: TF32
  void set_gemm_math(GemmMath math);
  GemmMath gemm_math() const;
  // Activation memory above which forward refuses a batch (E_MEMORY naming the batch that
  // fits). Default: the device's free memory when the arena is (re)allocated.
  void set_activation_budget(int64_t bytes);
  static int64_t activation_bytes(const VitConfig& c, int batch, bool quant_probs = false);

  void forward(const float* images, int batch, const std::atomic<bool>* cancel = nullptr);
  void backward(const float* dlogits, const TapGrads& taps, float* dimages, bool weight_grads,
                const std::atomic<bool>* cancel = nullptr);
  // Device-pointer variants: images [B, C, H, W], dlogits [B, K], taps and dimages on the device.
  void forward_device(const float* images, int batch, const std::atomic<bool>* cancel = nullptr);
  void backward_device(const float* dlogits, const TapGrads& taps, float* dimages, bool weight_grads,
                       const std::atomic<bool>* cancel = nullptr);

  int batch() const;
  const float* logits() const;
  const float* attention(int block) const;
  const float* attention_values(int block) const;
  const float* features() const;
  const float* device_logits() const;
  const float* device_attention(int block) const;
  const float* device_attention_values(int block) const;
  const float* device_features() const;
  const float* device_params() const;  // after the last upload
  const float* device_grads() const;   // nullptr before the first backward with weight gradients

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace spdfq::cuda
