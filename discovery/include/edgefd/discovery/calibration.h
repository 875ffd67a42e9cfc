#pragma once

// Publishing a node's measured speed (DESIGN.md, "Runtime contract", Planner): what the agents
// take from a calibration file that `edgefd-pipeline calibrate` wrote on this node
// (`edgefd-labeller --calibration FILE`: labels; `edgefd-deviceplugin --mode dra --calibration
// FILE`: an attribute of each core device), so `edgefd-pipeline plan --from-cluster` or a user
// reads measured GFLOP/s instead of guessing from clocks.

#include <filesystem>
#include <map>
#include <string>

#include "edgefd/common/result.h"
#include "edgefd/discovery/inventory.h"

namespace edgefd {

/// The part of a calibration the agents publish.
struct CalibrationSummary {
  std::string model;  ///< the model it was measured on ("yolo-tiny"), a valid label value
  /// Per core class ("big", "mid", "little"): the run with the most threads, as a stage given
  /// all the class's cores runs.
  struct Class {
    double gflops = 0;  ///< GFLOP/s of that run, > 0
    int threads = 0;    ///< its thread count, > 0
  };
  std::map<std::string, Class> classes;
};

/// Reads what `edgefd-pipeline calibrate --out FILE` wrote. An Error naming the file when it
/// cannot be read, is not JSON or not a calibration, names a class other than big, mid or
/// little, or gives a thread count or GFLOP/s figure that is not a positive number.
Result<CalibrationSummary> ReadCalibrationSummary(const std::filesystem::path& file);

/// `edgefd.io/cpu.<class>.gflops` per core class (the whole class at the most threads
/// measured, one decimal) and `edgefd.io/cpu.gflops-model` (the model it was measured on).
Labels CalibrationLabels(const CalibrationSummary& summary);

/// ReadCalibrationSummary, then CalibrationLabels.
Result<Labels> CalibrationLabels(const std::filesystem::path& file);

}  // namespace edgefd
