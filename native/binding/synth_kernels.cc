// Kernel-level entry points of native/synth for the tests (each loss, its gradient and the
// samplers, in isolation, so each can be checked against finite differences or an
// independent reference). Synchronous: they run on small arrays the tests own.
#include <cmath>
#include <string>
#include <vector>

#include "../core/errors.h"
#include "../synth/adam.h"
#include "../synth/apa_loss.h"
#include "../synth/attention_prior.h"
#include "../synth/augment.h"
#include "../synth/msr_regions.h"
#include "../synth/patch_similarity.h"
#include "../synth/soft_labels.h"
#include "../synth/synth_loop.h"
#include "../synth/tv_loss.h"
#include "synth_worker.h"
#include "tensor_args.h"

namespace spdfq::binding {

namespace {

constexpr int64_t kMaxDim = int64_t(1) << 24;

double number_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + ": expected a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

synth::ApaQuery query_arg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsString()) throw Napi::TypeError::New(info.Env(), "query: expected 'class' or 'mean'");
  const std::string s = info[i].As<Napi::String>().Utf8Value();
  if (s == "class") return synth::ApaQuery::Class;
  if (s == "mean") return synth::ApaQuery::Mean;
  throw Napi::RangeError::New(info.Env(), "query: expected 'class' or 'mean', received '" + s + "'");
}

synth::ApaLoss apa_form_arg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsString()) throw Napi::TypeError::New(info.Env(), "form: expected 'mse', 'relative-mse' or 'kl'");
  const std::string s = info[i].As<Napi::String>().Utf8Value();
  if (s == "mse") return synth::ApaLoss::Mse;
  if (s == "relative-mse") return synth::ApaLoss::RelativeMse;
  if (s == "kl") return synth::ApaLoss::Kl;
  throw Napi::RangeError::New(info.Env(), "form: expected 'mse', 'relative-mse' or 'kl', received '" + s + "'");
}

synth::TvForm tv_arg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsString()) throw Napi::TypeError::New(info.Env(), "form: expected 'l2' or 'l1'");
  const std::string s = info[i].As<Napi::String>().Utf8Value();
  if (s == "l2") return synth::TvForm::L2;
  if (s == "l1") return synth::TvForm::L1;
  throw Napi::RangeError::New(info.Env(), "form: expected 'l2' or 'l1', received '" + s + "'");
}

template <class F>
auto coded(Napi::Env env, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const spdfq::Error& e) {
    throw coded_error(env, e.code(), e.what());
  }
}

// attentionPriors(images, sets, heads, gridH, gridW, components, stdMin, stdMaxFraction, seed)
//   → { maps, counts, components: Float32Array [n, 5] (weight, muY, muX, sdY, sdX) }
Napi::Value AttentionPriorsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int B = int(int_arg(info, 0, "images", 0, kMaxDim)), S = int(int_arg(info, 1, "sets", 1, 1024));
  const int H = int(int_arg(info, 2, "heads", 1, 1024));
  const int gh = int(int_arg(info, 3, "gridH", 1, 4096)), gw = int(int_arg(info, 4, "gridW", 1, 4096));
  synth::PriorSpec spec{int(int_arg(info, 5, "components", 1, 64)), float(number_arg(info, 6, "stdMin")),
                        float(number_arg(info, 7, "stdMaxFraction"))};
  const uint64_t seed = uint64_t(int_arg(info, 8, "seed", 0, (int64_t(1) << 53) - 1));
  if (!(spec.std_min > 0) || !(spec.std_max_fraction > 0))
    throw Napi::RangeError::New(env, "stdMin and stdMaxFraction: expected positive numbers");
  const auto p = coded(env, [&] { return synth::sample_attention_priors(B, S, H, gh, gw, spec, seed); });
  Napi::Object o = Napi::Object::New(env);
  Napi::Float32Array maps = Napi::Float32Array::New(env, p.maps.size());
  for (size_t i = 0; i < p.maps.size(); ++i) maps[i] = p.maps[i];
  Napi::Int32Array counts = Napi::Int32Array::New(env, p.counts.size());
  for (size_t i = 0; i < p.counts.size(); ++i) counts[i] = p.counts[i];
  Napi::Float32Array comps = Napi::Float32Array::New(env, p.components.size() * 5);
  for (size_t i = 0; i < p.components.size(); ++i) {
    const auto& c = p.components[i];
    const float v[5] = {c.weight, c.mu_y, c.mu_x, c.sd_y, c.sd_x};
    for (int k = 0; k < 5; ++k) comps[i * 5 + k] = v[k];
  }
  o.Set("maps", maps);
  o.Set("counts", counts);
  o.Set("components", comps);
  return o;
}

