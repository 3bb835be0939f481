// JavaScript side of quantization: quantizer search and fake-quant as plain functions (for
// tests and weight quantizers), and the VitModel methods that calibrate activation sites,
// install quantizers, and run block reconstruction off the event loop with progress.
#include <napi.h>

#include <chrono>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "../core/errors.h"
#include "../quant/calibrate.h"
#include "../cpu/qgemm.h"
#include "../cpu/qlinear.h"
#include "../quant/reconstruct.h"
#include "calibrate_worker.h"
#include "reconstruct_worker.h"
#include "js_object.h"
#include "quant_js.h"
#include "tensor_args.h"
#include "vit_model_wrap.h"

namespace spdfq::binding {

namespace {

using quant::QuantKind;
using quant::Site;
using quant::TensorQuant;

// quantSearch(values, rows, cols, axis, spec): axis −1 → one quantizer; 0 → per row; 1 → per column.
Napi::Value QuantSearch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t rows = int_arg(info, 1, "rows", 0, int64_t(1) << 40);
  const int64_t cols = int_arg(info, 2, "cols", 0, int64_t(1) << 40);
  const int axis = int(int_arg(info, 3, "axis", -1, 1));
  Napi::Float32Array v = float32_arg(info, 0, "values", rows * cols);
  const quant::SearchSpec spec = parse_spec(JsObject(info[4], "spec"));
  try {
    if (axis < 0) return quantizer_js(env, quant::search_quantizer(std::vector<float>(v.Data(), v.Data() + rows * cols), spec));
    return channels_js(env, quant::search_per_channel(v.Data(), rows, cols, axis, spec));
  } catch (const std::exception& e) {
    throw coded_error(env, code_of(e), e.what());
  }
}

// fakeQuant(values, quantizer) → new Float32Array.
Napi::Value FakeQuant(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float32Array v = float32_arg(info, 0, "values", -1);
  const TensorQuant q = parse_quantizer(JsObject(info[1], "quantizer"));
  Napi::Float32Array out = Napi::Float32Array::New(env, v.ElementLength());
  std::memcpy(out.Data(), v.Data(), v.ByteLength());
  quant::fake_quant_tensor(out.Data(), int64_t(out.ElementLength()), q);
  return out;
}

// lsqStepGradient(x, grad, quantizer) → { step, grad }: LSQ's d loss/d step for float inputs
// x and d loss/d ŷ `grad`, and grad with the clipped entries zeroed (core/quantizer.h), for
// the tests against the definition.
Napi::Value LsqStepGradientJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float32Array x = float32_arg(info, 0, "x", -1);
  Napi::Float32Array grad = float32_arg(info, 1, "grad", int64_t(x.ElementLength()));
  const TensorQuant q = parse_quantizer(JsObject(info[2], "quantizer"));
  Napi::Float32Array g = Napi::Float32Array::New(env, grad.ElementLength());
  std::memcpy(g.Data(), grad.Data(), sizeof(float) * grad.ElementLength());
  const double step = quant::lsq_step_gradient(x.Data(), g.Data(), int64_t(x.ElementLength()), q);
  Napi::Object o = Napi::Object::New(env);
  o.Set("step", step);
  o.Set("grad", g);
  return o;
}

// softRounding(v, base, quantizer, beta) → { weight, dWeight, reg, dReg }: AdaRound's soft
// rounding of each element (reconstruct.h), for the finite-difference tests.
Napi::Value SoftRoundingJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float32Array v = float32_arg(info, 0, "v", -1);
  Napi::Float32Array base = float32_arg(info, 1, "base", int64_t(v.ElementLength()));
  const TensorQuant q = parse_quantizer(JsObject(info[2], "quantizer"));
  if (info.Length() < 4 || !info[3].IsNumber()) throw Napi::TypeError::New(env, "beta: expected a number");
  const float beta = info[3].As<Napi::Number>().FloatValue();
  const size_t n = v.ElementLength();
  Napi::Float32Array w = Napi::Float32Array::New(env, n), dw = Napi::Float32Array::New(env, n);
  Napi::Float64Array reg = Napi::Float64Array::New(env, n);
  Napi::Float32Array dreg = Napi::Float32Array::New(env, n);
  for (size_t i = 0; i < n; ++i) {
    float d;
    w[i] = quant::soft_rounded_weight(v[i], base[i], q, &d);
    dw[i] = d;
    reg[i] = quant::rounding_regularizer(v[i], beta, &d);
    dreg[i] = d;
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("weight", w);
  o.Set("dWeight", dw);
  o.Set("reg", reg);
  o.Set("dReg", dreg);
  return o;
}

}  // namespace

// calibrate(images, n, chunk, specs[{ site, block, kind, bits, symmetric, method, percentiles, perChannel }])
Napi::Value VitModelWrap::Calibrate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_idle(env);
  const int n = int(int_arg(info, 1, "images", 1, 1 << 24));
  const int chunk = int(int_arg(info, 2, "chunk", 1, 1 << 24));
  const VitConfig& c = config();
  Napi::Float32Array images = float32_arg(info, 0, "images", int64_t(n) * c.image_len());
  std::vector<quant::CalibRequest> reqs = parse_calib_requests(env, info[3], SiteSpace{c.depth, 0});
  cancel_ = false;
  const bool on_quantized = info.Length() > 4 && bool_arg(info, 4, "onQuantizedModel");
  auto* w = new CalibrateWorker<VitModelWrap>(env, this, info.This().As<Napi::Object>(), images, n, chunk, std::move(reqs), on_quantized);
  w->Queue();
  return w->Promise();
}

