#include <poll.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
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

// Whether two subsystem lists name the same set.
bool SameSet(std::vector<std::string> a, std::vector<std::string> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  a.erase(std::unique(a.begin(), a.end()), a.end());
  b.erase(std::unique(b.begin(), b.end()), b.end());
  return a == b;
}

// A netlink monitor with its own udev context: libudev objects are not shared between
// threads, and SetSubsystems opens the next monitor on the caller's thread.
struct Monitor {
  UdevPtr udev;
  UdevMonitorPtr monitor;
};

// Opens a monitor receiving the events of `subsystems` (all when empty or when one is a
// glob); returns why it cannot ("" on success).
std::string OpenMonitor(const std::vector<std::string>& subsystems, Monitor& out) {
  out.udev.reset(udev_new());
  if (!out.udev) return std::string("udev_new: ") + std::strerror(errno);
  errno = 0;
  out.monitor.reset(udev_monitor_new_from_netlink(out.udev.get(), "udev"));
  if (!out.monitor) {
    return std::string("cannot open the netlink socket: ") +
           (errno != 0 ? std::strerror(errno) : "unknown error");
  }
  // Kernel-side filtering only works on exact names; with a glob in the rules, take all.
  bool exact = std::none_of(subsystems.begin(), subsystems.end(),
                            [](const std::string& s) { return s.find_first_of("*?[") != s.npos; });
  if (exact) {
    for (const std::string& s : subsystems) {
      udev_monitor_filter_add_match_subsystem_devtype(out.monitor.get(), s.c_str(), nullptr);
    }
  }
  // Room for a burst of a few thousand events (a hub with many devices); needs
  // CAP_NET_ADMIN beyond rmem_max, and overflow is handled anyway, so failure is fine.
  udev_monitor_set_receive_buffer_size(out.monitor.get(), 4 << 20);
  if (int err = udev_monitor_enable_receiving(out.monitor.get()); err < 0) {
    out.monitor.reset();
    return std::string("cannot bind the netlink socket: ") + std::strerror(-err);
  }
  return "";
}

std::string Joined(const std::vector<std::string>& subsystems) {
  std::string out;
  for (const std::string& s : subsystems) out += (out.empty() ? "" : ",") + s;
  return out.empty() ? "all" : out;
}

}  // namespace

struct HotplugWatcher::Impl {
  WatchOptions options;  // subsystems: see `subsystems`
  Monitor current;       // the watcher thread's, once started
  Waker stop;
  Waker swap;  // SetSubsystems left a new monitor in `pending`
  std::thread thread;
  std::function<void()> on_change;
  std::string mode;
  std::string warning;
  std::string fingerprint;
  std::mutex stop_mutex;

  std::mutex mu;                        // guards the three below
  std::vector<std::string> subsystems;  // the filter in force (or wanted, before Start)
  std::optional<Monitor> pending;       // the next monitor, bound, for the thread to take
  bool monitoring = false;              // the netlink monitor's thread runs

  std::vector<std::string> Subsystems() {
    std::lock_guard lock(mu);
    return subsystems;
  }

  // Reads every queued event of `m`; returns how many there were. A socket that overflowed
  // lost events, which counts as a change too: the re-discovery that follows catches up.
  static int Drain(Monitor& m) {
    int n = 0;
    for (;;) {
      errno = 0;
      UdevDevicePtr dev{udev_monitor_receive_device(m.monitor.get())};
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

  static constexpr int kStop = -1, kTimeout = 0, kEvent = 1, kSwap = 2;

  // Polls the stop and swap fds and, when there is one, the monitor.
  int Wait(std::chrono::milliseconds timeout) {
    pollfd fds[3] = {
        {stop.fd(), POLLIN, 0},
        {swap.fd(), POLLIN, 0},
        {current.monitor ? udev_monitor_get_fd(current.monitor.get()) : -1, POLLIN, 0}};
    int ms = static_cast<int>(std::max<int64_t>(0, timeout.count()));
    int rc = ::poll(fds, current.monitor ? 3 : 2, timeout.count() < 0 ? -1 : ms);
    if (rc < 0) return errno == EINTR ? kTimeout : kStop;
    if (fds[0].revents != 0) return kStop;
    if (fds[1].revents != 0) return kSwap;
    return rc > 0 ? kEvent : kTimeout;
  }

  // Takes the monitor SetSubsystems bound. It was receiving before the old one closes, so an
  // event of a subsystem both filters name reaches one of them (or both: a duplicate, which
  // only joins the burst); what the old one still holds is read and dropped, since the caller
  // reports a change (a re-scan) after the swap anyway.
  void TakePending() {
    swap.Drain();
    std::optional<Monitor> next;
    {
      std::lock_guard lock(mu);
      next.swap(pending);
    }
    if (!next) return;
    if (current.monitor) Drain(current);
    current = std::move(*next);
  }

  // Makes the running watcher follow `subsystems`: binds a monitor with the new filter for the
  // thread to take (the rescan just reads them at its next round, woken here). Before Start
  // there is nothing to do: Start opens with them.
  void ApplySubsystems() {
    std::vector<std::string> wanted;
    {
      std::lock_guard lock(mu);
      if (!monitoring) {
        if (swap.valid()) swap.Wake();
        return;
      }
      wanted = subsystems;
    }
    Monitor next;
    if (std::string why = OpenMonitor(wanted, next); !why.empty()) {
      spdlog::warn(
          "udev monitor: cannot follow the subsystems the new rules name ({}): {}; their "
          "devices are found at each re-discovery, their hotplug events only after a restart",
          Joined(wanted), why);
      return;
    }
    spdlog::info("udev monitor: the rules changed, following subsystems {}", Joined(wanted));
    {
      std::lock_guard lock(mu);
      pending = std::move(next);
    }
    swap.Wake();
  }

  void RunMonitor() {
    for (;;) {
      int w = Wait(std::chrono::milliseconds(-1));
      if (w == kStop) return;
      if (w == kSwap) {
        TakePending();
      } else if (w == kTimeout || Drain(current) == 0) {
        continue;
      }
      // Coalesce the burst (a USB device brings its interfaces and class devices along).
      Clock::time_point deadline = Clock::now() + options.max_delay;
      for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) break;
        int more = Wait(std::min(left, options.quiet));
        if (more == kStop) return;
        if (more == kSwap) {
          TakePending();
          continue;
        }
        if (more == kTimeout || Drain(current) == 0) break;
      }
      on_change();
    }
  }

