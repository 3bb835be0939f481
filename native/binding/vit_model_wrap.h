// The JavaScript class `VitModel` over spdfq::cpu::CpuVit. Long calls (forward, backward)
// are AsyncWorkers returning Promises; their input arrays are referenced, not copied,
// until the work ends. One pass at a time per model: a second call while busy throws
// (lib/vit.ts queues calls so users never see that).
#pragma once

#include <napi.h>

#include <atomic>
#include <memory>

#include "../cpu/vit_cpu.h"
#include "../quant/act_sites.h"
#include "../quant/weight_quant.h"

namespace spdfq::binding {

class VitModelWrap : public Napi::ObjectWrap<VitModelWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit VitModelWrap(const Napi::CallbackInfo& info);

  cpu::CpuVit& model() { return *model_; }
  void set_busy(bool b) { busy_ = b; }
  std::atomic<bool>* cancel_flag() { return &cancel_; }
  // Throws unless the model exists and no pass is running (need_forward: and one completed).
  void require_idle(Napi::Env env, bool need_forward = false);

  // Quantizers installed on the model (the model points into these).
  quant::ActQuantState act_quant_;
  quant::WeightQuantTable weight_quant_;

 private:
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
  // Quantization (defined in quant_binding.cc).
  Napi::Value Calibrate(const Napi::CallbackInfo& info);
  Napi::Value SetActQuant(const Napi::CallbackInfo& info);
  Napi::Value SetWeightQuant(const Napi::CallbackInfo& info);
  Napi::Value GetQuantParams(const Napi::CallbackInfo& info);
  Napi::Value Reconstruct(const Napi::CallbackInfo& info);
  Napi::Value SetIntegerMode(const Napi::CallbackInfo& info);


  std::unique_ptr<cpu::CpuVit> model_;
  bool busy_ = false;
  std::atomic<bool> cancel_{false};
};

}  // namespace spdfq::binding
