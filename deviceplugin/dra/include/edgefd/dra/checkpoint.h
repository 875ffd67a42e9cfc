#pragma once

// The DRA checkpoint's format lives in the device-plugin library, which reads it too (it
// withdraws what prepared claims hold); the DRA driver names its types as its own.
#include "edgefd/deviceplugin/dra_checkpoint.h"

namespace edgefd::dra {

using Checkpoint = deviceplugin::DraCheckpoint;
using deviceplugin::PreparedClaim;
using deviceplugin::PreparedClaims;
using deviceplugin::PreparedDevice;

}  // namespace edgefd::dra
