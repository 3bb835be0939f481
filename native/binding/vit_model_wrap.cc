#include "vit_model_wrap.h"

#include <string>
#include <thread>
#include <vector>

#include "../core/errors.h"
#include "config_names.h"
#include "js_object.h"
#include "tensor_args.h"

namespace spdfq::binding {

namespace {

VitConfig parse_config(const Napi::Object& obj) {
  const JsObject o(obj, "config");
  VitConfig c;
  c.image_h = o.integer("imageHeight");
  c.image_w = o.integer("imageWidth");
  c.channels = o.integer("channels");
  c.patch = o.integer("patchSize");
  c.dim = o.integer("embedDim");
  c.depth = o.integer("depth");
  c.heads = o.integer("numHeads");
  c.mlp_dim = o.integer("mlpDim");
  c.qkv_bias = o.boolean("qkvBias");
  c.class_token = o.boolean("classToken");
  c.dist_token = o.boolean("distToken");
  c.pooling = o.choice<Pooling>("pooling", {{"token", Pooling::Token}, {"mean", Pooling::Mean}, {"mean-all", Pooling::MeanAll}});
  c.norm = o.choice<NormPlacement>("normPlacement", {{"pre", NormPlacement::Pre}, {"post", NormPlacement::Post}});
  c.final_norm = o.choice<FinalNorm>("finalNorm", {{"tokens", FinalNorm::Tokens}, {"pooled", FinalNorm::Pooled}, {"none", FinalNorm::None}});
  c.ln_eps = float(o.number("layerNormEps"));
  c.activation = o.choice("activation", kActivationNames);
  c.patch_input_norm = o.boolean("patchInputNorm");
  c.patch_output_norm = o.boolean("patchOutputNorm");
  c.embed_norm = o.boolean("embedNorm");
  c.num_classes = o.integer("numClasses");
  return c;
}

// The C++ exception in flight as a coded JavaScript error (code as in lib/errors.ts).
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

// Shared shape of the two workers: run `work` off the event loop, map spdfq::Error to a
// coded JS error, always release the model's busy flag.
class ModelWorker : public Napi::AsyncWorker {
 public:
  ModelWorker(Napi::Env env, VitModelWrap* wrap, Napi::Object self)
      : Napi::AsyncWorker(env, "spdfq:model"), wrap_(wrap), deferred_(Napi::Promise::Deferred::New(env)) {
    self_ = Napi::Persistent(self);
    wrap_->set_busy(true);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Keep(Napi::Value v) { keep_.push_back(Napi::Persistent(v.As<Napi::Object>())); }

 protected:
  // Runs on a libuv worker thread: everything that may throw (a CUDA download included)
  // happens here, so Result() on the main thread only wraps what Work() left.
  virtual void Work() = 0;
  virtual Napi::Value Result() = 0;
  VitModelWrap* wrap_;

 private:
  void Execute() override {
    try {
      Work();
    } catch (const spdfq::Error& e) {
      code_ = e.code();
      SetError(e.what());
    } catch (const std::bad_alloc&) {
      code_ = "E_MEMORY";
      SetError("out of memory during the pass");
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

class ForwardWorker : public ModelWorker {
 public:
  ForwardWorker(Napi::Env env, VitModelWrap* wrap, Napi::Object self, const float* images, int batch,
                std::atomic<bool>* cancel)
      : ModelWorker(env, wrap, self), images_(images), batch_(batch), cancel_(cancel) {}

 protected:
  void Work() override {
    wrap_->engine().visit([&](auto& m) {
      m.forward(images_, batch_, cancel_);
      const float* l = m.logits();  // a device-to-host copy on CUDA
      logits_.assign(l, l + int64_t(m.batch()) * m.config().num_classes);
    });
  }
  Napi::Value Result() override { return copy_floats(Env(), logits_.data(), int64_t(logits_.size())); }

 private:
  const float* images_;
  int batch_;
  std::atomic<bool>* cancel_;
  std::vector<float> logits_;
};

class BackwardWorker : public ModelWorker {
 public:
  BackwardWorker(Napi::Env env, VitModelWrap* wrap, Napi::Object self, const float* dlogits, TapGrads taps,
                 Napi::Float32Array dimages, bool weight_grads, std::atomic<bool>* cancel)
      : ModelWorker(env, wrap, self),
        dlogits_(dlogits),
        taps_(std::move(taps)),
        dimages_(dimages.Data()),
        weight_grads_(weight_grads),
        cancel_(cancel) {
    out_ = Napi::Persistent(static_cast<Napi::Object>(dimages));
  }

 protected:
  void Work() override {
    wrap_->engine().visit([&](auto& m) { run_backward(m, dlogits_, taps_, dimages_, weight_grads_, cancel_); });
  }
  Napi::Value Result() override { return out_.Value(); }

 private:
  const float* dlogits_;
  TapGrads taps_;  // host pointers, one per block, for either engine
  float* dimages_;
  bool weight_grads_;
  std::atomic<bool>* cancel_;
  Napi::ObjectReference out_;
};

}  // namespace

template <Napi::Value (VitModelWrap::*Method)(const Napi::CallbackInfo&)>
Napi::Value VitModelWrap::Guarded(const Napi::CallbackInfo& info) {
  try {
    return (this->*Method)(info);
  } catch (const Napi::Error&) {
    throw;  // already a JavaScript exception
  } catch (...) {
    throw coded_from_current(info.Env());
  }
}

Napi::Function VitModelWrap::Define(Napi::Env env) {
  using W = VitModelWrap;
  return DefineClass(env, "VitModel",
                     {
                         InstanceMethod("forward", &W::Guarded<&W::Forward>),
                         InstanceMethod("backward", &W::Guarded<&W::Backward>),
                         InstanceMethod("attention", &W::Guarded<&W::Attention>),
                         InstanceMethod("attentionValues", &W::Guarded<&W::AttentionValues>),
                         InstanceMethod("features", &W::Guarded<&W::Features>),
                         InstanceMethod("getParams", &W::Guarded<&W::GetParams>),
                         InstanceMethod("setParams", &W::Guarded<&W::SetParams>),
                         InstanceMethod("getGrads", &W::Guarded<&W::GetGrads>),
                         InstanceMethod("paramInfo", &W::Guarded<&W::ParamInfo>),
                         InstanceMethod("activationBytes", &W::Guarded<&W::ActivationBytes>),
                         InstanceMethod("setThreads", &W::Guarded<&W::SetThreads>),
                         InstanceMethod("setReference", &W::Guarded<&W::SetReference>),
                         InstanceMethod("setActivationBudget", &W::Guarded<&W::SetActivationBudget>),
                         InstanceMethod("cancel", &W::Guarded<&W::Cancel>),
                         InstanceMethod("dispose", &W::Guarded<&W::Dispose>),
                         InstanceMethod("device", &W::Guarded<&W::DeviceName>),
                         InstanceMethod("calibrate", &W::Guarded<&W::Calibrate>),
                         InstanceMethod("setActQuant", &W::Guarded<&W::SetActQuant>),
                         InstanceMethod("setWeightQuant", &W::Guarded<&W::SetWeightQuant>),
                         InstanceMethod("getQuantParams", &W::Guarded<&W::GetQuantParams>),
                         InstanceMethod("reconstruct", &W::Guarded<&W::Reconstruct>),
                         InstanceMethod("setIntegerMode", &W::Guarded<&W::SetIntegerMode>),
                     });
}

// new VitModel(config, params: Float32Array, threads, device?: 'cpu' | 'cuda:N')
VitModelWrap::VitModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<VitModelWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "config: expected an object");
  const VitConfig c = parse_config(info[0].As<Napi::Object>());
  const int threads = int(int_arg(info, 2, "threads", 1, 1024));
  std::string device = "cpu";
  if (info.Length() > 3 && !info[3].IsUndefined()) {
    if (!info[3].IsString()) throw Napi::TypeError::New(env, "device: expected a string ('cpu' or 'cuda:N')");
    device = info[3].As<Napi::String>().Utf8Value();
  }
  try {
    engine_ = std::make_unique<VitEngine>(c, threads, parse_device(device));
    engine_->visit([&](auto& m) { copy_float32_arg(info, 1, "params", m.params(), m.param_count()); });
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw coded_from_current(env);
  }
}

void VitModelWrap::require_idle(Napi::Env env, bool need_forward) {
  if (!engine_) throw coded_error(env, "E_STATE", "this model was disposed");
  if (busy_) throw coded_error(env, "E_STATE", "this model is running another pass; await it first");
  if (need_forward && engine_->visit([](auto& m) { return m.batch(); }) == 0)
    throw coded_error(env, "E_STATE", "no completed forward pass on this model yet");
}

// forward(images: Float32Array, batch) → Promise<Float32Array logits>
Napi::Value VitModelWrap::Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_idle(env);
  const int batch = int(int_arg(info, 1, "batch", 1, 1 << 20));
  Napi::Float32Array images = float32_arg(info, 0, "images", int64_t(batch) * config().image_len());
  cancel_ = false;
  auto* w = new ForwardWorker(env, this, info.This().As<Napi::Object>(), images.Data(), batch, &cancel_);
  w->Keep(images);
  w->Queue();
  return w->Promise();
}

// backward(dlogits, tapAttn: (Float32Array|null)[] | null, tapAv: (...)[] | null, weightGrads)
//   → Promise<Float32Array dimages>
Napi::Value VitModelWrap::Backward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_idle(env, true);
  const VitConfig& c = config();
  const int64_t B = engine_->visit([](auto& m) { return m.batch(); }), N = c.tokens();
  Napi::Float32Array dlogits = float32_arg(info, 0, "dlogits", B * c.num_classes);
  TapGrads taps;
  std::vector<Napi::Value> keep;
  auto read_taps = [&](size_t arg, const char* name, int64_t len, std::vector<const float*>* out) {
    if (arg >= info.Length() || info[arg].IsNull() || info[arg].IsUndefined()) return;
    if (!info[arg].IsArray()) throw Napi::TypeError::New(env, std::string(name) + ": expected an array or null");
    Napi::Array arr = info[arg].As<Napi::Array>();
    if (arr.Length() != uint32_t(c.depth))
      throw Napi::RangeError::New(env, std::string(name) + ": expected one entry per block (" +
                                           std::to_string(c.depth) + "), received " + std::to_string(arr.Length()));
    out->assign(c.depth, nullptr);
    for (int l = 0; l < c.depth; ++l) {
      Napi::Value v = arr.Get(uint32_t(l));
      if (v.IsNull() || v.IsUndefined()) continue;
      const std::string label = std::string(name) + "[" + std::to_string(l) + "]";
      if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
        throw Napi::TypeError::New(env, label + ": expected a Float32Array or null");
      Napi::Float32Array a = v.As<Napi::Float32Array>();
      if (int64_t(a.ElementLength()) != len)
        throw Napi::RangeError::New(env, label + ": expected " + std::to_string(len) + " floats, received " +
                                             std::to_string(a.ElementLength()));
      (*out)[l] = a.Data();
      keep.push_back(a);
    }
  };
  read_taps(1, "tapAttention", B * c.heads * N * N, &taps.attn);
  read_taps(2, "tapAttentionValues", B * N * c.dim, &taps.av);
  const bool weight_grads = bool_arg(info, 3, "weightGrads");
  Napi::Float32Array dimages = Napi::Float32Array::New(env, size_t(B * c.image_len()));
  cancel_ = false;
  auto* w = new BackwardWorker(env, this, info.This().As<Napi::Object>(), dlogits.Data(), std::move(taps), dimages,
                               weight_grads, &cancel_);
  w->Keep(dlogits);
  for (auto& v : keep) w->Keep(v);
  w->Queue();
  return w->Promise();
}

// The tap accessors copy out of the engine (on CUDA: a device-to-host download first).
Napi::Value VitModelWrap::Attention(const Napi::CallbackInfo& info) {
  require_idle(info.Env(), true);
  const VitConfig& c = config();
  const int l = int(int_arg(info, 0, "block", 0, c.depth - 1));
  const int64_t N = c.tokens();
  return engine_->visit([&](auto& m) {
    return copy_floats(info.Env(), m.attention(l), int64_t(m.batch()) * c.heads * N * N);
  });
}

Napi::Value VitModelWrap::AttentionValues(const Napi::CallbackInfo& info) {
  require_idle(info.Env(), true);
  const VitConfig& c = config();
  const int l = int(int_arg(info, 0, "block", 0, c.depth - 1));
  return engine_->visit([&](auto& m) {
    return copy_floats(info.Env(), m.attention_values(l), int64_t(m.batch()) * c.tokens() * c.dim);
  });
}

Napi::Value VitModelWrap::Features(const Napi::CallbackInfo& info) {
  require_idle(info.Env(), true);
  const VitConfig& c = config();
  return engine_->visit([&](auto& m) {
    return copy_floats(info.Env(), m.features(), int64_t(m.batch()) * head_inputs(c) * c.dim);
  });
}

Napi::Value VitModelWrap::GetParams(const Napi::CallbackInfo& info) {
  require_idle(info.Env());
  // CUDA: params() is the host mirror (and marks it for upload, which is harmless).
  return engine_->visit([&](auto& m) { return copy_floats(info.Env(), m.params(), m.param_count()); });
}

Napi::Value VitModelWrap::SetParams(const Napi::CallbackInfo& info) {
  require_idle(info.Env());
  engine_->visit([&](auto& m) { copy_float32_arg(info, 0, "params", m.params(), m.param_count()); });
  return info.Env().Undefined();
}

Napi::Value VitModelWrap::GetGrads(const Napi::CallbackInfo& info) {
  require_idle(info.Env());
  return engine_->visit([&](auto& m) { return copy_floats(info.Env(), m.grads(), m.param_count()); });
}

Napi::Value VitModelWrap::ParamInfo(const Napi::CallbackInfo& info) {
  require_idle(info.Env());
  Napi::Env env = info.Env();
  const auto infos = plan_params(config());
  Napi::Array out = Napi::Array::New(env, infos.size());
  for (size_t i = 0; i < infos.size(); ++i) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", infos[i].name);
    Napi::Array shape = Napi::Array::New(env, infos[i].shape.size());
    for (size_t d = 0; d < infos[i].shape.size(); ++d) shape.Set(uint32_t(d), double(infos[i].shape[d]));
    o.Set("shape", shape);
    o.Set("offset", double(infos[i].offset));
    o.Set("size", double(infos[i].size));
    out.Set(uint32_t(i), o);
  }
  return out;
}

