// synthesize(model, config, onProgress) → { promise, cancel }, synthObjective and synthPlan
// (see synth_worker.h). The worker thread makes no N-API calls: progress goes through
// the queue worker, results are converted in OnOK on the main thread.
#include "synth_worker.h"

#include <memory>
#include <string>
#include <vector>

#include "../core/errors.h"
#include "../synth/synth_loop.h"
#ifdef SPDFQ_WITH_CUDA
#include "../synth/cuda_synth_engine.h"
#endif
#include "tensor_args.h"
#include "vit_model_wrap.h"

namespace spdfq::binding {

namespace {

// ---- strict field readers: the TypeScript layer fills everything, so a missing or
// mistyped field is a bug there and is reported by name.
Napi::Value field(const Napi::Object& o, const char* key) { return o.Get(key); }
double num(const Napi::Object& o, const char* key) {
  Napi::Value v = field(o, key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("synth config.") + key + ": expected a number");
  return v.As<Napi::Number>().DoubleValue();
}
int integer(const Napi::Object& o, const char* key) {
  const double v = num(o, key);
  if (v != double(int64_t(v)) || v < -2147483648.0 || v > 2147483647.0)
    throw Napi::RangeError::New(o.Env(), std::string("synth config.") + key + ": expected a 32-bit integer, received " +
                                             std::to_string(v));
  return int(v);
}
bool boolean(const Napi::Object& o, const char* key) {
  Napi::Value v = field(o, key);
  if (!v.IsBoolean()) throw Napi::TypeError::New(o.Env(), std::string("synth config.") + key + ": expected a boolean");
  return v.As<Napi::Boolean>().Value();
}
std::string str(const Napi::Object& o, const char* key) {
  Napi::Value v = field(o, key);
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string("synth config.") + key + ": expected a string");
  return v.As<Napi::String>().Utf8Value();
}
template <class T>
std::vector<T> numbers(const Napi::Object& o, const char* key) {
  Napi::Value v = field(o, key);
  if (!v.IsArray()) throw Napi::TypeError::New(o.Env(), std::string("synth config.") + key + ": expected an array of numbers");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<T> out(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value e = a.Get(i);
    if (!e.IsNumber())
      throw Napi::TypeError::New(o.Env(), std::string("synth config.") + key + "[" + std::to_string(i) + "]: expected a number");
    out[i] = T(e.As<Napi::Number>().DoubleValue());
  }
  return out;
}
template <class E>
E choice(const Napi::Object& o, const char* key, std::initializer_list<std::pair<const char*, E>> options) {
  const std::string s = str(o, key);
  std::string names;
  for (const auto& p : options) {
    if (s == p.first) return p.second;
    names += std::string(names.empty() ? "" : ", ") + "'" + p.first + "'";
  }
  throw Napi::RangeError::New(o.Env(), std::string("synth config.") + key + ": expected one of " + names + ", received '" + s + "'");
}

Napi::Object progress_object(Napi::Env env, const synth::SynthProgress& p) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("step", p.step);
  o.Set("totalSteps", p.total_steps);
  o.Set("round", p.round);
  o.Set("lr", p.lr);
  o.Set("alpha", p.alpha);
  Napi::Object l = Napi::Object::New(env);
  l.Set("total", p.losses.total);
  l.Set("apa", p.losses.apa);
  l.Set("cls", p.losses.cls);
  l.Set("tv", p.losses.tv);
  l.Set("pse", p.losses.pse);
  l.Set("targetProb", p.losses.target_prob);
  o.Set("losses", l);
  o.Set("imagesPerSecond", p.images_per_second);
  o.Set("seconds", p.seconds);
  return o;
}

Napi::Object losses_object(Napi::Env env, const synth::StepLosses& s) {
  Napi::Object l = Napi::Object::New(env);
  l.Set("total", s.total);
  l.Set("apa", s.apa);
  l.Set("cls", s.cls);
  l.Set("tv", s.tv);
  l.Set("pse", s.pse);
  l.Set("targetProb", s.target_prob);
  return l;
}

