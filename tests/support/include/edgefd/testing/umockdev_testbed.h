#pragma once

// A umockdev testbed for the udev tests and the hotplug bench: real libudev in this process
// and its children sees a private /sys, /dev and uevent socket. Needs umockdev's preload
// library in the process (LD_PRELOAD), which ctest and the bench set up.

#include <umockdev.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "edgefd/testing/paths.h"

namespace edgefd::testing {

inline std::string UdevTestdata(const std::string& name) {
  return (TestdataDir() / "udev" / name).string();
}

/// A umockdev testbed. Creating it points UMOCKDEV_DIR (inherited by children) at a fresh
/// temporary root; destroying it removes the root.
class Testbed {
 public:
  Testbed() : tb_(umockdev_testbed_new()) {}
  ~Testbed() { g_object_unref(tb_); }
  Testbed(const Testbed&) = delete;
  Testbed& operator=(const Testbed&) = delete;

  std::string Root() const {
    gchar* dir = umockdev_testbed_get_root_dir(tb_);
    std::string out(dir);
    g_free(dir);
    return out;
  }

  /// Plugs in the devices of a testdata/udev file: umockdev writes each device in file order
  /// (parents first) and sends its "add" uevent right after, as the kernel does. Returns
  /// false (and says why on stderr) when umockdev rejects the file.
  bool Plug(const std::string& file) {
    GError* error = nullptr;
    if (!umockdev_testbed_add_from_file(tb_, UdevTestdata(file).c_str(), &error)) {
      std::fprintf(stderr, "%s: %s\n", file.c_str(),
                   error != nullptr ? error->message : "unknown error");
      g_clear_error(&error);
      return false;
    }
    return true;
  }

  /// Unplugs a device and its children: by the time a udev "remove" event reaches a
  /// listener the kernel has already removed the device from sysfs, so remove it first and
  /// then send the event. umockdev builds events from the device's uevent file, so a stub
  /// holding only that file (linked from no bus or class, so enumeration cannot see it) stands
  /// in while the event is sent.
  /// `before_event` runs just before the event goes out (the bench starts its clock there).
  template <typename BeforeEvent = void (*)()>
  void Unplug(
      const std::string& syspath, BeforeEvent before_event = [] {}) {
    std::filesystem::path dir = Root() + syspath;
    std::ifstream in(dir / "uevent");
    std::stringstream uevent;
    uevent << in.rdbuf();
    std::error_code ec;
    std::filesystem::path subsystem = std::filesystem::read_symlink(dir / "subsystem", ec);
    umockdev_testbed_remove_device(tb_, syspath.c_str());
    PruneDanglingLinks();
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "uevent") << uevent.str();
    std::filesystem::create_directory_symlink(subsystem, dir / "subsystem", ec);
    before_event();
    Uevent(syspath, "remove");
    std::filesystem::remove_all(dir, ec);
  }

  void Uevent(const std::string& syspath, const char* action) {
    umockdev_testbed_uevent(tb_, syspath.c_str(), action);
  }

  /// umockdev removes a device's own class link but leaves its bus link and its children's
  /// links dangling; the kernel removes them all.
  void PruneDanglingLinks() {
    namespace fs = std::filesystem;
    std::error_code ec;
    for (const char* top : {"/sys/bus", "/sys/class"}) {
      for (auto it = fs::recursive_directory_iterator(Root() + top, ec);
           it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) break;
        if (it->is_symlink(ec) && !fs::exists(it->path(), ec)) fs::remove(it->path(), ec);
      }
    }
  }

  /// The sysfs paths ("/sys/devices/...") of the devices in a testdata/udev file, in order.
  static std::vector<std::string> DevicePaths(const std::string& file) {
    std::ifstream in(UdevTestdata(file));
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("P: ", 0) == 0) out.push_back("/sys" + line.substr(3));
    }
    return out;
  }

 private:
  UMockdevTestbed* tb_;
};

}  // namespace edgefd::testing
