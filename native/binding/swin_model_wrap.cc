#include "swin_model_wrap.h"

#include <string>
#include <vector>

#include "../core/errors.h"
#include "config_names.h"
#include "js_object.h"
#include "tensor_args.h"

namespace spdfq::binding {

namespace {

// The plain config object lib/swin.ts completes and validates (every field present).
SwinConfig parse_swin_config(const Napi::Value& v) {
  const JsObject o(v, "config");
  SwinConfig c;
  c.image_h = o.integer("imageHeight");
  c.image_w = o.integer("imageWidth");
  c.channels = o.integer("channels");
  c.patch = o.integer("patchSize");
  c.embed_dim = o.integer("embedDim");
  c.depths = o.numbers<int>("depths");
  c.heads = o.numbers<int>("numHeads");
  const std::vector<int> window = o.numbers<int>("windowSize");
  if (window.size() != 2)
    throw Napi::RangeError::New(v.Env(), "config.windowSize: expected [height, width], received " +
                                             std::to_string(window.size()) + " numbers");
  c.window_h = window[0];
  c.window_w = window[1];
  c.mlp_ratio = float(o.number("mlpRatio"));
  c.qkv_bias = o.boolean("qkvBias");
  c.reduction_bias = o.has("reductionBias") && o.boolean("reductionBias");
  c.ln_eps = float(o.number("layerNormEps"));
  c.num_classes = o.integer("numClasses");
  c.activation = o.choice("activation", kActivationNames);
  return c;
}

Napi::Error coded_from_current(Napi::Env env) {
  try {
    throw;
  } catch (const spdfq::Error& e) {
    return coded_error(env, e.code(), e.what());
  } catch (const std::bad_alloc&) {
    return coded_error(env, "E_MEMORY", "out of host memory");
  } catch (const std::exception& e) {
    return coded_error(env, "E_NATIVE", e.what());
  }
}

Napi::Array shape_array(Napi::Env env, const std::vector<int64_t>& shape) {
  Napi::Array a = Napi::Array::New(env, shape.size());
  for (size_t d = 0; d < shape.size(); ++d) a.Set(uint32_t(d), double(shape[d]));
  return a;
}

// swinParamInfo(config) → [{ name, shape, offset, size }] in torchvision's state_dict order.
Napi::Value SwinParamInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    if (info.Length() < 1) throw Napi::TypeError::New(env, "config: expected an object");
    SwinConfig c = parse_swin_config(info[0]);
    c.validate();
    const auto infos = plan_swin_params(c);
    Napi::Array out = Napi::Array::New(env, infos.size());
    for (size_t i = 0; i < infos.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", infos[i].name);
      o.Set("shape", shape_array(env, infos[i].shape));
      o.Set("offset", double(infos[i].offset));
      o.Set("size", double(infos[i].size));
      out.Set(uint32_t(i), o);
    }
    return out;
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw coded_from_current(env);
  }
}

// A pass off the event loop: Work() runs on a libuv thread and makes no N-API calls;
// spdfq::Error becomes a coded JS error; the model's busy flag is released on both paths;
// the input arrays stay referenced until the work ends.
class SwinWorker : public Napi::AsyncWorker {
 public:
  SwinWorker(Napi::Env env, SwinModelWrap* wrap, Napi::Object self)
      : Napi::AsyncWorker(env, "spdfq:swin"), wrap_(wrap), deferred_(Napi::Promise::Deferred::New(env)) {
    self_ = Napi::Persistent(self);
    wrap_->set_busy(true);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Keep(Napi::Value v) { keep_.push_back(Napi::Persistent(v.As<Napi::Object>())); }

 protected:
  virtual void Work() = 0;
  virtual Napi::Value Result() = 0;
  SwinModelWrap* wrap_;

 private:
  void Execute() override {
    try {
      Work();
    } catch (const spdfq::Error& e) {
      code_ = e.code();
      SetError(e.what());
    } catch (const std::bad_alloc&) {
      code_ = "E_MEMORY";
      SetError("out of memory during the Swin pass");
    } catch (const std::exception& e) {
      code_ = "E_NATIVE";
      SetError(e.what());
    }
  }
  void OnOK() override {
    wrap_->set_busy(false);
    deferred_.Resolve(Result());
  }
  void OnError(const Napi::Error& e) override {
    wrap_->set_busy(false);
    deferred_.Reject(coded_error(Env(), code_, e.Message()).Value());
  }

  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference self_;
  std::vector<Napi::ObjectReference> keep_;
  std::string code_ = "E_NATIVE";
};

class SwinForwardWorker : public SwinWorker {
 public:
  SwinForwardWorker(Napi::Env env, SwinModelWrap* wrap, Napi::Object self, const float* images, int batch,
                    std::atomic<bool>* cancel)
      : SwinWorker(env, wrap, self), images_(images), batch_(batch), cancel_(cancel) {}

