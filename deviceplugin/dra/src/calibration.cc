#include "edgefd/dra/calibration.h"

#include <spdlog/spdlog.h>

#include <cmath>

namespace edgefd::dra {

void AddCalibrationAttributes(const CalibrationSummary& calibration,
                              std::vector<SliceDevice>& devices) {
  for (SliceDevice& d : devices) {
    auto kind = d.attributes.find("kind");
    auto cls = d.attributes.find("coreClass");
    if (kind == d.attributes.end() || kind->second != AttributeValue(std::string("cpu")) ||
        cls == d.attributes.end() || !std::holds_alternative<std::string>(cls->second)) {
      continue;
    }
    auto measured = calibration.classes.find(std::get<std::string>(cls->second));
    if (measured == calibration.classes.end()) continue;
    const auto& [gflops, threads] = measured->second;
    d.attributes[kMflopsAttribute] = static_cast<int64_t>(std::llround(gflops * 1000 / threads));
    d.attributes[kCalibrationModelAttribute] = calibration.model;
  }
}

std::optional<CalibrationSummary> CalibrationFile::Read() {
  auto summary = ReadCalibrationSummary(file_);
  std::lock_guard lock(mu_);
  const std::string error = summary ? "" : summary.error().message;
  if (error != last_error_ || !read_once_) {
    if (!summary) {
      spdlog::error("--calibration {}; the cores are published without {} until it is fixed", error,
                    kMflopsAttribute);
    } else {
      spdlog::info("--calibration {}: measured speed of {} core class(es), model {}",
                   file_.string(), summary->classes.size(), summary->model);
    }
  }
  last_error_ = error;
  read_once_ = true;
  if (!summary) return std::nullopt;
  return std::move(*summary);
}

std::string CalibrationFile::LastError() const {
  std::lock_guard lock(mu_);
  return last_error_;
}

}  // namespace edgefd::dra
