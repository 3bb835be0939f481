#include "site_calibration.h"

#include <cmath>
#include <string>

#include "../core/errors.h"

namespace spdfq::quant {

SiteCalibration::SiteCalibration(std::vector<CalibRequest> requests) : requests_(std::move(requests)) {
  for (size_t i = 0; i < requests_.size(); ++i) by_site_[{int(requests_[i].site), requests_[i].block}] = i;
}

ActObserver SiteCalibration::observer() {
  return [this](const SiteView& v) {
    auto it = by_site_.find({int(v.site), v.block});
    if (it == by_site_.end()) return;
    CalibRequest& r = requests_[it->second];
    r.cols = v.cols;
    for (int64_t row = 0; row < v.rows; ++row)
      r.values.insert(r.values.end(), v.data + row * v.ld, v.data + row * v.ld + v.cols);
  };
}

void SiteCalibration::finish() {
  for (auto& r : requests_) {
    const std::string where = std::string("activation site '") + site_name(r.site) + "'" +
                              (r.block >= 0 ? (is_merge_site(r.site) ? " of merge " : " of block ") + std::to_string(r.block)
                                            : std::string());
    if (r.values.empty()) fail("E_CONFIG", where + " was never reached");
    for (float x : r.values)
      if (!std::isfinite(x))
        fail("E_NUMERIC", where + " holds NaN or Inf on the calibration images (the images are finite, so the model's weights or its arithmetic overflowed)");
    if (r.per_channel)
      r.result = search_per_channel(r.values.data(), int64_t(r.values.size()) / r.cols, r.cols, 1, r.spec);
    else
      r.result = {search_quantizer(std::move(r.values), r.spec)};
    r.values = {};
  }
}

}  // namespace spdfq::quant