template <class T, class A>
A typed_copy(Napi::Env env, const std::vector<T>& v) {
  A a = A::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a[i] = v[i];
  return a;
}

Napi::Object plan_object(Napi::Env env, const synth::SynthPlan& p) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("chunkImages", p.chunk_images);
  o.Set("regionBatch", p.region_batch);
  o.Set("bytes", double(p.bytes));
  return o;
}

Napi::Object result_object(Napi::Env env, const synth::SynthResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("images", typed_copy<float, Napi::Float32Array>(env, r.images));
  o.Set("targets", typed_copy<int32_t, Napi::Int32Array>(env, r.targets));
  o.Set("targetLogits", typed_copy<float, Napi::Float32Array>(env, r.target_logits));
  o.Set("cellClasses", typed_copy<int32_t, Napi::Int32Array>(env, r.cell_classes));
  o.Set("cellLogits", typed_copy<float, Napi::Float32Array>(env, r.cell_logits));
  Napi::Object pr = Napi::Object::New(env);
  pr.Set("maps", typed_copy<float, Napi::Float32Array>(env, r.priors.maps));
  pr.Set("counts", typed_copy<int, Napi::Int32Array>(env, r.priors.counts));
  pr.Set("images", r.priors.images);
  pr.Set("sets", r.priors.sets);
  pr.Set("heads", r.priors.heads);
  pr.Set("gridH", r.priors.grid_h);
  pr.Set("gridW", r.priors.grid_w);
  o.Set("priors", pr);
  const size_t n = r.history.size();
  Napi::Object h = Napi::Object::New(env);
  const char* names[] = {"total", "apa", "cls", "tv", "pse", "targetProb", "lr"};
  for (int k = 0; k < 7; ++k) {
    Napi::Float64Array a = Napi::Float64Array::New(env, n);
    for (size_t i = 0; i < n; ++i) {
      const synth::StepLosses& s = r.history[i];
      const double vals[] = {s.total, s.apa, s.cls, s.tv, s.pse, s.target_prob, r.lrs[i]};
      a[i] = vals[k];
    }
    h.Set(names[k], a);
  }
  o.Set("history", h);
  o.Set("alpha", r.alpha);
  o.Set("stepsDone", r.steps_done);
  o.Set("seconds", r.seconds);
  o.Set("plan", plan_object(env, r.plan));
  if (r.stop.code.empty()) {
    o.Set("stop", env.Null());
  } else {
    Napi::Object s = Napi::Object::New(env);
    s.Set("code", r.stop.code);
    s.Set("part", r.stop.part);
    s.Set("step", r.stop.step);
    s.Set("message", r.stop.message);
    o.Set("stop", s);
  }
  return o;
}

VitModelWrap* unwrap_model(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsObject())
    throw Napi::TypeError::New(info.Env(), "model: expected a native VitModel object");
  try {
    return VitModelWrap::Unwrap(info[0].As<Napi::Object>());
  } catch (const Napi::Error&) {
    throw Napi::TypeError::New(info.Env(), "model: expected a native VitModel object (from createVit)");
  }
}

Napi::Object config_arg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsObject())
    throw Napi::TypeError::New(info.Env(), "config: expected a synthesis config object");
  return info[i].As<Napi::Object>();
}

// The synthesis loop's view of either engine (native/synth/synth_engine.h).
std::unique_ptr<synth::SynthEngine> synth_engine(cpu::CpuVit& m) { return std::make_unique<synth::CpuSynthEngine>(m); }
#ifdef SPDFQ_WITH_CUDA
std::unique_ptr<synth::SynthEngine> synth_engine(cuda::CudaVit& m) { return std::make_unique<synth::CudaSynthEngine>(m); }
#endif

