// synthesize(model, config, onProgress) → { promise, cancel }, synthObjective and synthPlan
// (see synth_worker.h). The worker thread makes no N-API calls: progress goes through
// the queue worker, results are converted in OnOK on the main thread.
#include "synth_worker.h"

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../core/errors.h"
#include "../synth/swin_synth_engine.h"
#include "../synth/synth_loop.h"
#ifdef SPDFQ_WITH_CUDA
#include "../synth/cuda_synth_engine.h"
#endif
#include "js_object.h"
#include "swin_model_wrap.h"
#include "tensor_args.h"
#include "vit_model_wrap.h"

namespace spdfq::binding {

namespace {

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

Napi::Object progress_object(Napi::Env env, const synth::SynthProgress& p) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("step", p.step);
  o.Set("totalSteps", p.total_steps);
  o.Set("round", p.round);
  o.Set("lr", p.lr);
  o.Set("alpha", p.alpha);
  o.Set("losses", losses_object(env, p.losses));
  o.Set("imagesPerSecond", p.images_per_second);
  o.Set("seconds", p.seconds);
  o.Set("stepFraction", p.step_fraction);
  return o;
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
  Napi::Array tables = Napi::Array::New(env, r.priors.size());
  for (size_t t = 0; t < r.priors.size(); ++t) {
    const synth::AttentionPriors& p = r.priors[t];
    Napi::Object pr = Napi::Object::New(env);
    pr.Set("maps", typed_copy<float, Napi::Float32Array>(env, p.maps));
    pr.Set("counts", typed_copy<int, Napi::Int32Array>(env, p.counts));
    pr.Set("images", p.images);
    pr.Set("sets", p.sets);
    pr.Set("heads", p.heads);
    pr.Set("gridH", p.grid_h);
    pr.Set("gridW", p.grid_w);
    pr.Set("windowH", p.window_h);
    pr.Set("windowW", p.window_w);
    pr.Set("group", r.prior_groups[t]);
    tables.Set(uint32_t(t), pr);
  }
  o.Set("priors", tables);
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

// The synthesis loop's view of either ViT engine (native/synth/synth_engine.h).
std::unique_ptr<synth::SynthEngine> synth_engine(cpu::CpuVit& m) { return std::make_unique<synth::CpuSynthEngine>(m); }
#ifdef SPDFQ_WITH_CUDA
std::unique_ptr<synth::SynthEngine> synth_engine(cuda::CudaVit& m) { return std::make_unique<synth::CudaSynthEngine>(m); }
#endif

// The model a call synthesizes on: a VitModel (CPU or CUDA engine) or a SwinModel (CPU),
// told apart by the SwinModel type tag before unwrapping; `busy` marks it while the worker
// runs.
struct SynthHost {
  std::function<void(bool)> set_busy;
  std::function<void(Napi::Env)> require_idle;
  std::function<std::unique_ptr<synth::SynthEngine>()> engine;
};

SynthHost unwrap_model(const Napi::CallbackInfo& info) {
  const char* expected = "model: expected a native VitModel or SwinModel object (from createVit or createSwin)";
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(info.Env(), expected);
  const Napi::Object obj = info[0].As<Napi::Object>();
  try {
    if (obj.CheckTypeTag(&kSwinModelTag)) {
      SwinModelWrap* w = SwinModelWrap::Unwrap(obj);
      return {[w](bool b) { w->set_busy(b); }, [w](Napi::Env env) { w->require_idle(env); },
              [w] { return std::unique_ptr<synth::SynthEngine>(std::make_unique<synth::CpuSwinSynthEngine>(w->model())); }};
    }
    VitModelWrap* w = VitModelWrap::Unwrap(obj);
    return {[w](bool b) { w->set_busy(b); }, [w](Napi::Env env) { w->require_idle(env); },
            [w] { return w->engine().visit([](auto& m) { return synth_engine(m); }); }};
  } catch (const Napi::Error&) {
    throw Napi::TypeError::New(info.Env(), expected);
  }
}

Napi::Object config_arg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsObject())
    throw Napi::TypeError::New(info.Env(), "config: expected a synthesis config object");
  return info[i].As<Napi::Object>();
}

// Builds the Synthesizer on the main thread, so config and memory errors reject at once.
// It runs on the model's engine: the CPU, or the GPU for a ViT created on 'cuda:N'.
std::unique_ptr<synth::Synthesizer> make_synthesizer(Napi::Env env, const SynthHost& host, const Napi::Object& cfg) {
  host.require_idle(env);
  synth::SynthConfig c = parse_synth_config(cfg);
  try {
    return std::make_unique<synth::Synthesizer>(host.engine(), std::move(c));
  } catch (const spdfq::Error& e) {
    throw coded_error(env, e.code(), e.what());
  } catch (const std::bad_alloc&) {
    throw coded_error(env, "E_MEMORY", "out of memory allocating the synthesis buffers");
  }
}

