#include <poll.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

#include "edgefd/common/waker.h"
#include "edgefd/discovery/udev.h"
#include "udev_handles.h"

namespace edgefd {
namespace {

using Clock = std::chrono::steady_clock;

std::string Seconds(std::chrono::milliseconds ms) {
  std::string s = std::to_string(static_cast<double>(ms.count()) / 1000.0);
  s.erase(s.find_last_not_of('0') + 1);
  if (s.back() == '.') s.pop_back();
  return s;
}

// What a rescan compares: which devices exist, with which driver and /dev node.
std::string Fingerprint(const std::vector<std::string>& subsystems) {
  auto records = EnumerateUdev(subsystems);
  if (!records) return "error: " + records.error().message;
  std::vector<std::string> lines;
  for (const UdevRecord& r : *records)
    lines.push_back(r.syspath + '|' + r.driver + '|' + r.devnode);
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const std::string& l : lines) out += l + '\n';
  return out;
}

}  // namespace

struct HotplugWatcher::Impl {
  WatchOptions options;
  UdevPtr udev;
  UdevMonitorPtr monitor;
  Waker stop;
  std::thread thread;
  std::function<void()> on_change;
  std::string mode;
  std::string warning;
  std::string fingerprint;
  std::mutex stop_mutex;

  // Opens the netlink monitor; returns why it cannot ("" on success).
  std::string OpenMonitor() {
    udev.reset(udev_new());
    if (!udev) return std::string("udev_new: ") + std::strerror(errno);
    errno = 0;
    monitor.reset(udev_monitor_new_from_netlink(udev.get(), "udev"));
    if (!monitor) {
      return std::string("cannot open the netlink socket: ") +
             (errno != 0 ? std::strerror(errno) : "unknown error");
    }
    // Kernel-side filtering only works on exact names; with a glob in the rules, take all.
    bool exact =
        std::none_of(options.subsystems.begin(), options.subsystems.end(),
                     [](const std::string& s) { return s.find_first_of("*?[") != s.npos; });
    if (exact) {
      for (const std::string& s : options.subsystems) {
        udev_monitor_filter_add_match_subsystem_devtype(monitor.get(), s.c_str(), nullptr);
      }
    }
    // Room for a burst of a few thousand events (a hub with many devices); needs
    // CAP_NET_ADMIN beyond rmem_max, and overflow is handled anyway, so failure is fine.
    udev_monitor_set_receive_buffer_size(monitor.get(), 4 << 20);
    if (int err = udev_monitor_enable_receiving(monitor.get()); err < 0) {
      monitor.reset();
      return std::string("cannot bind the netlink socket: ") + std::strerror(-err);
    }
    return "";
  }

  // Reads every queued event; returns how many there were. A socket that overflowed lost
  // events, which counts as a change too: the re-discovery that follows catches up.
  int Drain() {
    int n = 0;
    for (;;) {
      errno = 0;
      UdevDevicePtr dev{udev_monitor_receive_device(monitor.get())};
      if (!dev) break;
      ++n;
      spdlog::debug("udev event: {} {}", udev_device_get_action(dev.get()) ?: "?",
                    udev_device_get_syspath(dev.get()) ?: "?");
    }
    if (errno == ENOBUFS) {
      spdlog::warn("udev event queue overflowed; re-discovering");
      ++n;
    }
    return n;
  }

  // Polls the stop fd and optionally the monitor. Returns -1 on stop, 1 when the monitor
  // is readable, 0 on timeout.
  int Wait(std::chrono::milliseconds timeout) {
    pollfd fds[2] = {{stop.fd(), POLLIN, 0},
                     {monitor ? udev_monitor_get_fd(monitor.get()) : -1, POLLIN, 0}};
    int ms = static_cast<int>(std::max<int64_t>(0, timeout.count()));
    int rc = ::poll(fds, monitor ? 2 : 1, timeout.count() < 0 ? -1 : ms);
    if (rc < 0) return errno == EINTR ? 0 : -1;
    if (fds[0].revents != 0) return -1;
    return rc > 0 ? 1 : 0;
  }

  void RunMonitor() {
    for (;;) {
      int w = Wait(std::chrono::milliseconds(-1));
      if (w < 0) return;
      if (w == 0 || Drain() == 0) continue;
      // Coalesce the burst (a USB device brings its interfaces and class devices along).
      Clock::time_point deadline = Clock::now() + options.max_delay;
      for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) break;
        int more = Wait(std::min(left, options.quiet));
        if (more < 0) return;
        if (more == 0 || Drain() == 0) break;
      }
      on_change();
    }
  }

  void RunRescan() {
    if (options.rescan.count() <= 0) {  // --rescan 0: never; wait for Stop
      Wait(std::chrono::milliseconds(-1));
      return;
    }
    for (;;) {
      if (Wait(options.rescan) < 0) return;
      std::string now = Fingerprint(options.subsystems);
      if (now != fingerprint) {
        fingerprint = std::move(now);
        on_change();
      }
    }
  }
};

HotplugWatcher::HotplugWatcher(WatchOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
}

HotplugWatcher::~HotplugWatcher() { Stop(); }

Status HotplugWatcher::Start(std::function<void()> on_change) {
  Impl& im = *impl_;
  if (im.thread.joinable()) return Error{"hotplug watcher already started"};
  if (Status s = im.stop.Open(); !s) return s;
  im.on_change = std::move(on_change);
  std::string why = im.options.netlink ? im.OpenMonitor() : "disabled";
  if (why.empty()) {
    im.mode = "udev monitor";
    im.warning.clear();
    im.thread = std::thread([&im] { im.RunMonitor(); });
  } else {
    im.monitor.reset();
    if (im.options.rescan.count() > 0) {
      im.mode = "rescan every " + Seconds(im.options.rescan) + " s";
      im.warning = "udev monitor unavailable (" + why + "); falling back to a rescan every " +
                   Seconds(im.options.rescan) + " s";
    } else {
      im.mode = "no rescan";
      im.warning = "udev monitor unavailable (" + why +
                   ") and rescans are off (--rescan 0): hardware changes go unnoticed";
    }
    im.fingerprint = Fingerprint(im.options.subsystems);
    im.thread = std::thread([&im] { im.RunRescan(); });
  }
  return Ok{};
}

void HotplugWatcher::Stop() {
  std::lock_guard lock(impl_->stop_mutex);
  if (!impl_->thread.joinable()) return;
  impl_->stop.Wake();
  impl_->thread.join();
  impl_->monitor.reset();
}

std::string HotplugWatcher::mode() const { return impl_->mode; }
std::string HotplugWatcher::warning() const { return impl_->warning; }

}  // namespace edgefd
