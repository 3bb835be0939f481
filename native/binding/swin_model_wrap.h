// The JavaScript class `SwinModel` over a spdfq::cpu::CpuSwin (CPU only, docs/swin.md),
// and `swinParamInfo(config)`, the parameter layout lib/swin.ts checks named weights
// against. forward() and backward() are AsyncWorkers returning Promises, with their input
// arrays referenced, not copied, until the work ends; one pass at a time per model. Every method runs inside Guarded, so a C++ exception reaches JavaScript
// as a coded Error and never terminates the process.
#pragma once

#include <napi.h>

#include <atomic>
#include <memory>

#include "../core/act_sites.h"
#include "../cpu/swin_cpu.h"
#include "../quant/weight_quant.h"

namespace spdfq::binding {

class SwinModelWrap : public Napi::ObjectWrap<SwinModelWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit SwinModelWrap(const Napi::CallbackInfo& info);

  cpu::CpuSwin& model() { return *model_; }
  void set_busy(bool b) { busy_ = b; }
  // Throws unless the model exists and no pass is running.
  void require_idle(Napi::Env env);
  std::atomic<bool>* cancel_flag() { return &cancel_; }
  // Calls f with the model: the calibration worker's access (calibrate_worker.h).
  template <class F>
  void visit_models(F&& f) {
    f(*model_);
  }

  // Quantizers installed on the model (the model points into these).
  quant::ActQuantState act_quant_;
  quant::WeightQuantTable weight_quant_;

 private:
  template <Napi::Value (SwinModelWrap::*Method)(const Napi::CallbackInfo&)>
  Napi::Value Guarded(const Napi::CallbackInfo& info);

  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value Backward(const Napi::CallbackInfo& info);
  Napi::Value GetGrads(const Napi::CallbackInfo& info);
  Napi::Value GetParams(const Napi::CallbackInfo& info);
  Napi::Value SetParams(const Napi::CallbackInfo& info);
  Napi::Value Output(const Napi::CallbackInfo& info);
  Napi::Value ActivationBytes(const Napi::CallbackInfo& info);
  Napi::Value SetThreads(const Napi::CallbackInfo& info);
  Napi::Value SetReference(const Napi::CallbackInfo& info);
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  // Quantization (defined in swin_quant_binding.cc).
  Napi::Value Calibrate(const Napi::CallbackInfo& info);
  Napi::Value SetActQuant(const Napi::CallbackInfo& info);
  Napi::Value SetWeightQuant(const Napi::CallbackInfo& info);
  Napi::Value Reconstruct(const Napi::CallbackInfo& info);
  Napi::Value StageGradient(const Napi::CallbackInfo& info);
  // The fake-quantized weights from the fp weights and weight_quant_ (after either changed).
  void refresh_quant_params();

  std::unique_ptr<cpu::CpuSwin> model_;
  bool busy_ = false;
  std::atomic<bool> cancel_{false};
};

// Every SwinModel object carries this N-API type tag, so a function that takes either model
// (synthesize, native/binding/synth_worker.cc) can tell it from a VitModel before unwrapping.
extern const napi_type_tag kSwinModelTag;

// Adds SwinModel and swinParamInfo to the addon's exports.
void register_swin(Napi::Env env, Napi::Object exports);

}  // namespace spdfq::binding