// ---- the loop
class SynthWorker : public Napi::AsyncProgressQueueWorker<synth::SynthProgress> {
 public:
  SynthWorker(Napi::Env env, SynthHost host, Napi::Object model, std::unique_ptr<synth::Synthesizer> s,
              Napi::Value on_progress, std::shared_ptr<std::atomic<bool>> cancel)
      : Napi::AsyncProgressQueueWorker<synth::SynthProgress>(env, "spdfq:synthesize"),
        host_(std::move(host)),
        synth_(std::move(s)),
        cancel_(std::move(cancel)),
        deferred_(Napi::Promise::Deferred::New(env)) {
    model_ = Napi::Persistent(model);
    if (on_progress.IsFunction()) progress_ = Napi::Persistent(on_progress.As<Napi::Function>());
    host_.set_busy(true);
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
    host_.set_busy(false);
    if (!progress_error_.IsEmpty())
      deferred_.Reject(progress_error_.Value());
    else
      deferred_.Resolve(result_object(Env(), result_));
  }
  void OnError(const Napi::Error& e) override {
    host_.set_busy(false);
    deferred_.Reject(coded_error(Env(), code_, e.Message()).Value());
  }

 private:
  SynthHost host_;
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
  SynthHost host = unwrap_model(info);
  auto s = make_synthesizer(env, host, config_arg(info, 1));
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  auto* w = new SynthWorker(env, std::move(host), info[0].As<Napi::Object>(), std::move(s),
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
  ObjectiveWorker(Napi::Env env, SynthHost host, Napi::Object model, std::unique_ptr<synth::Synthesizer> s,
                  Napi::Float32Array images, int step, double alpha, bool want_grad)
      : Napi::AsyncWorker(env, "spdfq:synthObjective"),
        host_(std::move(host)),
        synth_(std::move(s)),
        images_(images.Data()),
        step_(step),
        alpha_(alpha),
        deferred_(Napi::Promise::Deferred::New(env)) {
    model_ = Napi::Persistent(model);
    keep_ = Napi::Persistent(static_cast<Napi::Object>(images));
    if (want_grad) grad_.resize(images.ElementLength());
    host_.set_busy(true);
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
    host_.set_busy(false);
    Napi::Object o = Napi::Object::New(Env());
    o.Set("losses", losses_object(Env(), losses_));
    o.Set("grad", grad_.empty() ? Env().Null() : Napi::Value(typed_copy<float, Napi::Float32Array>(Env(), grad_)));
    deferred_.Resolve(o);
  }
  void OnError(const Napi::Error& e) override {
    host_.set_busy(false);
    deferred_.Reject(coded_error(Env(), code_, e.Message()).Value());
  }

 private:
  SynthHost host_;
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
  SynthHost host = unwrap_model(info);
  auto s = make_synthesizer(env, host, config_arg(info, 1));
  Napi::Float32Array images = float32_arg(info, 2, "images", int64_t(s->config().images) * s->model().image_len());
  const int step = int(int_arg(info, 3, "step", 0, 1 << 30));
  if (info.Length() < 5 || !info[4].IsNumber()) throw Napi::TypeError::New(env, "alpha: expected a number");
  const double alpha = info[4].As<Napi::Number>().DoubleValue();
  const bool want_grad = bool_arg(info, 5, "wantGrad");
  auto* w = new ObjectiveWorker(env, std::move(host), info[0].As<Napi::Object>(), std::move(s), images, step, alpha,
                                want_grad);
  w->Queue();
  return w->Promise();
}

// synthPlan(model, config) → { chunkImages, regionBatch, bytes } (validates; runs nothing)
Napi::Value SynthPlan(const Napi::CallbackInfo& info) {
  auto s = make_synthesizer(info.Env(), unwrap_model(info), config_arg(info, 1));
  return plan_object(info.Env(), s->plan());
}

}  // namespace

