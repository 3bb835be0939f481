// The JavaScript class `VitModel` over spdfq::cpu::CpuVit. Long calls (forward, backward)
// are AsyncWorkers returning Promises; their input arrays are referenced, not copied,
// until the work ends. One pass at a time per model: a second call while busy throws
// (lib/vit.ts queues calls so users never see that).
#pragma once

#include <napi.h>

#include <atomic>
#include <memory>

#include "../cpu/vit_cpu.h"

namespace spdfq::binding {

class VitModelWrap : public Napi::ObjectWrap<VitModelWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit VitModelWrap(const Napi::CallbackInfo& info);

  cpu::CpuVit& model() { return *model_; }
  void set_busy(bool b) { busy_ = b; }

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

  void require_idle(Napi::Env env, bool need_forward = false);

  std::unique_ptr<cpu::CpuVit> model_;
  bool busy_ = false;
  std::atomic<bool> cancel_{false};
};

}  // namespace spdfq::binding