// apaLoss(att [B,H,N,N], priors [B,H,P], B, H, N, prefix, query, form) → { loss, grad [B,H,N,N] }
Napi::Value ApaLossJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int B = int(int_arg(info, 2, "B", 1, kMaxDim)), H = int(int_arg(info, 3, "H", 1, 4096));
  const int N = int(int_arg(info, 4, "N", 2, 1 << 16)), prefix = int(int_arg(info, 5, "prefix", 0, N - 1));
  const auto q = query_arg(info, 6);
  const auto form = apa_form_arg(info, 7);
  Napi::Float32Array att = float32_arg(info, 0, "att", int64_t(B) * H * N * N);
  Napi::Float32Array pri = float32_arg(info, 1, "priors", int64_t(B) * H * (N - prefix));
  Napi::Float32Array grad = Napi::Float32Array::New(env, att.ElementLength());
  for (size_t i = 0; i < grad.ElementLength(); ++i) grad[i] = 0.0f;
  const double loss =
      synth::apa_loss(grad.Data(), att.Data(), pri.Data(), int64_t(H) * (N - prefix), B, H, N, prefix, q, form, 1.0);
  Napi::Object o = Napi::Object::New(env);
  o.Set("loss", loss);
  o.Set("grad", grad);
  return o;
}

// apaMaps(att, B, H, N, prefix, query) → Float32Array [B, H, P]
Napi::Value ApaMapsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int B = int(int_arg(info, 1, "B", 1, kMaxDim)), H = int(int_arg(info, 2, "H", 1, 4096));
  const int N = int(int_arg(info, 3, "N", 2, 1 << 16)), prefix = int(int_arg(info, 4, "prefix", 0, N - 1));
  const auto q = query_arg(info, 5);
  Napi::Float32Array att = float32_arg(info, 0, "att", int64_t(B) * H * N * N);
  Napi::Float32Array out = Napi::Float32Array::New(env, size_t(B) * H * (N - prefix));
  synth::apa_attention_maps(out.Data(), att.Data(), B, H, N, prefix, q);
  return out;
}

// patchSimilarityEntropy(av [B,N,D], B, N, D, H, prefix, bandwidth, points, lo?, hi?)
//   → { entropy (Σ_b H_b), perImage: Float64Array, grad [B,N,D], lo, hi }
// lo/hi default to the batch-wide similarity range (as PSAQ-ViT); pass them to hold the
// evaluation points fixed (finite differences).
Napi::Value PatchSimilarityEntropyJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  synth::PatchSimilarityShape s{int(int_arg(info, 1, "B", 1, kMaxDim)), int(int_arg(info, 2, "N", 2, 1 << 16)),
                                int(int_arg(info, 3, "D", 1, 1 << 16)), int(int_arg(info, 4, "H", 1, 4096)), 0};
  s.prefix = int(int_arg(info, 5, "prefix", 0, s.N - 2));
  if (s.D % s.H != 0) throw Napi::RangeError::New(env, "D: expected a multiple of H");
  const float bw = float(number_arg(info, 6, "bandwidth"));
  const int points = int(int_arg(info, 7, "points", 2, 4096));
  if (!(bw > 0)) throw Napi::RangeError::New(env, "bandwidth: expected a positive number");
  Napi::Float32Array av = float32_arg(info, 0, "av", int64_t(s.B) * s.N * s.D);
  float lo, hi;
  if (info.Length() > 9 && info[8].IsNumber() && info[9].IsNumber()) {
    lo = info[8].As<Napi::Number>().FloatValue();
    hi = info[9].As<Napi::Number>().FloatValue();
  } else {
    synth::patch_similarity_range(&lo, &hi, av.Data(), s, nullptr);
  }
  Napi::Float32Array grad = Napi::Float32Array::New(env, av.ElementLength());
  for (size_t i = 0; i < grad.ElementLength(); ++i) grad[i] = 0.0f;
  std::vector<double> per(s.B);
  const double e = synth::patch_similarity_entropy(grad.Data(), per.data(), av.Data(), s, bw, points, lo, hi, 1.0, nullptr);
  Napi::Float64Array pa = Napi::Float64Array::New(env, s.B);
  for (int b = 0; b < s.B; ++b) pa[b] = per[b];
  Napi::Object o = Napi::Object::New(env);
  o.Set("entropy", e);
  o.Set("perImage", pa);
  o.Set("grad", grad);
  o.Set("lo", lo);
  o.Set("hi", hi);
  return o;
}