namespace {
using synth::SynthConfig;
using FieldSetter = void (*)(SynthConfig&, const JsObject&, const char*);

uint64_t seed_of(const JsObject& o, const char* key) {
  const double seed = o.number(key);
  if (!(seed >= 0 && seed <= 9007199254740991.0 && seed == std::floor(seed)))
    throw Napi::RangeError::New(o.object().Env(), "synth config.seed: expected an integer in [0, 2^53)");
  return uint64_t(seed);
}

std::vector<synth::SynthRound> rounds_of(const JsObject& o, const char* key) {
  Napi::Value rv = o.get(key);
  if (!rv.IsArray()) throw Napi::TypeError::New(o.object().Env(), "synth config.rounds: expected an array of rounds");
  Napi::Array ra = rv.As<Napi::Array>();
  std::vector<synth::SynthRound> out;
  for (uint32_t i = 0; i < ra.Length(); ++i) {
    JsObject r(ra.Get(i), "synth config.rounds[" + std::to_string(i) + "]");
    out.push_back(synth::SynthRound{r.integer("iters"), r.integer("warmup"), r.integer("rollMaxH"), r.integer("rollMaxW")});
  }
  return out;
}

int64_t bytes_of(const JsObject& o, const char* key) {
  const double budget = o.number(key);
  if (!(budget >= 1 && budget <= 9007199254740991.0))
    throw Napi::RangeError::New(o.object().Env(), "synth config.memoryBudget: expected a positive number of bytes");
  return int64_t(budget);
}

// The synthesis config's fields, as lib/synth/options.ts nativeSynthConfig writes them:
// one entry per field (test/synth.io.test.ts checks the two lists are the same).
const std::pair<const char*, FieldSetter> kSynthFields[] = {
    {"images", [](SynthConfig& c, const JsObject& o, const char* k) { c.images = o.integer(k); }},
    {"seed", [](SynthConfig& c, const JsObject& o, const char* k) { c.seed = seed_of(o, k); }},
    {"rounds", [](SynthConfig& c, const JsObject& o, const char* k) { c.rounds = rounds_of(o, k); }},
    {"lr", [](SynthConfig& c, const JsObject& o, const char* k) { c.lr = float(o.number(k)); }},
    {"beta1", [](SynthConfig& c, const JsObject& o, const char* k) { c.beta1 = float(o.number(k)); }},
    {"beta2", [](SynthConfig& c, const JsObject& o, const char* k) { c.beta2 = float(o.number(k)); }},
    {"adamEps", [](SynthConfig& c, const JsObject& o, const char* k) { c.adam_eps = float(o.number(k)); }},
    {"initStd", [](SynthConfig& c, const JsObject& o, const char* k) { c.init_std = float(o.number(k)); }},
    {"flip", [](SynthConfig& c, const JsObject& o, const char* k) { c.flip = o.boolean(k); }},
    {"clampLo", [](SynthConfig& c, const JsObject& o, const char* k) { c.clamp_lo = o.numbers<float>(k); }},
    {"clampHi", [](SynthConfig& c, const JsObject& o, const char* k) { c.clamp_hi = o.numbers<float>(k); }},
    {"targets", [](SynthConfig& c, const JsObject& o, const char* k) { c.targets = o.numbers<int32_t>(k); }},
    {"balancedTargets", [](SynthConfig& c, const JsObject& o, const char* k) { c.balanced_targets = o.boolean(k); }},
    {"cls", [](SynthConfig& c, const JsObject& o, const char* k) {
       using synth::ClsLoss;
       c.cls = o.choice<ClsLoss>(k, {{"none", ClsLoss::None}, {"hard", ClsLoss::Hard}, {"soft", ClsLoss::Soft}});
     }},
    {"clsWeight", [](SynthConfig& c, const JsObject& o, const char* k) { c.cls_weight = float(o.number(k)); }},
    {"softLogitMin", [](SynthConfig& c, const JsObject& o, const char* k) { c.soft_logit_min = float(o.number(k)); }},
    {"softLogitMax", [](SynthConfig& c, const JsObject& o, const char* k) { c.soft_logit_max = float(o.number(k)); }},
    {"apa", [](SynthConfig& c, const JsObject& o, const char* k) { c.apa = o.boolean(k); }},
    {"apaAlpha", [](SynthConfig& c, const JsObject& o, const char* k) { c.apa_alpha = o.number(k); }},
    {"apaComponents", [](SynthConfig& c, const JsObject& o, const char* k) { c.apa_components = o.integer(k); }},
    {"priorStdMin", [](SynthConfig& c, const JsObject& o, const char* k) { c.prior_std_min = float(o.number(k)); }},
    {"priorStdMaxFraction",
     [](SynthConfig& c, const JsObject& o, const char* k) { c.prior_std_max_fraction = float(o.number(k)); }},
    {"apaBlocks", [](SynthConfig& c, const JsObject& o, const char* k) { c.apa_blocks = o.numbers<int>(k); }},
    {"apaDepthWeight", [](SynthConfig& c, const JsObject& o, const char* k) { c.apa_depth_weight = o.boolean(k); }},
    {"apaQuery", [](SynthConfig& c, const JsObject& o, const char* k) {
       using synth::ApaQuery;
       c.apa_query = o.choice<ApaQuery>(k, {{"class", ApaQuery::Class}, {"mean", ApaQuery::Mean}});
     }},
    {"apaLoss", [](SynthConfig& c, const JsObject& o, const char* k) {
       using synth::ApaLoss;
       c.apa_loss = o.choice<ApaLoss>(k, {{"mse", ApaLoss::Mse}, {"relative-mse", ApaLoss::RelativeMse}, {"kl", ApaLoss::Kl}});
     }},
    {"apaPriorPerBlock", [](SynthConfig& c, const JsObject& o, const char* k) { c.apa_prior_per_block = o.boolean(k); }},
    {"msr", [](SynthConfig& c, const JsObject& o, const char* k) { c.msr = o.boolean(k); }},
    {"msrMaxRegions", [](SynthConfig& c, const JsObject& o, const char* k) { c.msr_max_regions = o.integer(k); }},
    {"msrGrid", [](SynthConfig& c, const JsObject& o, const char* k) { c.msr_grid = o.integer(k); }},
    {"msrBoxMin", [](SynthConfig& c, const JsObject& o, const char* k) { c.msr_box_min = float(o.number(k)); }},
    {"msrBoxMax", [](SynthConfig& c, const JsObject& o, const char* k) { c.msr_box_max = float(o.number(k)); }},
    {"msrFlip", [](SynthConfig& c, const JsObject& o, const char* k) { c.msr_flip = o.boolean(k); }},
    {"msrResampleClasses", [](SynthConfig& c, const JsObject& o, const char* k) { c.msr_resample_classes = o.boolean(k); }},
    {"tv", [](SynthConfig& c, const JsObject& o, const char* k) {
       using synth::TvForm;
       c.tv = o.choice<TvForm>(k, {{"none", TvForm::None}, {"l2", TvForm::L2}, {"l1", TvForm::L1}});
     }},
    {"tvWeight", [](SynthConfig& c, const JsObject& o, const char* k) { c.tv_weight = float(o.number(k)); }},
    {"tvTarget", [](SynthConfig& c, const JsObject& o, const char* k) { c.tv_target = o.boolean(k); }},
    {"tvTargetMin", [](SynthConfig& c, const JsObject& o, const char* k) { c.tv_target_min = float(o.number(k)); }},
    {"tvTargetMax", [](SynthConfig& c, const JsObject& o, const char* k) { c.tv_target_max = float(o.number(k)); }},
    {"tvTargetScale", [](SynthConfig& c, const JsObject& o, const char* k) { c.tv_target_scale = o.number(k); }},
    {"pse", [](SynthConfig& c, const JsObject& o, const char* k) { c.pse = o.boolean(k); }},
    {"pseWeight", [](SynthConfig& c, const JsObject& o, const char* k) { c.pse_weight = float(o.number(k)); }},
    {"kdeBandwidth", [](SynthConfig& c, const JsObject& o, const char* k) { c.kde_bandwidth = float(o.number(k)); }},
    {"kdePoints", [](SynthConfig& c, const JsObject& o, const char* k) { c.kde_points = o.integer(k); }},
    {"pseBlocks", [](SynthConfig& c, const JsObject& o, const char* k) { c.pse_blocks = o.numbers<int>(k); }},
    {"memoryBudget", [](SynthConfig& c, const JsObject& o, const char* k) { c.memory_budget = bytes_of(o, k); }},
    {"shardBegin", [](SynthConfig& c, const JsObject& o, const char* k) { c.shard_begin = o.integer(k); }},
    {"shardEnd", [](SynthConfig& c, const JsObject& o, const char* k) { c.shard_end = o.integer(k); }},
};
}  // namespace

synth::SynthConfig parse_synth_config(const Napi::Object& o) {
  const JsObject r(o, "synth config");
  SynthConfig c;
  for (const auto& [key, set] : kSynthFields) set(c, r, key);
  return c;
}

Napi::Value SynthConfigKeys(const Napi::CallbackInfo& info) {
  Napi::Array a = Napi::Array::New(info.Env());
  uint32_t i = 0;
  for (const auto& field : kSynthFields) a.Set(i++, field.first);
  return a;
}

void registerSynth(Napi::Env env, Napi::Object exports) {
  exports.Set("synthesize", Napi::Function::New(env, Synthesize));
  exports.Set("synthObjective", Napi::Function::New(env, SynthObjective));
  exports.Set("synthPlan", Napi::Function::New(env, SynthPlan));
  exports.Set("synthKernels", synth_kernels(env));
  exports.Set("synthConfigKeys", Napi::Function::New(env, SynthConfigKeys));
}

}  // namespace spdfq::binding
