// Calibration of activation sites from a model's forward passes, for any model that
// reports its sites to an observer (CpuVit, CudaVit, CpuSwin): the observer gathers each
// requested site's values over the passes, then each site gets its quantizer by the
// search of calibrate.h (per tensor, or per channel for RepQ-ViT's reparameterization).
#pragma once

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "../core/act_sites.h"
#include "calibrate.h"

namespace spdfq::quant {

struct CalibRequest {
  Site site;
  int block;  // −1 for the model-level sites; the merge's stage for ReduceIn
  SearchSpec spec;
  bool per_channel;
  std::vector<float> values;  // gathered [rows, cols] row-major across passes
  int64_t cols = 0;
  std::vector<TensorQuant> result;  // one quantizer, or one per column
};

class SiteCalibration {
 public:
  explicit SiteCalibration(std::vector<CalibRequest> requests);
  // The observer to install while the calibration passes run (it refers to this object).
  ActObserver observer();
  // Searches every request's quantizer from its gathered values, which it then frees.
  // Throws E_CONFIG for a site no pass reached, E_NUMERIC for NaN or Inf values.
  void finish();
  const std::vector<CalibRequest>& requests() const { return requests_; }

 private:
  std::vector<CalibRequest> requests_;
  std::map<std::pair<int, int>, size_t> by_site_;  // (site, block) → request
};

}  // namespace spdfq::quant