// Host memory on the CPU, device memory on CUDA.
Napi::Value VitModelWrap::ActivationBytes(const Napi::CallbackInfo& info) {
  if (!engine_) throw coded_error(info.Env(), "E_STATE", "this model was disposed");
  const int batch = int(int_arg(info, 0, "batch", 1, 1 << 20));
  return Napi::Number::New(info.Env(), double(engine_->visit([&](auto& m) { return activation_bytes(m, batch); })));
}

Napi::Value VitModelWrap::SetThreads(const Napi::CallbackInfo& info) {
  require_idle(info.Env());
  const int threads = int(int_arg(info, 0, "threads", 1, 1024));
  engine_->visit([&](auto& m) { set_threads(m, threads); });
  return info.Env().Undefined();
}

// CPU: the scalar reference kernels; CUDA: the FP32 GEMMs instead of TF32.
Napi::Value VitModelWrap::SetReference(const Napi::CallbackInfo& info) {
  require_idle(info.Env());
  const bool reference = bool_arg(info, 0, "reference");
  engine_->visit([&](auto& m) { m.set_reference(reference); });
  return info.Env().Undefined();
}

Napi::Value VitModelWrap::SetActivationBudget(const Napi::CallbackInfo& info) {
  require_idle(info.Env());
  const int64_t bytes = int_arg(info, 0, "bytes", 1, int64_t(1) << 52);
  engine_->visit([&](auto& m) { m.set_activation_budget(bytes); });
  return info.Env().Undefined();
}

Napi::Value VitModelWrap::Cancel(const Napi::CallbackInfo& info) {
  cancel_ = true;
  return info.Env().Undefined();
}

Napi::Value VitModelWrap::Dispose(const Napi::CallbackInfo& info) {
  require_idle(info.Env());
  engine_.reset();
  return info.Env().Undefined();
}

// device() → 'cpu' | 'cuda:N': where this model runs.
Napi::Value VitModelWrap::DeviceName(const Napi::CallbackInfo& info) {
  if (!engine_) throw coded_error(info.Env(), "E_STATE", "this model was disposed");
  return Napi::String::New(info.Env(), engine_->device().name());
}

}  // namespace spdfq::binding
