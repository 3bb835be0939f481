// Quantizers across the JavaScript boundary, for every model class (VitModel, SwinModel):
// site names, quantizers, range searches, calibration requests and results, activation
// and weight quantizer tables. Parsing validates shapes and ranges and throws TypeError /
// RangeError naming the field; the results are plain data the core trusts.
#pragma once

#include <napi.h>

#include <string>
#include <vector>

#include "../core/act_sites.h"
#include "../core/vit_params.h"  // ParamInfo
#include "../quant/calibrate.h"
#include "../quant/site_calibration.h"
#include "../quant/weight_quant.h"
#include "js_object.h"

namespace spdfq::binding {

// The sites a model has: `blocks` blocks of block sites, `merges` merge sites (a Swin's).
struct SiteSpace {
  int blocks = 0;
  int merges = 0;
};

quant::Site parse_site(Napi::Env env, const std::string& s);
quant::QuantKind parse_kind(const JsObject& o);
quant::TensorQuant parse_quantizer(const JsObject& o);
quant::SearchSpec parse_spec(const JsObject& o);
Napi::Object quantizer_js(Napi::Env env, const quant::TensorQuant& q);
// Per-channel quantizers as { kind, bits, qmin, qmax, scales, zeros }.
Napi::Object channels_js(Napi::Env env, const std::vector<quant::TensorQuant>& qs);
// The error code of a caught exception (spdfq::Error's, else E_NATIVE).
std::string code_of(const std::exception& e);

// specs[{ site, block, kind, bits, symmetric, method, percentiles, perChannel }]
std::vector<quant::CalibRequest> parse_calib_requests(Napi::Env env, const Napi::Value& specs, SiteSpace space);
// One result per request, in order: a quantizer, or per-channel quantizers.
Napi::Array calibration_results_js(Napi::Env env, const std::vector<quant::CalibRequest>& reqs);
// sites[{ site, block, kind, bits, scale, zero, qmin, qmax }]: every site not listed stays in float.
quant::ActQuantState parse_act_quant(Napi::Env env, const Napi::Value& sites, SiteSpace space);
// layers[{ name, kind, bits, qmin, qmax, scales, zeros }]: per-row quantizers of the named
// weight matrices of `params` (the model's parameter layout).
quant::WeightQuantTable parse_weight_quant(Napi::Env env, const Napi::Value& layers, const std::vector<ParamInfo>& params);

}  // namespace spdfq::binding