  void RunRescan() {
    if (options.rescan.count() <= 0) {  // --rescan 0: never; wait for Stop
      while (Wait(std::chrono::milliseconds(-1)) != kStop) swap.Drain();
      return;
    }
    for (;;) {
      int w = Wait(options.rescan);
      if (w == kStop) return;
      if (w == kSwap) swap.Drain();  // a rescan with the new subsystems now
      std::string now = Fingerprint(Subsystems());
      if (now != fingerprint) {
        fingerprint = std::move(now);
        on_change();
      }
    }
  }
};

HotplugWatcher::HotplugWatcher(WatchOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->subsystems = std::move(options.subsystems);
  impl_->options = std::move(options);
}

HotplugWatcher::~HotplugWatcher() { Stop(); }

Status HotplugWatcher::Start(std::function<void()> on_change) {
  Impl& im = *impl_;
  if (im.thread.joinable()) return Error{"hotplug watcher already started"};
  if (Status s = im.stop.Open(); !s) return s;
  if (Status s = im.swap.Open(); !s) return s;
  im.on_change = std::move(on_change);
  std::vector<std::string> opened = im.Subsystems();
  std::string why = im.options.netlink ? OpenMonitor(opened, im.current) : "disabled";
  if (why.empty()) {
    im.mode = "udev monitor";
    im.warning.clear();
    im.thread = std::thread([&im] { im.RunMonitor(); });
    {
      std::lock_guard lock(im.mu);
      im.monitoring = true;
    }
    // A SetSubsystems while the monitor opened: the thread takes a monitor with them.
    if (!SameSet(opened, im.Subsystems())) im.ApplySubsystems();
  } else {
    im.current = {};
    if (im.options.rescan.count() > 0) {
      im.mode = "rescan every " + Seconds(im.options.rescan) + " s";
      im.warning = "udev monitor unavailable (" + why + "); falling back to a rescan every " +
                   Seconds(im.options.rescan) + " s";
    } else {
      im.mode = "no rescan";
      im.warning = "udev monitor unavailable (" + why +
                   ") and rescans are off (--rescan 0): hardware changes go unnoticed";
    }
    im.fingerprint = Fingerprint(im.Subsystems());
    im.thread = std::thread([&im] { im.RunRescan(); });
  }
  return Ok{};
}

void HotplugWatcher::Stop() {
  std::lock_guard lock(impl_->stop_mutex);
  if (!impl_->thread.joinable()) return;
  {
    std::lock_guard state(impl_->mu);  // SetSubsystems binds no monitor from now on
    impl_->monitoring = false;
    impl_->pending.reset();
  }
  impl_->stop.Wake();
  impl_->thread.join();
  impl_->current = {};
}

void HotplugWatcher::SetSubsystems(std::vector<std::string> subsystems) {
  {
    std::lock_guard lock(impl_->mu);
    if (SameSet(impl_->subsystems, subsystems)) return;
    impl_->subsystems = std::move(subsystems);
  }
  impl_->ApplySubsystems();
}

std::string HotplugWatcher::mode() const { return impl_->mode; }
std::string HotplugWatcher::warning() const { return impl_->warning; }

}  // namespace edgefd
