#include "edgefd/labels.h"

namespace edgefd {

// Accelerator and camera labels (DESIGN.md label contract point 4); see issue 4.
void AddDeviceLabels(const Inventory& /*inventory*/, Labels& /*labels*/) {}

}  // namespace edgefd
