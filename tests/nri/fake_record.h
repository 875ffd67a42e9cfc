#pragma once

#include <string>

#include "edgefd/nri/record.h"

namespace edgefd::nri {

/// The node's allocation record as a test says it is.
class FakeRecord : public AllocationRecord {
 public:
  Result<HeldCores> Read() override {
    ++reads;
    if (!error.empty()) return Error{error, ErrorCode::kUnavailable};
    return held;
  }
  HeldCores held;
  std::string error;
  int reads = 0;
};

}  // namespace edgefd::nri
