// SwinModel's quantization methods (docs/swin.md, "Stage: quantization"): calibrate the
// activation sites off the event loop, install activation and weight quantizers, run block
// reconstruction off the event loop. The parsing, the calibration pass and the
// reconstruction worker are the ViT's (quant_js.h, calibrate_worker.h, reconstruct_worker.h).
#include <napi.h>

#include <cstring>
#include <string>
#include <vector>

#include "../core/swin_params.h"
#include "calibrate_worker.h"
#include "reconstruct_worker.h"
#include "quant_js.h"
#include "swin_model_wrap.h"
#include "tensor_args.h"

namespace spdfq::binding {

namespace {

SiteSpace swin_sites(const SwinConfig& c) { return SiteSpace{c.blocks(), c.stages() - 1}; }

}  // namespace

// calibrate(images, n, chunk, specs[{ site, block, kind, bits, symmetric, method, percentiles, perChannel }],
//           onQuantizedModel?) → Promise<quantizers, one per spec>
Napi::Value SwinModelWrap::Calibrate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_idle(env);
  const SwinConfig& c = model_->config();
  const int n = int(int_arg(info, 1, "images", 1, 1 << 24));
  const int chunk = int(int_arg(info, 2, "chunk", 1, 1 << 24));
  Napi::Float32Array images = float32_arg(info, 0, "images", int64_t(n) * c.image_len());
  std::vector<quant::CalibRequest> reqs = parse_calib_requests(env, info[3], swin_sites(c));
  const bool on_quantized = info.Length() > 4 && bool_arg(info, 4, "onQuantizedModel");
  cancel_ = false;
  auto* w = new CalibrateWorker<SwinModelWrap>(env, this, info.This().As<Napi::Object>(), images, n, chunk,
                                               std::move(reqs), on_quantized);
  w->Queue();
  return w->Promise();
}

// setActQuant(sites[{ site, block, kind, bits, scale, zero, qmin, qmax }] | null); block is
// the stage-major block index, or the merge's stage for reduce_in.
Napi::Value SwinModelWrap::SetActQuant(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_idle(env);
  if (info[0].IsNull() || info[0].IsUndefined()) {
    act_quant_ = quant::ActQuantState{};
    model_->set_act_quant(nullptr);
    return env.Undefined();
  }
  act_quant_ = parse_act_quant(env, info[0], swin_sites(model_->config()));
  model_->set_act_quant(&act_quant_);
  return env.Undefined();
}

// setWeightQuant(layers[{ name, kind, bits, qmin, qmax, scales, zeros }] | null): per-row
// quantizers of weight matrices by torchvision name ("features.1.0.attn.qkv.weight").
Napi::Value SwinModelWrap::SetWeightQuant(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_idle(env);
  if (info[0].IsNull() || info[0].IsUndefined()) {
    weight_quant_.clear();
    model_->set_weight_quant(false);
    return env.Undefined();
  }
  weight_quant_ = parse_weight_quant(env, info[0], plan_swin_params(model_->config()));
  refresh_quant_params();
  return env.Undefined();
}

// reconstruct(images, n, { iters, lr, batch, seed, … }, onProgress?) → Promise<[{ stage, block, mseBefore,
// mseAfter, itersKept, steps }]>: quant::reconstruct_swin on the installed quantizers; the
// fp weights and their quantized copy are updated, and learned steps (LSQ) written into
// the installed activation quantizers.
Napi::Value SwinModelWrap::Reconstruct(const Napi::CallbackInfo& info) {
  require_idle(info.Env());
  return queue_reconstruction(info, this, *model_, quant::reconstruct_swin);
}

// stageGradient(stage, input, target, batch) → { loss, grads }: one reconstruction stage's
// loss and its gradient in the trained tensors (parameter layout, zero elsewhere) on the
// installed quantizers, as a training step computes them (quant::swin_stage_gradient).
// Synchronous: a single small pass, for the finite-difference tests.
Napi::Value SwinModelWrap::StageGradient(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_idle(env);
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "stage: expected a string");
  const std::string stage = info[0].As<Napi::String>().Utf8Value();
  Napi::Float32Array in = float32_arg(info, 1, "input", -1);
  Napi::Float32Array target = float32_arg(info, 2, "target", -1);
  const int batch = int(int_arg(info, 3, "batch", 1, 1 << 24));
  Napi::Float32Array grads = Napi::Float32Array::New(env, size_t(model_->param_count()));
  const double loss = quant::swin_stage_gradient(*model_, weight_quant_, stage, in.Data(), int64_t(in.ElementLength()),
                                                 target.Data(), int64_t(target.ElementLength()), batch, grads.Data());
  Napi::Object o = Napi::Object::New(env);
  o.Set("loss", loss);
  o.Set("grads", grads);
  return o;
}

void SwinModelWrap::refresh_quant_params() {
  if (weight_quant_.empty()) return;
  float* qp = model_->quant_params();
  const float* fp = model_->params();
  std::memcpy(qp, fp, sizeof(float) * size_t(model_->param_count()));
  for (const auto& w : weight_quant_) quant::apply_weight_quant(w, fp, qp);
  model_->set_weight_quant(true);
}

}  // namespace spdfq::binding
