#pragma once

// Publishing a node's measured speed (DESIGN.md, "Runtime contract", Planner): the labels the
// agent adds from a calibration file that `edgefd-pipeline calibrate` wrote on this node
// (`edgefd-labeller --calibration FILE`), so `edgefd-pipeline plan --from-cluster` or a user
// reads measured GFLOP/s instead of guessing from clocks.

#include <filesystem>

#include "edgefd/common/result.h"
#include "edgefd/discovery/inventory.h"

namespace edgefd {

/// `edgefd.io/cpu.<class>.gflops` per core class of the calibration (the whole class at the
/// most threads measured, one decimal) and `edgefd.io/cpu.gflops-model` (the model it was
/// measured on). An Error naming the file when it cannot be read or is not a calibration.
Result<Labels> CalibrationLabels(const std::filesystem::path& file);

}  // namespace edgefd
