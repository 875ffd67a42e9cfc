#pragma once

// RAII owners for libudev handles (file descriptors: edgefd/unique_fd.h). Internal: libudev.h
// stays out of the public headers.

#include <libudev.h>

#include <memory>

#include "edgefd/common/unique_fd.h"

namespace edgefd {

template <typename T, T* (*Unref)(T*)>
struct UdevUnref {
  void operator()(T* p) const { Unref(p); }
};

using UdevPtr = std::unique_ptr<udev, UdevUnref<udev, udev_unref>>;
using UdevDevicePtr = std::unique_ptr<udev_device, UdevUnref<udev_device, udev_device_unref>>;
using UdevMonitorPtr = std::unique_ptr<udev_monitor, UdevUnref<udev_monitor, udev_monitor_unref>>;

}  // namespace edgefd