// sampleRegions(B, H, W, maxRegions, grid, boxMin, boxMax, flip, seed)
//   → Int32Array [R, 7]: image, cell, y0, x0, h, w, flip
Napi::Value SampleRegionsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int B = int(int_arg(info, 0, "B", 1, kMaxDim));
  const int H = int(int_arg(info, 1, "H", 1, 1 << 16)), W = int(int_arg(info, 2, "W", 1, 1 << 16));
  synth::RegionSpec spec{int(int_arg(info, 3, "maxRegions", 1, 1 << 16)), int(int_arg(info, 4, "grid", 1, 1 << 12)),
                         float(number_arg(info, 5, "boxMin")), float(number_arg(info, 6, "boxMax")),
                         bool_arg(info, 7, "flip")};
  if (spec.grid > H || spec.grid > W) throw Napi::RangeError::New(env, "grid: expected at most the image side");
  if (!(spec.box_min > 0 && spec.box_min <= spec.box_max && spec.box_max <= 1))
    throw Napi::RangeError::New(env, "boxMin/boxMax: expected 0 < boxMin ≤ boxMax ≤ 1");
  const uint64_t seed = uint64_t(int_arg(info, 8, "seed", 0, (int64_t(1) << 53) - 1));
  synth::Rng rng = synth::Rng::stream(seed, synth::Stream::Regions, 0);
  std::vector<synth::Region> rs;
  synth::sample_regions(&rs, B, H, W, spec, rng);
  Napi::Int32Array out = Napi::Int32Array::New(env, rs.size() * 7);
  for (size_t i = 0; i < rs.size(); ++i) {
    const int v[7] = {rs[i].image, rs[i].cell, rs[i].y0, rs[i].x0, rs[i].h, rs[i].w, rs[i].flip ? 1 : 0};
    for (int k = 0; k < 7; ++k) out[i * 7 + k] = v[k];
  }
  return out;
}

synth::Region box_arg(const Napi::CallbackInfo& info, size_t i, int H, int W) {
  if (i >= info.Length() || !info[i].IsArray())
    throw Napi::TypeError::New(info.Env(), "box: expected [y0, x0, h, w, flip]");
  Napi::Array a = info[i].As<Napi::Array>();
  if (a.Length() != 5) throw Napi::RangeError::New(info.Env(), "box: expected 5 entries [y0, x0, h, w, flip]");
  int v[5];
  for (uint32_t k = 0; k < 5; ++k) {
    Napi::Value e = a.Get(k);
    if (!e.IsNumber()) throw Napi::TypeError::New(info.Env(), "box: expected numbers");
    v[k] = e.As<Napi::Number>().Int32Value();
  }
  synth::Region r{0, 0, v[0], v[1], v[2], v[3], v[4] != 0};
  if (r.y0 < 0 || r.x0 < 0 || r.h < 1 || r.w < 1 || r.y0 + r.h > H || r.x0 + r.w > W)
    throw Napi::RangeError::New(info.Env(), "box: expected a box inside the " + std::to_string(H) + "×" +
                                                std::to_string(W) + " image");
  return r;
}

// cropResize(image [C,H,W], C, H, W, box, outH, outW) → [C, outH, outW]
Napi::Value CropResizeJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int C = int(int_arg(info, 1, "C", 1, 4096)), H = int(int_arg(info, 2, "H", 1, 1 << 16)),
            W = int(int_arg(info, 3, "W", 1, 1 << 16));
  const synth::Region r = box_arg(info, 4, H, W);
  const int oh = int(int_arg(info, 5, "outH", 1, 1 << 16)), ow = int(int_arg(info, 6, "outW", 1, 1 << 16));
  Napi::Float32Array img = float32_arg(info, 0, "image", int64_t(C) * H * W);
  Napi::Float32Array out = Napi::Float32Array::New(env, size_t(C) * oh * ow);
  synth::crop_resize_forward(out.Data(), img.Data(), C, H, W, r, oh, ow);
  return out;
}

