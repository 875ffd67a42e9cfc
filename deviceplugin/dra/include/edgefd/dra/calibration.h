#pragma once

// --calibration FILE: the measured speed of each core class (`edgefd-pipeline calibrate`'s
// output, the file the labeller's --calibration reads) as attributes of the pool's CPU devices.

#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "edgefd/discovery/calibration.h"
#include "edgefd/dra/slices.h"

namespace edgefd::dra {

/// The attribute names. `mflops` is an int (the API's attributes are int, bool, string or
/// version; a quantity exists only as a capacity, which is consumed by claims), in MFLOP/s so
/// that an int keeps three digits of a small core's figure, and CEL compares it as a number:
/// `device.attributes["edgefd.io"].mflops >= 5000`.
inline constexpr char kMflopsAttribute[] = "mflops";
inline constexpr char kCalibrationModelAttribute[] = "calibrationModel";

/// On each CPU device (kind "cpu") whose coreClass the calibration measured: `mflops`, the
/// MFLOP/s of one core of the class (the class's figure at the most threads measured, divided
/// by that thread count, rounded), and `calibrationModel`, the model it was measured on.
/// Other devices are left as they are.
void AddCalibrationAttributes(const CalibrationSummary& calibration,
                              std::vector<SliceDevice>& devices);

/// The calibration file, read again at every call of Read (the labeller re-reads it at every
/// reconcile too), so a replaced file is published at the next sync. Thread-safe.
class CalibrationFile {
 public:
  explicit CalibrationFile(std::filesystem::path file) : file_(std::move(file)) {}

  const std::filesystem::path& path() const { return file_; }
  /// The file's summary, or nullopt when it cannot be read or is not a calibration: then the
  /// error (which names the file) is logged, once until the file reads well again or says
  /// something else, and no device gets the attributes.
  std::optional<CalibrationSummary> Read();
  /// The last Read's error; empty after a good read.
  std::string LastError() const;

 private:
  const std::filesystem::path file_;
  mutable std::mutex mu_;
  std::string last_error_;
  bool read_once_ = false;
};

}  // namespace edgefd::dra