// Builds the Synthesizer on the main thread, so config and memory errors reject at once.
// It runs on the model's engine: the CPU, or the GPU for a model created on 'cuda:N'.
std::unique_ptr<synth::Synthesizer> make_synthesizer(Napi::Env env, VitModelWrap* wrap, const Napi::Object& cfg) {
  wrap->require_idle(env);
  synth::SynthConfig c = parse_synth_config(cfg);
  try {
    auto engine = wrap->engine().visit([](auto& m) { return synth_engine(m); });
    return std::make_unique<synth::Synthesizer>(std::move(engine), std::move(c));
  } catch (const spdfq::Error& e) {
    throw coded_error(env, e.code(), e.what());
  } catch (const std::bad_alloc&) {
    throw coded_error(env, "E_MEMORY", "out of memory allocating the synthesis buffers");
  }
}

// ---- the loop
class SynthWorker : public Napi::AsyncProgressQueueWorker<synth::SynthProgress> {
 public:
  SynthWorker(Napi::Env env, VitModelWrap* wrap, Napi::Object model, std::unique_ptr<synth::Synthesizer> s,
              Napi::Value on_progress, std::shared_ptr<std::atomic<bool>> cancel)
      : Napi::AsyncProgressQueueWorker<synth::SynthProgress>(env, "spdfq:synthesize"),
        wrap_(wrap),
        synth_(std::move(s)),
        cancel_(std::move(cancel)),
        deferred_(Napi::Promise::Deferred::New(env)) {
    model_ = Napi::Persistent(model);
    if (on_progress.IsFunction()) progress_ = Napi::Persistent(on_progress.As<Napi::Function>());
    wrap_->set_busy(true);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute(const ExecutionProgress& progress) override {
    try {
      result_ = synth_->run(cancel_.get(), [&](const synth::SynthProgress& p) { progress.Send(&p, 1); });
    } catch (const spdfq::Error& e) {
      code_ = e.code();
      SetError(e.what());
    } catch (const std::bad_alloc&) {
      code_ = "E_MEMORY";
      SetError("out of memory during synthesis");
    } catch (const std::exception& e) {
      code_ = "E_NATIVE";
      SetError(e.what());
    }
  }
  void OnProgress(const synth::SynthProgress* data, size_t count) override {
    if (progress_.IsEmpty()) return;
    Napi::HandleScope scope(Env());
    for (size_t i = 0; i < count && progress_error_.IsEmpty(); ++i) {
      // A throwing progress callback stops the loop (as a cancel would) and the promise
      // rejects with the callback's own error, so the caller's bug is not swallowed.
      try {
        progress_.Call({progress_object(Env(), data[i])});
      } catch (const Napi::Error& e) {
        progress_error_ = Napi::Persistent(e.Value());
        cancel_->store(true);
      }
    }
  }
  void OnOK() override {
    wrap_->set_busy(false);
    if (!progress_error_.IsEmpty())
      deferred_.Reject(progress_error_.Value());
    else
      deferred_.Resolve(result_object(Env(), result_));
  }
  void OnError(const Napi::Error& e) override {
    wrap_->set_busy(false);
    deferred_.Reject(coded_error(Env(), code_, e.Message()).Value());
  }

 private:
  VitModelWrap* wrap_;
  std::unique_ptr<synth::Synthesizer> synth_;
  std::shared_ptr<std::atomic<bool>> cancel_;
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference model_;
  Napi::FunctionReference progress_;
  Napi::ObjectReference progress_error_;
  synth::SynthResult result_;
  std::string code_ = "E_NATIVE";
};

// synthesize(model, config, onProgress?) → { promise, cancel }
Napi::Value Synthesize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VitModelWrap* wrap = unwrap_model(info);
  auto s = make_synthesizer(env, wrap, config_arg(info, 1));
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  auto* w = new SynthWorker(env, wrap, info[0].As<Napi::Object>(), std::move(s),
                            info.Length() > 2 ? info[2] : env.Undefined(), cancel);
  w->Queue();
  Napi::Object out = Napi::Object::New(env);
  out.Set("promise", w->Promise());
  out.Set("cancel", Napi::Function::New(env, [cancel](const Napi::CallbackInfo& ci) {
            cancel->store(true);
            return ci.Env().Undefined();
          }));
  return out;
}

