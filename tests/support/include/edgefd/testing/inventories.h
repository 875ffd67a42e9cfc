#pragma once

// Inventories for the device plugin's and the DRA plugin's tests and benches (header-only;
// needs edgefd_discovery).

#include <string>

#include "edgefd/discovery/inventory.h"

namespace edgefd::testing {

// The resource names these inventories advertise.
inline constexpr const char* kNcs = "edgefd.io/movidius-ncs";
inline constexpr const char* kBig = "edgefd.io/big-cpu";
inline constexpr const char* kLittle = "edgefd.io/little-cpu";

/// An RK3399-like node: cores 0-3 little (cluster 0), 4-5 big (cluster 1), NUMA node 0,
/// plus `sticks` Movidius sticks (IDs "1-1.1", "1-1.2", ...) and a camera that is no resource.
inline Inventory BigLittleInventory(int sticks) {
  Inventory inv;
  for (int i = 0; i < 6; ++i) {
    CpuCore c;
    c.id = i;
    c.cluster = i < 4 ? 0 : 1;
    c.numa_node = 0;
    c.model = i < 4 ? "cortex-a53" : "cortex-a72";
    inv.cpu.cores.push_back(c);
  }
  inv.cpu.classes.push_back({"big", "cortex-a72", {4, 5}, 1800, 1024});
  inv.cpu.classes.push_back({"little", "cortex-a53", {0, 1, 2, 3}, 1416, 485});
  for (int i = 1; i <= sticks; ++i) {
    Device d;
    d.rule = "movidius-ncs";
    d.id = "1-1." + std::to_string(i);
    d.subsystem = "usb";
    d.vendor_id = "03e7";
    d.product_id = "2485";
    d.devnodes = {"/dev/bus/usb/001/00" + std::to_string(i + 1)};
    d.numa_node = 0;
    d.resource = true;
    inv.devices.push_back(d);
  }
  Device cam;
  cam.rule = "camera";
  cam.id = "1-2";
  cam.devnodes = {"/dev/video0"};
  cam.resource = false;
  inv.devices.push_back(cam);
  return inv;
}

/// BigLittleInventory(sticks) with what DRA publishes filled in: core
/// capacities and maximum frequencies, the sticks' serial numbers and driver, and device
/// nodes that exist (/dev/null, so CDI specs name a real node).
inline Inventory DraInventory(int sticks) {
  Inventory inv = BigLittleInventory(sticks);
  for (CpuCore& c : inv.cpu.cores) {
    c.capacity = c.id < 4 ? 485 : 1024;
    c.max_mhz = c.id < 4 ? 1416 : 1800;
  }
  for (Device& d : inv.devices) {
    if (d.rule != "movidius-ncs") continue;
    d.serial = "NCS" + d.id;
    d.driver = "usb";
    d.devnodes = {"/dev/null"};
  }
  return inv;
}

}  // namespace edgefd::testing
