// The JavaScript class `VitModel` over a VitEngine: spdfq::cpu::CpuVit, or
// spdfq::cuda::CudaVit when created with device 'cuda:N' (vit_engine.h). Long calls
// (forward, backward) are AsyncWorkers returning Promises; their input arrays are
// referenced, not copied, until the work ends. One pass at a time per model: a second call
// while busy throws (lib/vit.ts queues calls so users never see that). Every method runs
// inside Guarded, so a C++ exception (spdfq::Error from either engine, CUDA failures
// included) reaches JavaScript as a coded Error and never terminates the process.
#pragma once

#include <napi.h>

#include <atomic>
#include <memory>

#include "../core/act_sites.h"
#include "../quant/weight_quant.h"
#include "vit_engine.h"

namespace spdfq::binding {

class VitModelWrap : public Napi::ObjectWrap<VitModelWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit VitModelWrap(const Napi::CallbackInfo& info);

  // The engine; callers check require_idle() first (it is null after dispose()).
  VitEngine& engine() { return *engine_; }
  // Calls f with the engine's model (CpuVit or CudaVit): the calibration worker's access.
  template <class F>
  void visit_models(F&& f) {
    engine_->visit(f);
  }
  const VitConfig& config() const { return engine_->config(); }
  // The CpuVit for an operation only the CPU engine runs (synthesis, reconstruction,
  // integer execution); on a CUDA model, spdfq::Error E_CONFIG naming `what`.
  cpu::CpuVit& cpu_model(const char* what) { return engine_->cpu(what); }
  void set_busy(bool b) { busy_ = b; }
  std::atomic<bool>* cancel_flag() { return &cancel_; }
  // Throws unless the model exists and no pass is running (need_forward: and one completed).
  void require_idle(Napi::Env env, bool need_forward = false);

  // Quantizers installed on the model (the model points into these).
  quant::ActQuantState act_quant_;
  quant::WeightQuantTable weight_quant_;

 private:
  // Runs a method and turns any C++ exception other than a Napi::Error into a coded JS
  // error (node-addon-api itself only converts Napi::Error; anything else would abort).
  template <Napi::Value (VitModelWrap::*Method)(const Napi::CallbackInfo&)>
  Napi::Value Guarded(const Napi::CallbackInfo& info);

  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value Backward(const Napi::CallbackInfo& info);
  Napi::Value Attention(const Napi::CallbackInfo& info);
  Napi::Value AttentionValues(const Napi::CallbackInfo& info);
  Napi::Value Features(const Napi::CallbackInfo& info);
  Napi::Value GetParams(const Napi::CallbackInfo& info);
  Napi::Value SetParams(const Napi::CallbackInfo& info);
  Napi::Value GetGrads(const Napi::CallbackInfo& info);
  Napi::Value ParamInfo(const Napi::CallbackInfo& info);
  Napi::Value ActivationBytes(const Napi::CallbackInfo& info);
  Napi::Value SetThreads(const Napi::CallbackInfo& info);
  Napi::Value SetReference(const Napi::CallbackInfo& info);
  Napi::Value SetActivationBudget(const Napi::CallbackInfo& info);
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value DeviceName(const Napi::CallbackInfo& info);
  // Quantization (defined in quant_binding.cc).
  Napi::Value Calibrate(const Napi::CallbackInfo& info);
  Napi::Value SetActQuant(const Napi::CallbackInfo& info);
  Napi::Value SetWeightQuant(const Napi::CallbackInfo& info);
  Napi::Value GetQuantParams(const Napi::CallbackInfo& info);
  Napi::Value Reconstruct(const Napi::CallbackInfo& info);
  Napi::Value SetIntegerMode(const Napi::CallbackInfo& info);

  std::unique_ptr<VitEngine> engine_;
  bool busy_ = false;
  std::atomic<bool> cancel_{false};
};

}  // namespace spdfq::binding