// ---- the objective at given images
class ObjectiveWorker : public Napi::AsyncWorker {
 public:
  ObjectiveWorker(Napi::Env env, VitModelWrap* wrap, Napi::Object model, std::unique_ptr<synth::Synthesizer> s,
                  Napi::Float32Array images, int step, double alpha, bool want_grad)
      : Napi::AsyncWorker(env, "spdfq:synthObjective"),
        wrap_(wrap),
        synth_(std::move(s)),
        images_(images.Data()),
        step_(step),
        alpha_(alpha),
        deferred_(Napi::Promise::Deferred::New(env)) {
    model_ = Napi::Persistent(model);
    keep_ = Napi::Persistent(static_cast<Napi::Object>(images));
    if (want_grad) grad_.resize(images.ElementLength());
    wrap_->set_busy(true);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      losses_ = synth_->objective(images_, step_, alpha_, grad_.empty() ? nullptr : grad_.data(), nullptr);
    } catch (const spdfq::Error& e) {
      code_ = e.code();
      SetError(e.what());
    } catch (const std::exception& e) {
      code_ = "E_NATIVE";
      SetError(e.what());
    }
  }
  void OnOK() override {
    wrap_->set_busy(false);
    Napi::Object o = Napi::Object::New(Env());
    o.Set("losses", losses_object(Env(), losses_));
    o.Set("grad", grad_.empty() ? Env().Null() : Napi::Value(typed_copy<float, Napi::Float32Array>(Env(), grad_)));
    deferred_.Resolve(o);
  }
  void OnError(const Napi::Error& e) override {
    wrap_->set_busy(false);
    deferred_.Reject(coded_error(Env(), code_, e.Message()).Value());
  }

 private:
  VitModelWrap* wrap_;
  std::unique_ptr<synth::Synthesizer> synth_;
  const float* images_;
  int step_;
  double alpha_;
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference model_, keep_;
  std::vector<float> grad_;
  synth::StepLosses losses_;
  std::string code_ = "E_NATIVE";
};

// synthObjective(model, config, images, step, alpha, wantGrad) → Promise<{ losses, grad }>
Napi::Value SynthObjective(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VitModelWrap* wrap = unwrap_model(info);
  auto s = make_synthesizer(env, wrap, config_arg(info, 1));
  const VitConfig& mc = wrap->config();
  Napi::Float32Array images = float32_arg(info, 2, "images", int64_t(s->config().images) * mc.image_len());
  const int step = int(int_arg(info, 3, "step", 0, 1 << 30));
  if (info.Length() < 5 || !info[4].IsNumber()) throw Napi::TypeError::New(env, "alpha: expected a number");
  const double alpha = info[4].As<Napi::Number>().DoubleValue();
  const bool want_grad = bool_arg(info, 5, "wantGrad");
  auto* w = new ObjectiveWorker(env, wrap, info[0].As<Napi::Object>(), std::move(s), images, step, alpha, want_grad);
  w->Queue();
  return w->Promise();
}

// synthPlan(model, config) → { chunkImages, regionBatch, bytes } (validates; runs nothing)
Napi::Value SynthPlan(const Napi::CallbackInfo& info) {
  VitModelWrap* wrap = unwrap_model(info);
  auto s = make_synthesizer(info.Env(), wrap, config_arg(info, 1));
  return plan_object(info.Env(), s->plan());
}

}  // namespace