// setActQuant(sites[{ site, block, kind, bits, scale, zero, qmin, qmax }] | null)
Napi::Value VitModelWrap::SetActQuant(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_idle(env);
  if (info[0].IsNull() || info[0].IsUndefined()) {
    act_quant_ = quant::ActQuantState{};
    engine_->visit([](auto& m) { m.set_act_quant(nullptr); });
    return env.Undefined();
  }
  quant::ActQuantState st = parse_act_quant(env, info[0], SiteSpace{config().depth, 0});
  act_quant_ = std::move(st);
  engine_->visit([&](auto& m) { m.set_act_quant(&act_quant_); });
  return env.Undefined();
}

// setWeightQuant(layers[{ name, kind, bits, qmin, qmax, scales, zeros }] | null): per-row quantizers.
Napi::Value VitModelWrap::SetWeightQuant(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_idle(env);
  if (info[0].IsNull() || info[0].IsUndefined()) {
    weight_quant_.clear();
    engine_->visit([](auto& m) { m.set_weight_quant(false); });
    return env.Undefined();
  }
  quant::WeightQuantTable table = parse_weight_quant(env, info[0], plan_params(config()));
  // On CUDA both pointers are host mirrors; the quantized copy is uploaded before the next pass.
  engine_->visit([&](auto& m) {
    float* qp = m.quant_params();
    const float* fp = m.params();
    std::memcpy(qp, fp, sizeof(float) * size_t(m.param_count()));
    for (const auto& w : table) quant::apply_weight_quant(w, fp, qp);
  });
  weight_quant_ = std::move(table);
  engine_->visit([](auto& m) { m.set_weight_quant(true); });
  return env.Undefined();
}

Napi::Value VitModelWrap::GetQuantParams(const Napi::CallbackInfo& info) {
  require_idle(info.Env());
  return engine_->visit([&](auto& m) {
    Napi::Float32Array a = Napi::Float32Array::New(info.Env(), size_t(m.param_count()));
    std::memcpy(a.Data(), m.quant_params(), a.ByteLength());
    return a;
  });
}

// reconstruct(images, n, { iters, lr, batch, seed, … }, onProgress?) → Promise<[{ stage, block, mseBefore, mseAfter, itersKept }]>
Napi::Value VitModelWrap::Reconstruct(const Napi::CallbackInfo& info) {
  require_idle(info.Env());
  return queue_reconstruction(info, this, cpu_model("reconstruct (block reconstruction)"), quant::reconstruct_blocks);
}

// setIntegerMode(on): pack the quantized weights for the integer kernels (from the fp
// weights and the installed per-channel quantizers) and run Linears on them.
Napi::Value VitModelWrap::SetIntegerMode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_idle(env);
  const bool on = bool_arg(info, 0, "on");
  if (!on) {
    // A CUDA model never runs integer kernels, so turning them off is always possible.
    if (!engine_->on_cuda()) engine_->cpu("setIntegerMode").set_integer_mode(false);
    return env.Undefined();
  }
  cpu::CpuVit& model = cpu_model("setIntegerMode (integer execution)");
  if (weight_quant_.empty() || act_quant_.blocks.empty())
    throw coded_error(env, "E_STATE", "integer execution needs activation and weight quantizers set first");
  std::vector<std::pair<std::string, cpu::QLinearWeights>> layers;
  try {
    for (const auto& w : weight_quant_)
      layers.emplace_back(w.name, cpu::pack_qweights_from_float(model.params() + w.offset, int(w.rows), int(w.cols),
                                                                w.cols, w.channels.data()));
  } catch (const std::exception& e) {
    throw coded_error(env, "E_CONFIG", std::string("integer execution: ") + e.what());
  }
  model.set_integer_weights(std::move(layers));
  model.set_integer_mode(true);
  return env.Undefined();
}

// qgemmBench(kind: 'int8' | 'int4w', size, repeats) → GOPS of the integer GEMM (with its
// float epilogue), single-threaded — for `npm run bench`.
Napi::Value QGemmBench(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "kind: expected 'int8' or 'int4w'");
  const std::string kind = info[0].As<Napi::String>().Utf8Value();
  const int size = int(int_arg(info, 1, "size", 1, 8192));
  const int repeats = int(int_arg(info, 2, "repeats", 1, 1000));
  if (kind == "int8") return Napi::Number::New(env, cpu::qgemm_bench_int8_gops(size, repeats));
  if (kind == "int4w") return Napi::Number::New(env, cpu::qgemm_bench_int4w_gops(size, repeats));
  throw Napi::RangeError::New(env, "kind: expected 'int8' or 'int4w', received '" + kind + "'");
}

void register_quant(Napi::Env env, Napi::Object exports) {
  exports.Set("qgemmBench", Napi::Function::New(env, QGemmBench));
  exports.Set("quantSearch", Napi::Function::New(env, QuantSearch));
  exports.Set("fakeQuant", Napi::Function::New(env, FakeQuant));
  exports.Set("softRounding", Napi::Function::New(env, SoftRoundingJs));
  exports.Set("lsqStepGradient", Napi::Function::New(env, LsqStepGradientJs));
}

}  // namespace spdfq::binding
