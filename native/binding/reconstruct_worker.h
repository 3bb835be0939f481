// Block reconstruction of any model class (VitModel: quant_binding.cc; SwinModel:
// swin_quant_binding.cc) off the event loop: the worker runs the given reconstruction,
// reports progress (at most ~10 a second, and every stage's last iteration), resolves with
// the per-stage reports, and rejects with the coded error (E_CANCELLED when cancel() set
// the model's flag). The reconstruction options are parsed by one reader for both.
#pragma once

#include <napi.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "../quant/reconstruct.h"
#include "js_object.h"
#include "quant_js.h"
#include "tensor_args.h"

namespace spdfq::binding {

// reconstruct()'s options object ({ iters, lr, batch, seed, rounding, … }, all required:
// lib/quant/quant-config.ts resolves the defaults).
inline quant::ReconstructConfig parse_reconstruct_config(const JsObject& o) {
  quant::ReconstructConfig cfg;
  cfg.iters = o.integer("iters");
  cfg.lr = float(o.number("lr"));
  cfg.batch = o.integer("batch");
  cfg.seed = uint64_t(o.number("seed"));
  cfg.rounding = o.choice<quant::Rounding>("rounding", {{"ste", quant::Rounding::Ste}, {"adaround", quant::Rounding::AdaRound}});
  cfg.round_lr = float(o.number("roundLr"));
  cfg.round_reg = float(o.number("roundReg"));
  cfg.round_warmup = float(o.number("roundWarmup"));
  cfg.qdrop = float(o.number("qdrop"));
  cfg.holdout = float(o.number("holdout"));
  cfg.check_every = o.integer("checkEvery");
  cfg.embed = o.boolean("embed");
  cfg.head = o.boolean("head");
  cfg.learn_steps = o.boolean("learnSteps");
  cfg.step_lr = float(o.number("stepLr"));
  return cfg;
}

struct ReconstructWorkerBase {
  using Progress = std::function<void(const quant::ReconstructProgress&)>;
};

template <class Wrap>
class ReconstructWorker : public Napi::AsyncProgressQueueWorker<quant::ReconstructProgress> {
 public:
  using Run = std::function<std::vector<quant::BlockReport>(const ReconstructWorkerBase::Progress&)>;

  // `run` executes on the worker thread; `images` and `self` stay referenced until it ends.
  ReconstructWorker(Napi::Env env, Wrap* wrap, Napi::Object self, Napi::Float32Array images, Napi::Function on_progress,
                    Run run)
      : Napi::AsyncProgressQueueWorker<quant::ReconstructProgress>(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        wrap_(wrap),
        run_(std::move(run)) {
    self_ = Napi::Persistent(self);
    images_ref_ = Napi::Persistent(static_cast<Napi::Object>(images));
    if (!on_progress.IsEmpty()) progress_ = Napi::Persistent(on_progress);
    wrap_->set_busy(true);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

 private:
  void Execute(const ExecutionProgress& progress) override {
    auto last = std::chrono::steady_clock::now() - std::chrono::seconds(1);
    try {
      reports_ = run_([&](const quant::ReconstructProgress& p) {
        const auto now = std::chrono::steady_clock::now();
        // At most ~10 reports a second, and always the last iteration of a stage.
        if (p.iter == p.iters || now - last > std::chrono::milliseconds(100)) {
          last = now;
          progress.Send(&p, 1);
        }
      });
    } catch (const std::exception& e) {
      code_ = code_of(e);
      SetError(e.what());
    }
  }
  void OnProgress(const quant::ReconstructProgress* p, size_t count) override {
    if (progress_.IsEmpty()) return;
    Napi::Env env = Env();
    for (size_t i = 0; i < count; ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("block", p[i].block);
      o.Set("blocks", p[i].blocks);
      o.Set("iter", p[i].iter);
      o.Set("iters", p[i].iters);
      o.Set("loss", p[i].loss);
      o.Set("stage", p[i].stage);
      progress_.Call({o});
    }
  }
  void OnOK() override {
    wrap_->set_busy(false);
    Napi::Env env = Env();
    Napi::Array out = Napi::Array::New(env, reports_.size());
    for (size_t i = 0; i < reports_.size(); ++i) {
      const quant::BlockReport& r = reports_[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("stage", r.stage);
      o.Set("block", r.block);
      o.Set("mseBefore", r.mse_before);
      o.Set("mseAfter", r.mse_after);
      o.Set("itersKept", r.iters_kept);
      Napi::Array steps = Napi::Array::New(env, r.steps.size());
      for (size_t k = 0; k < r.steps.size(); ++k) {
        Napi::Object st = Napi::Object::New(env);
        st.Set("site", quant::site_name(r.steps[k].first));
        st.Set("scale", r.steps[k].second);
        steps.Set(uint32_t(k), st);
      }
      o.Set("steps", steps);
      out.Set(uint32_t(i), o);
    }
    deferred_.Resolve(out);
  }
  void OnError(const Napi::Error& e) override {
    wrap_->set_busy(false);
    deferred_.Reject(coded_error(Env(), code_, e.Message()).Value());
  }

  Napi::Promise::Deferred deferred_;
  Wrap* wrap_;
  Run run_;
  std::vector<quant::BlockReport> reports_;
  Napi::ObjectReference self_, images_ref_;
  Napi::FunctionReference progress_;
  std::string code_ = "E_NATIVE";
};

// reconstruct(images, n, options, onProgress?) of either model class (VitModelWrap,
// SwinModelWrap): checks the installed quantizers and the images, parses the options and
// queues `algorithm` (quant::reconstruct_blocks or quant::reconstruct_swin) on `model` off
// the event loop; the promise resolves with the per-stage reports.
template <class Wrap, class Model, class Algorithm>
Napi::Value queue_reconstruction(const Napi::CallbackInfo& info, Wrap* wrap, Model& model, Algorithm algorithm) {
  Napi::Env env = info.Env();
  if (wrap->act_quant_.blocks.empty() || wrap->weight_quant_.empty())
    throw coded_error(env, "E_STATE", "reconstruction needs activation and weight quantizers set first");
  const int n = int(int_arg(info, 1, "images", 1, 1 << 24));
  Napi::Float32Array images = float32_arg(info, 0, "images", int64_t(n) * model.config().image_len());
  const quant::ReconstructConfig cfg = parse_reconstruct_config(JsObject(info[2], "reconstruction"));
  Napi::Function cb = info.Length() > 3 && info[3].IsFunction() ? info[3].As<Napi::Function>() : Napi::Function();
  std::atomic<bool>* cancel = wrap->cancel_flag();
  *cancel = false;
  quant::ActQuantState* aq = &wrap->act_quant_;
  const quant::WeightQuantTable* wq = &wrap->weight_quant_;
  const float* x = images.Data();
  auto* w = new ReconstructWorker<Wrap>(
      env, wrap, info.This().As<Napi::Object>(), images, cb,
      [&model, aq, wq, x, n, cfg, cancel, algorithm](const ReconstructWorkerBase::Progress& progress) {
        return algorithm(model, aq, *wq, x, n, cfg, progress, cancel);
      });
  w->Queue();
  return w->Promise();
}

}  // namespace spdfq::binding