synth::SynthConfig parse_synth_config(const Napi::Object& o) {
  using namespace synth;
  SynthConfig c;
  c.images = integer(o, "images");
  const double seed = num(o, "seed");
  if (!(seed >= 0 && seed <= 9007199254740991.0 && seed == double(uint64_t(seed))))
    throw Napi::RangeError::New(o.Env(), "synth config.seed: expected an integer in [0, 2^53)");
  c.seed = uint64_t(seed);
  Napi::Value rv = field(o, "rounds");
  if (!rv.IsArray()) throw Napi::TypeError::New(o.Env(), "synth config.rounds: expected an array of rounds");
  Napi::Array ra = rv.As<Napi::Array>();
  c.rounds.clear();
  for (uint32_t i = 0; i < ra.Length(); ++i) {
    Napi::Value e = ra.Get(i);
    if (!e.IsObject()) throw Napi::TypeError::New(o.Env(), "synth config.rounds[" + std::to_string(i) + "]: expected an object");
    Napi::Object r = e.As<Napi::Object>();
    c.rounds.push_back(SynthRound{integer(r, "iters"), integer(r, "warmup"), integer(r, "rollMaxH"), integer(r, "rollMaxW")});
  }
  c.lr = float(num(o, "lr"));
  c.beta1 = float(num(o, "beta1"));
  c.beta2 = float(num(o, "beta2"));
  c.adam_eps = float(num(o, "adamEps"));
  c.init_std = float(num(o, "initStd"));
  c.flip = boolean(o, "flip");
  c.clamp_lo = numbers<float>(o, "clampLo");
  c.clamp_hi = numbers<float>(o, "clampHi");
  c.targets = numbers<int32_t>(o, "targets");
  c.balanced_targets = boolean(o, "balancedTargets");
  c.cls = choice<ClsLoss>(o, "cls", {{"none", ClsLoss::None}, {"hard", ClsLoss::Hard}, {"soft", ClsLoss::Soft}});
  c.cls_weight = float(num(o, "clsWeight"));
  c.soft_logit_min = float(num(o, "softLogitMin"));
  c.soft_logit_max = float(num(o, "softLogitMax"));
  c.apa = boolean(o, "apa");
  c.apa_alpha = num(o, "apaAlpha");
  c.apa_components = integer(o, "apaComponents");
  c.prior_std_min = float(num(o, "priorStdMin"));
  c.prior_std_max_fraction = float(num(o, "priorStdMaxFraction"));
  c.apa_blocks = numbers<int>(o, "apaBlocks");
  c.apa_depth_weight = boolean(o, "apaDepthWeight");
  c.apa_query = choice<ApaQuery>(o, "apaQuery", {{"class", ApaQuery::Class}, {"mean", ApaQuery::Mean}});
  c.apa_prior_per_block = boolean(o, "apaPriorPerBlock");
  c.apa_loss = choice<ApaLoss>(o, "apaLoss", {{"mse", ApaLoss::Mse}, {"relative-mse", ApaLoss::RelativeMse}, {"kl", ApaLoss::Kl}});
  c.msr = boolean(o, "msr");
  c.msr_max_regions = integer(o, "msrMaxRegions");
  c.msr_grid = integer(o, "msrGrid");
  c.msr_box_min = float(num(o, "msrBoxMin"));
  c.msr_box_max = float(num(o, "msrBoxMax"));
  c.msr_flip = boolean(o, "msrFlip");
  c.msr_resample_classes = boolean(o, "msrResampleClasses");
  c.tv = choice<TvForm>(o, "tv", {{"none", TvForm::None}, {"l2", TvForm::L2}, {"l1", TvForm::L1}});
  c.tv_weight = float(num(o, "tvWeight"));
  c.tv_target = boolean(o, "tvTarget");
  c.tv_target_min = float(num(o, "tvTargetMin"));
  c.tv_target_max = float(num(o, "tvTargetMax"));
  c.tv_target_scale = num(o, "tvTargetScale");
  c.pse = boolean(o, "pse");
  c.pse_weight = float(num(o, "pseWeight"));
  c.kde_bandwidth = float(num(o, "kdeBandwidth"));
  c.kde_points = integer(o, "kdePoints");
  c.pse_blocks = numbers<int>(o, "pseBlocks");
  const double budget = num(o, "memoryBudget");
  if (!(budget >= 1 && budget <= 9007199254740991.0))
    throw Napi::RangeError::New(o.Env(), "synth config.memoryBudget: expected a positive number of bytes");
  c.memory_budget = int64_t(budget);
  return c;
}

void registerSynth(Napi::Env env, Napi::Object exports) {
  exports.Set("synthesize", Napi::Function::New(env, Synthesize));
  exports.Set("synthObjective", Napi::Function::New(env, SynthObjective));
  exports.Set("synthPlan", Napi::Function::New(env, SynthPlan));
  exports.Set("synthKernels", synth_kernels(env));
}

}  // namespace spdfq::binding
