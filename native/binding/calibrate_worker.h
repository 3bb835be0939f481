// The calibration pass of any model class (VitModelWrap, SwinModelWrap) off the event
// loop: runs the model's forward over the images in chunks with a SiteCalibration's
// observer installed, searches the quantizers, and resolves with them. The wrap provides
// visit_models(f) (f called with each engine model), act_quant_ (the installed
// quantizers, restored afterwards), set_busy and cancel_flag.
#pragma once

#include <napi.h>

#include <algorithm>
#include <string>
#include <vector>

#include "../quant/site_calibration.h"
#include "quant_js.h"
#include "tensor_args.h"

namespace spdfq::binding {

template <class Wrap>
class CalibrateWorker : public Napi::AsyncWorker {
 public:
  CalibrateWorker(Napi::Env env, Wrap* wrap, Napi::Object self, Napi::Float32Array images, int n, int chunk,
                  std::vector<quant::CalibRequest> reqs, bool on_quantized)
      : Napi::AsyncWorker(env, "spdfq:calibrate"),
        deferred_(Napi::Promise::Deferred::New(env)),
        wrap_(wrap),
        images_(images.Data()),
        n_(n),
        chunk_(chunk),
        calib_(std::move(reqs)),
        on_quantized_(on_quantized) {
    self_ = Napi::Persistent(self);
    images_ref_ = Napi::Persistent(static_cast<Napi::Object>(images));
    wrap_->set_busy(true);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

 private:
  void Execute() override {
    try {
      wrap_->visit_models([&](auto& m) { calibrate(m); });
    } catch (const std::exception& e) {
      code_ = code_of(e);
      SetError(e.what());
    }
  }
  // Any model with the quantization hooks (CpuVit, CudaVit, CpuSwin): on CUDA the observer
  // sees each site downloaded to the host.
  template <class Model>
  void calibrate(Model& m) {
    const bool weight_q = m.weight_quant();
    // Calibrate on the full-precision model (every site at once), or on the model as
    // quantized so far (on_quantized: the installed quantizers stay on, so each site sees
    // the quantized model upstream of it); restore the model's quantization state
    // afterwards, also on failure.
    auto restore = [&] {
      m.set_observer(nullptr);
      m.set_act_quant(wrap_->act_quant_.blocks.empty() ? nullptr : &wrap_->act_quant_);
      m.set_weight_quant(weight_q);
    };
    try {
      if (!on_quantized_) {
        m.set_act_quant(nullptr);
        m.set_weight_quant(false);
      }
      m.set_observer(calib_.observer());
      const int64_t img = m.config().image_len();
      for (int s = 0; s < n_; s += chunk_) m.forward(images_ + int64_t(s) * img, std::min(chunk_, n_ - s), wrap_->cancel_flag());
      m.set_observer(nullptr);
      calib_.finish();
    } catch (...) {
      restore();
      throw;
    }
    restore();
  }
  void OnOK() override {
    wrap_->set_busy(false);
    deferred_.Resolve(calibration_results_js(Env(), calib_.requests()));
  }
  void OnError(const Napi::Error& e) override {
    wrap_->set_busy(false);
    deferred_.Reject(coded_error(Env(), code_, e.Message()).Value());
  }

  Napi::Promise::Deferred deferred_;
  Wrap* wrap_;
  const float* images_;
  int n_, chunk_;
  quant::SiteCalibration calib_;
  bool on_quantized_ = false;
  Napi::ObjectReference self_, images_ref_;
  std::string code_ = "E_NATIVE";
};

}  // namespace spdfq::binding
