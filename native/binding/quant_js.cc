// Quantizers across the JavaScript boundary (quant_js.h).
#include "quant_js.h"

#include <cstring>

#include "../core/errors.h"
#include "tensor_args.h"

namespace spdfq::binding {

using quant::QuantKind;
using quant::Site;
using quant::TensorQuant;

quant::Site parse_site(Napi::Env env, const std::string& s) {
  for (int i = 0; i < int(Site::Count); ++i)
    if (s == quant::site_name(Site(i))) return Site(i);
  throw Napi::RangeError::New(env, "site: unknown activation site '" + s + "'");
}

quant::QuantKind parse_kind(const JsObject& o) {
  return o.choice<QuantKind>("kind", {{"uniform", QuantKind::Uniform}, {"log2", QuantKind::Log2}, {"none", QuantKind::None}});
}

namespace {

// A site's block (its merge's stage for reduce_in), checked against the model's sites; −1
// for the model-level sites (patch_in, head_in), whose block is ignored.
int site_block(Napi::Env env, const JsObject& o, Site s, const std::string& label, SiteSpace space) {
  if (quant::is_block_site(s) || quant::is_merge_site(s)) {
    const bool merge = quant::is_merge_site(s);
    const int count = merge ? space.merges : space.blocks;
    const int block = o.has("block") ? o.integer("block") : -1;
    if (count == 0) throw Napi::RangeError::New(env, label + ".site: this model has no '" + quant::site_name(s) + "' sites");
    if (block < 0 || block >= count)
      throw Napi::RangeError::New(env, label + ".block: expected " + (merge ? "a merge index" : "a block index") +
                                           " in [0, " + std::to_string(count - 1) + "], received " + std::to_string(block));
    return block;
  }
  return -1;
}

}  // namespace

quant::TensorQuant parse_quantizer(const JsObject& o) {
  TensorQuant q;
  q.kind = parse_kind(o);
  q.bits = o.integer("bits");
  q.scale = float(o.number("scale"));
  q.zero = float(o.number("zero"));
  q.qmin = float(o.number("qmin"));
  q.qmax = float(o.number("qmax"));
  if (q.kind != QuantKind::None && !(q.scale > 0.0f))
    throw Napi::RangeError::New(o.object().Env(), "scale: expected a positive number, received " + std::to_string(q.scale));
  return q;
}

quant::SearchSpec parse_spec(const JsObject& o) {
  quant::SearchSpec s;
  s.kind = parse_kind(o);
  s.bits = o.integer("bits");
  s.symmetric = o.boolean("symmetric");
  s.method = o.choice<quant::RangeMethod>("method", {{"minmax", quant::RangeMethod::MinMax}, {"percentile", quant::RangeMethod::PercentileMse}});
  s.percentiles = o.numbers<double>("percentiles");
  return s;
}

Napi::Object quantizer_js(Napi::Env env, const TensorQuant& q) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("kind", q.kind == QuantKind::Uniform ? "uniform" : q.kind == QuantKind::Log2 ? "log2" : "none");
  o.Set("bits", q.bits);
  o.Set("scale", q.scale);
  o.Set("zero", q.zero);
  o.Set("qmin", q.qmin);
  o.Set("qmax", q.qmax);
  return o;
}

// Per-channel quantizers as { kind, bits, qmin, qmax, scales, zeros }.
Napi::Object channels_js(Napi::Env env, const std::vector<TensorQuant>& qs) {
  Napi::Object o = quantizer_js(env, qs.empty() ? TensorQuant{} : qs[0]);
  Napi::Float32Array scales = Napi::Float32Array::New(env, qs.size());
  Napi::Float32Array zeros = Napi::Float32Array::New(env, qs.size());
  for (size_t i = 0; i < qs.size(); ++i) {
    scales[i] = qs[i].scale;
    zeros[i] = qs[i].zero;
  }
  o.Delete("scale");
  o.Delete("zero");
  o.Set("scales", scales);
  o.Set("zeros", zeros);
  return o;
}

std::string code_of(const std::exception& e) {
  if (auto* se = dynamic_cast<const spdfq::Error*>(&e)) return se->code();
  return "E_NATIVE";
}