 private:
  void Work() override {
    cpu::CpuSwin& m = wrap_->model();
    m.forward(images_, batch_, cancel_);
    logits_.assign(m.logits(), m.logits() + int64_t(batch_) * m.config().num_classes);
  }
  Napi::Value Result() override { return copy_floats(Env(), logits_.data(), int64_t(logits_.size())); }

  const float* images_;
  int batch_;
  std::atomic<bool>* cancel_;
  std::vector<float> logits_;
};

class SwinBackwardWorker : public SwinWorker {
 public:
  SwinBackwardWorker(Napi::Env env, SwinModelWrap* wrap, Napi::Object self, const float* dlogits,
                     std::vector<const float*> tap_att, Napi::Float32Array dimages, bool weight_grads,
                     std::atomic<bool>* cancel)
      : SwinWorker(env, wrap, self),
        dlogits_(dlogits),
        tap_att_(std::move(tap_att)),
        dimages_(dimages.Data()),
        weight_grads_(weight_grads),
        cancel_(cancel) {
    out_ = Napi::Persistent(static_cast<Napi::Object>(dimages));
  }

 private:
  void Work() override {
    TapGrads taps;
    taps.attn = tap_att_;
    wrap_->model().backward(dlogits_, taps, dimages_, weight_grads_, cancel_);
  }
  Napi::Value Result() override { return out_.Value(); }

  const float* dlogits_;
  std::vector<const float*> tap_att_;  // one per block (nullptr: none), or empty
  float* dimages_;
  bool weight_grads_;
  std::atomic<bool>* cancel_;
  Napi::ObjectReference out_;
};

}  // namespace

template <Napi::Value (SwinModelWrap::*Method)(const Napi::CallbackInfo&)>
Napi::Value SwinModelWrap::Guarded(const Napi::CallbackInfo& info) {
  try {
    return (this->*Method)(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw coded_from_current(info.Env());
  }
}

// A random 128-bit tag, fixed: only its uniqueness matters.
const napi_type_tag kSwinModelTag = {0x5f1e2c7a9b3d4e60ULL, 0x8c2f61a4d7e93b15ULL};

Napi::Function SwinModelWrap::Define(Napi::Env env) {
  using W = SwinModelWrap;
  return DefineClass(env, "SwinModel",
                     {
                         InstanceMethod("forward", &W::Guarded<&W::Forward>),
                         InstanceMethod("backward", &W::Guarded<&W::Backward>),
                         InstanceMethod("getGrads", &W::Guarded<&W::GetGrads>),
                         InstanceMethod("getParams", &W::Guarded<&W::GetParams>),
                         InstanceMethod("setParams", &W::Guarded<&W::SetParams>),
                         InstanceMethod("output", &W::Guarded<&W::Output>),
                         InstanceMethod("activationBytes", &W::Guarded<&W::ActivationBytes>),
                         InstanceMethod("setThreads", &W::Guarded<&W::SetThreads>),
                         InstanceMethod("setReference", &W::Guarded<&W::SetReference>),
                         InstanceMethod("cancel", &W::Guarded<&W::Cancel>),
                         InstanceMethod("dispose", &W::Guarded<&W::Dispose>),
                         InstanceMethod("calibrate", &W::Guarded<&W::Calibrate>),
                         InstanceMethod("setActQuant", &W::Guarded<&W::SetActQuant>),
                         InstanceMethod("setWeightQuant", &W::Guarded<&W::SetWeightQuant>),
                         InstanceMethod("reconstruct", &W::Guarded<&W::Reconstruct>),
                         InstanceMethod("stageGradient", &W::Guarded<&W::StageGradient>),
                     });
}

// new SwinModel(config, params: Float32Array (swinParamInfo order), threads)
SwinModelWrap::SwinModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SwinModelWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) throw Napi::TypeError::New(env, "config: expected an object");
  const SwinConfig c = parse_swin_config(info[0]);
  const int threads = int(int_arg(info, 2, "threads", 1, 1024));
  try {
    model_ = std::make_unique<cpu::CpuSwin>(c, threads);
    copy_float32_arg(info, 1, "params", model_->params(), model_->param_count());
    info.This().As<Napi::Object>().TypeTag(&kSwinModelTag);
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw coded_from_current(env);
  }
}