// cropResizeBackward(dout [C,outH,outW], C, H, W, box, outH, outW) → dimage [C,H,W]
Napi::Value CropResizeBackwardJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int C = int(int_arg(info, 1, "C", 1, 4096)), H = int(int_arg(info, 2, "H", 1, 1 << 16)),
            W = int(int_arg(info, 3, "W", 1, 1 << 16));
  const synth::Region r = box_arg(info, 4, H, W);
  const int oh = int(int_arg(info, 5, "outH", 1, 1 << 16)), ow = int(int_arg(info, 6, "outW", 1, 1 << 16));
  Napi::Float32Array dout = float32_arg(info, 0, "dout", int64_t(C) * oh * ow);
  Napi::Float32Array out = Napi::Float32Array::New(env, size_t(C) * H * W);
  for (size_t i = 0; i < out.ElementLength(); ++i) out[i] = 0.0f;
  synth::crop_resize_backward(out.Data(), dout.Data(), C, H, W, r, oh, ow);
  return out;
}

// totalVariation(x [B,C,H,W], B, C, H, W, form) → { loss, grad }
Napi::Value TotalVariationJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int B = int(int_arg(info, 1, "B", 1, kMaxDim)), C = int(int_arg(info, 2, "C", 1, 4096));
  const int H = int(int_arg(info, 3, "H", 1, 1 << 16)), W = int(int_arg(info, 4, "W", 1, 1 << 16));
  const auto form = tv_arg(info, 5);
  Napi::Float32Array x = float32_arg(info, 0, "x", int64_t(B) * C * H * W);
  Napi::Float32Array grad = Napi::Float32Array::New(env, x.ElementLength());
  for (size_t i = 0; i < grad.ElementLength(); ++i) grad[i] = 0.0f;
  const double loss = synth::tv_loss(grad.Data(), x.Data(), B, C, H, W, form, 1.0);
  Napi::Object o = Napi::Object::New(env);
  o.Set("loss", loss);
  o.Set("grad", grad);
  return o;
}

// softLabels(K, classes: Int32Array, logits: Float32Array) → Float32Array [K]
Napi::Value SoftLabelsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int K = int(int_arg(info, 0, "K", 1, kMaxDim));
  if (info.Length() < 2 || !info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw Napi::TypeError::New(env, "classes: expected an Int32Array");
  Napi::Int32Array cls = info[1].As<Napi::Int32Array>();
  Napi::Float32Array z = float32_arg(info, 2, "logits", int64_t(cls.ElementLength()));
  for (size_t i = 0; i < cls.ElementLength(); ++i)
    if (cls[i] < 0 || cls[i] >= K)
      throw Napi::RangeError::New(env, "classes[" + std::to_string(i) + "]: expected a class in [0, " +
                                           std::to_string(K - 1) + "], received " + std::to_string(cls[i]));
  Napi::Float32Array t = Napi::Float32Array::New(env, size_t(K));
  synth::soft_label_row(t.Data(), K, cls.Data(), z.Data(), int(cls.ElementLength()));
  return t;
}

// adamStep(x, g, m, v, t, lr, beta1, beta2, eps): updates x, m, v in place.
Napi::Value AdamStepJs(const Napi::CallbackInfo& info) {
  Napi::Float32Array x = float32_arg(info, 0, "x", -1);
  const int64_t n = int64_t(x.ElementLength());
  Napi::Float32Array g = float32_arg(info, 1, "g", n), m = float32_arg(info, 2, "m", n), v = float32_arg(info, 3, "v", n);
  const int64_t t = int_arg(info, 4, "t", 1, int64_t(1) << 40);
  synth::adam_step(x.Data(), g.Data(), m.Data(), v.Data(), n, t, float(number_arg(info, 5, "lr")),
                   float(number_arg(info, 6, "beta1")), float(number_arg(info, 7, "beta2")), float(number_arg(info, 8, "eps")));
  return info.Env().Undefined();
}

