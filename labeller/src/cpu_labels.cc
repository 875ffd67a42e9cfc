#include "edgefd/labels.h"

namespace edgefd {

// CPU labels (DESIGN.md label contract point 3) are rendered here; see issue 3.
void AddCpuLabels(const Inventory& /*inventory*/, Labels& /*labels*/) {}

}  // namespace edgefd