void SwinModelWrap::require_idle(Napi::Env env) {
  if (!model_) throw coded_error(env, "E_STATE", "this model was disposed");
  if (busy_) throw coded_error(env, "E_STATE", "this model is running another pass; await it first");
}

// forward(images: Float32Array [B, C, H, W], batch) → Promise<Float32Array logits [B, K]>
Napi::Value SwinModelWrap::Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_idle(env);
  const int batch = int(int_arg(info, 1, "batch", 1, 1 << 20));
  Napi::Float32Array images = float32_arg(info, 0, "images", int64_t(batch) * model_->config().image_len());
  cancel_ = false;
  auto* w = new SwinForwardWorker(env, this, info.This().As<Napi::Object>(), images.Data(), batch, &cancel_);
  w->Keep(images);
  w->Queue();
  return w->Promise();
}

// backward(dlogits: Float32Array [B, K], tapAttention: (Float32Array | null)[] | null,
//          weightGrads: boolean) → Promise<Float32Array dimages [B, C, H, W]>
// tapAttention: one entry per block (stage-major), [B, nW, H, N, N] of that block's stage.
Napi::Value SwinModelWrap::Backward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_idle(env);
  const SwinConfig& c = model_->config();
  const int64_t B = model_->batch();
  if (B == 0) throw coded_error(env, "E_STATE", "backward needs a completed forward pass on this model first");
  Napi::Float32Array dlogits = float32_arg(info, 0, "dlogits", B * c.num_classes);
  std::vector<const float*> taps;
  std::vector<Napi::Value> keep;
  if (info.Length() > 1 && !info[1].IsNull() && !info[1].IsUndefined()) {
    if (!info[1].IsArray()) throw Napi::TypeError::New(env, "tapAttention: expected an array or null");
    Napi::Array arr = info[1].As<Napi::Array>();
    if (arr.Length() != uint32_t(c.blocks()))
      throw Napi::RangeError::New(env, "tapAttention: expected one entry per block (" + std::to_string(c.blocks()) +
                                           "), received " + std::to_string(arr.Length()));
    taps.assign(size_t(c.blocks()), nullptr);
    for (int s = 0; s < c.stages(); ++s)
      for (int i = 0; i < c.depths[size_t(s)]; ++i) {
        const int l = swin_block_index(c, s, i);
        Napi::Value v = arr.Get(uint32_t(l));
        if (v.IsNull() || v.IsUndefined()) continue;
        const std::string label = "tapAttention[" + std::to_string(l) + "]";
        if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
          throw Napi::TypeError::New(env, label + ": expected a Float32Array or null");
        Napi::Float32Array a = v.As<Napi::Float32Array>();
        const int64_t N = c.window_tokens(), len = B * c.windows(s) * c.heads[size_t(s)] * N * N;
        if (int64_t(a.ElementLength()) != len)
          throw Napi::RangeError::New(env, label + ": expected " + std::to_string(len) + " floats, received " +
                                               std::to_string(a.ElementLength()));
        taps[size_t(l)] = a.Data();
        keep.push_back(a);
      }
  }
  const bool weight_grads = bool_arg(info, 2, "weightGrads");
  Napi::Float32Array dimages = Napi::Float32Array::New(env, size_t(B * c.image_len()));
  cancel_ = false;
  auto* w = new SwinBackwardWorker(env, this, info.This().As<Napi::Object>(), dlogits.Data(), std::move(taps),
                                   dimages, weight_grads, &cancel_);
  w->Keep(dlogits);
  for (auto& v : keep) w->Keep(v);
  w->Queue();
  return w->Promise();
}