// cosineLr(step, iters, warmup, base) → lr
Napi::Value CosineLrJs(const Napi::CallbackInfo& info) {
  const int iters = int(int_arg(info, 1, "iters", 1, 1 << 30));
  const int step = int(int_arg(info, 0, "step", 0, iters - 1));
  const int warmup = int(int_arg(info, 2, "warmup", 0, iters));
  return Napi::Number::New(info.Env(), synth::cosine_lr(step, iters, warmup, number_arg(info, 3, "base")));
}

// augment(x [B,C,H,W], B, C, H, W, flip, dy, dx) → flip(roll(x)); augmentBackward likewise.
Napi::Value AugmentJs(const Napi::CallbackInfo& info, bool backward) {
  Napi::Env env = info.Env();
  const int B = int(int_arg(info, 1, "B", 1, kMaxDim)), C = int(int_arg(info, 2, "C", 1, 4096));
  const int H = int(int_arg(info, 3, "H", 1, 1 << 16)), W = int(int_arg(info, 4, "W", 1, 1 << 16));
  synth::StepAugment a;
  a.flip = bool_arg(info, 5, "flip");
  a.dy = int(int_arg(info, 6, "dy", -(1 << 16), 1 << 16));
  a.dx = int(int_arg(info, 7, "dx", -(1 << 16), 1 << 16));
  Napi::Float32Array x = float32_arg(info, 0, "x", int64_t(B) * C * H * W);
  Napi::Float32Array out = Napi::Float32Array::New(env, x.ElementLength());
  for (size_t i = 0; i < out.ElementLength(); ++i) out[i] = 0.0f;
  if (backward)
    synth::augment_backward(out.Data(), x.Data(), B, C, H, W, a);
  else
    synth::augment_forward(out.Data(), x.Data(), B, C, H, W, a);
  return out;
}

// jitterPrior(prior [gh,gw], gh, gw, patch, flip, dy, dx) → the prior as the jittered image sees it
Napi::Value JitterPriorJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int gh = int(int_arg(info, 1, "gridH", 1, 4096)), gw = int(int_arg(info, 2, "gridW", 1, 4096));
  const int patch = int(int_arg(info, 3, "patch", 1, 4096));
  synth::StepAugment a;
  a.flip = bool_arg(info, 4, "flip");
  a.dy = int(int_arg(info, 5, "dy", -(1 << 16), 1 << 16));
  a.dx = int(int_arg(info, 6, "dx", -(1 << 16), 1 << 16));
  Napi::Float32Array p = float32_arg(info, 0, "prior", int64_t(gh) * gw);
  Napi::Float32Array out = Napi::Float32Array::New(env, p.ElementLength());
  synth::jitter_prior(out.Data(), p.Data(), gh, gw, patch, a);
  return out;
}

}  // namespace

Napi::Object synth_kernels(Napi::Env env) {
  Napi::Object k = Napi::Object::New(env);
  k.Set("attentionPriors", Napi::Function::New(env, AttentionPriorsJs));
  k.Set("apaLoss", Napi::Function::New(env, ApaLossJs));
  k.Set("apaMaps", Napi::Function::New(env, ApaMapsJs));
  k.Set("patchSimilarityEntropy", Napi::Function::New(env, PatchSimilarityEntropyJs));
  k.Set("sampleRegions", Napi::Function::New(env, SampleRegionsJs));
  k.Set("cropResize", Napi::Function::New(env, CropResizeJs));
  k.Set("cropResizeBackward", Napi::Function::New(env, CropResizeBackwardJs));
  k.Set("totalVariation", Napi::Function::New(env, TotalVariationJs));
  k.Set("softLabels", Napi::Function::New(env, SoftLabelsJs));
  k.Set("adamStep", Napi::Function::New(env, AdamStepJs));
  k.Set("cosineLr", Napi::Function::New(env, CosineLrJs));
  k.Set("augment", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return AugmentJs(i, false); }));
  k.Set("augmentBackward", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return AugmentJs(i, true); }));
  k.Set("jitterPrior", Napi::Function::New(env, JitterPriorJs));
  return k;
}

}  // namespace spdfq::binding