std::vector<quant::CalibRequest> parse_calib_requests(Napi::Env env, const Napi::Value& specs, SiteSpace space) {
  if (!specs.IsArray()) throw Napi::TypeError::New(env, "specs: expected an array");
  Napi::Array a = specs.As<Napi::Array>();
  std::vector<quant::CalibRequest> reqs;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    const std::string label = "specs[" + std::to_string(i) + "]";
    const JsObject o(a.Get(i), label);
    quant::CalibRequest r;
    r.site = parse_site(env, o.string("site"));
    r.block = site_block(env, o, r.site, label, space);
    r.spec = parse_spec(o);
    r.per_channel = o.boolean("perChannel");
    reqs.push_back(std::move(r));
  }
  return reqs;
}

Napi::Array calibration_results_js(Napi::Env env, const std::vector<quant::CalibRequest>& reqs) {
  Napi::Array out = Napi::Array::New(env, reqs.size());
  for (size_t i = 0; i < reqs.size(); ++i)
    out.Set(uint32_t(i), reqs[i].per_channel ? channels_js(env, reqs[i].result) : quantizer_js(env, reqs[i].result[0]));
  return out;
}

quant::ActQuantState parse_act_quant(Napi::Env env, const Napi::Value& sites, SiteSpace space) {
  if (!sites.IsArray()) throw Napi::TypeError::New(env, "sites: expected an array or null");
  quant::ActQuantState st;
  st.blocks.assign(size_t(space.blocks) * quant::kBlockSites, TensorQuant{});
  st.merges.assign(size_t(space.merges), TensorQuant{});
  Napi::Array a = sites.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    const std::string label = "sites[" + std::to_string(i) + "]";
    const JsObject o(a.Get(i), label);
    const Site s = parse_site(env, o.string("site"));
    st.at(s, site_block(env, o, s, label, space)) = parse_quantizer(o);
  }
  return st;
}

quant::WeightQuantTable parse_weight_quant(Napi::Env env, const Napi::Value& layers, const std::vector<ParamInfo>& params) {
  if (!layers.IsArray()) throw Napi::TypeError::New(env, "layers: expected an array or null");
  quant::WeightQuantTable table;
  Napi::Array a = layers.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    const JsObject o(a.Get(i), "layers[" + std::to_string(i) + "]");
    const std::string name = o.string("name");
    const ParamInfo* pi = nullptr;
    for (const auto& p : params)
      if (p.name == name) pi = &p;
    if (!pi || pi->shape.size() < 2) throw Napi::RangeError::New(env, "layers[" + std::to_string(i) + "].name: '" + name + "' is not a weight matrix of this model");
    quant::WeightQuant w;
    w.name = name;
    w.offset = pi->offset;
    w.rows = pi->shape[0];
    w.cols = pi->size / pi->shape[0];
    TensorQuant base;  // kind, bits and grid shared by every row
    base.kind = parse_kind(o);
    base.bits = o.integer("bits");
    base.qmin = float(o.number("qmin"));
    base.qmax = float(o.number("qmax"));
    Napi::Value sv = o.get("scales"), zv = o.get("zeros");
    if (!sv.IsTypedArray() || !zv.IsTypedArray()) throw Napi::TypeError::New(env, "layers[].scales/zeros: expected Float32Arrays");
    Napi::Float32Array scales = sv.As<Napi::Float32Array>(), zeros = zv.As<Napi::Float32Array>();
    if (int64_t(scales.ElementLength()) != w.rows || int64_t(zeros.ElementLength()) != w.rows)
      throw Napi::RangeError::New(env, "layers['" + name + "']: expected " + std::to_string(w.rows) + " scales and zeros, received " + std::to_string(scales.ElementLength()));
    for (int64_t r = 0; r < w.rows; ++r) {
      TensorQuant q = base;
      q.scale = scales[size_t(r)];
      q.zero = zeros[size_t(r)];
      if (!(q.scale > 0.0f)) throw Napi::RangeError::New(env, "layers['" + name + "'].scales[" + std::to_string(r) + "]: expected a positive scale");
      w.channels.push_back(q);
    }
    table.push_back(std::move(w));
  }
  return table;
}

}  // namespace spdfq::binding