// getGrads() → Float32Array: the weight gradients of the last backward with weightGrads
// (swinParamInfo order; a copy).
Napi::Value SwinModelWrap::GetGrads(const Napi::CallbackInfo& info) {
  require_idle(info.Env());
  if (!model_->weight_grads())
    throw coded_error(info.Env(), "E_STATE", "no weight gradients yet: run backward with weightGrads first");
  return copy_floats(info.Env(), model_->weight_grads(), model_->param_count());
}

// getParams() → Float32Array: a copy of the flat parameter arena (swinParamInfo order).
Napi::Value SwinModelWrap::GetParams(const Napi::CallbackInfo& info) {
  require_idle(info.Env());
  return copy_floats(info.Env(), model_->params(), model_->param_count());
}

// setParams(params: Float32Array): replaces every parameter (swinParamInfo order); the
// model reads its weights from the arena on every pass, so nothing else needs refreshing.
Napi::Value SwinModelWrap::SetParams(const Napi::CallbackInfo& info) {
  require_idle(info.Env());
  copy_float32_arg(info, 0, "params", model_->params(), model_->param_count());
  refresh_quant_params();
  return info.Env().Undefined();
}

// output(name) → { shape: number[], data: Float32Array }: an intermediate of the last forward (a copy).
Napi::Value SwinModelWrap::Output(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_idle(env);
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "name: expected a string");
  const cpu::CpuSwin::Tensor t = model_->output(info[0].As<Napi::String>().Utf8Value());
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  Napi::Object o = Napi::Object::New(env);
  o.Set("shape", shape_array(env, t.shape));
  o.Set("data", copy_floats(env, t.data, n));
  return o;
}

Napi::Value SwinModelWrap::ActivationBytes(const Napi::CallbackInfo& info) {
  require_idle(info.Env());
  const int batch = int(int_arg(info, 0, "batch", 1, 1 << 20));
  return Napi::Number::New(info.Env(), double(cpu::CpuSwin::activation_bytes(model_->config(), batch)));
}

Napi::Value SwinModelWrap::SetThreads(const Napi::CallbackInfo& info) {
  require_idle(info.Env());
  model_->set_threads(int(int_arg(info, 0, "threads", 1, 1024)));
  return info.Env().Undefined();
}

// The scalar reference kernels (gemm_ref, the double-precision window attention, one thread).
Napi::Value SwinModelWrap::SetReference(const Napi::CallbackInfo& info) {
  require_idle(info.Env());
  model_->set_reference(bool_arg(info, 0, "reference"));
  return info.Env().Undefined();
}

Napi::Value SwinModelWrap::Cancel(const Napi::CallbackInfo& info) {
  cancel_ = true;
  return info.Env().Undefined();
}

Napi::Value SwinModelWrap::Dispose(const Napi::CallbackInfo& info) {
  require_idle(info.Env());
  model_.reset();
  return info.Env().Undefined();
}

void register_swin(Napi::Env env, Napi::Object exports) {
  exports.Set("SwinModel", SwinModelWrap::Define(env));
  exports.Set("swinParamInfo", Napi::Function::New(env, SwinParamInfo));
}

}  // namespace spdfq::binding
