// Hotplug and enumeration figures for docs/accelerators.md.
//
//   hotplug_bench [--json] [--events N] [--runs N]
//
// 1. Full enumeration on this machine's real /sys: Discover() with udev on (devicetree, CPU,
//    rules, libudev enumeration, matching) and the libudev enumeration alone; median and p99.
// 2. Event-to-label-diff latency: a NCS2 stick is plugged into and pulled out of a umockdev
//    testbed N times (default 1000 events); each time from the first uevent sent to the
//    label diff computed by the same path `edgefd-labeller --dry-run --watch` takes
//    (HotplugWatcher with its default coalescing -> Discover -> RenderLabels -> diff).
//    Target: p99 under 20 ms. This part needs umockdev's preload library, so the program runs
//    itself again with LD_PRELOAD set (part 1 runs without it, on the real libc paths).
// 3. Discovery after a USB hotplug on a Jetson AGX Orin's live devicetree (issue 12 #11):
//    shared/devicetrees/jetson-agx-orin.dtb written out in the kernel's directory form into the
//    testbed's /sys, the stick plugged and pulled N times (--orin-events, default 200), and on
//    each event the discovery + label rendering the agent runs, timed: `orin_rediscover_kept`
//    with the agent's Discoverer (the tree is kept: a hotplug cannot change it), and
//    `orin_rediscover_fresh` with a fresh Discover() as main did (the whole tree walked again).
//    Target: median of the kept path under 2 ms. Skipped when shared/ is absent.

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "edgefd/common/json.h"
#include "edgefd/discovery/devicetree.h"
#include "edgefd/discovery/discovery.h"
#include "edgefd/discovery/labels.h"
#include "edgefd/discovery/udev.h"
#include "edgefd/testing/dt_directory_form.h"
#include "edgefd/testing/measure.h"
#include "edgefd/testing/paths.h"
#include "edgefd/testing/umockdev_testbed.h"

extern char** environ;

namespace edgefd {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  bool json = false;
  int events = 1000;
  int runs = 200;
  int orin_events = 200;
  bool hotplug_child = false;
};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// One line per measurement: a JSON object with `extra`'s fields, or a text row with `note`.
void Print(const Options& opts, const char* what, const testing::LatencyStats& s,
           const Json& extra = {}, const std::string& note = "") {
  if (opts.json) {
    Json line = {{"bench", what},
                 {"n", s.n},
                 {"median_ms", RoundTo(s.median, 3)},
                 {"p99_ms", RoundTo(s.p99, 3)},
                 {"max_ms", RoundTo(s.max, 3)}};
    if (extra.is_object()) line.update(extra);
    std::printf("%s\n", DumpJson(line).c_str());
  } else {
    std::printf("%-28s n=%-5zu median %8.3f ms  p99 %8.3f ms  max %8.3f ms  %s\n", what, s.n,
                s.median, s.p99, s.max, note.c_str());
  }
  std::fflush(stdout);
}

int RealSys(const Options& opts) {
  DiscoveryOptions discovery;
  discovery.udev = true;
  auto rules = LoadRules({});
  if (!rules) return 1;
  std::vector<std::string> subsystems = UdevSubsystems(*rules);
  std::vector<double> full, enumerate;
  size_t devices = 0;
  for (int i = 0; i < opts.runs; ++i) {
    Clock::time_point t0 = Clock::now();
    auto report = Discover(discovery);
    Labels labels = report ? RenderLabels(report->inventory) : Labels{};
    Clock::time_point t1 = Clock::now();
    auto records = EnumerateUdev(subsystems);
    Clock::time_point t2 = Clock::now();
    if (!report || !records) return 1;
    full.push_back(Ms(t1 - t0));
    enumerate.push_back(Ms(t2 - t1));
    devices = records->size();
  }
  const Json extra = {{"udev_devices", devices}};
  const std::string note = std::to_string(devices) + " udev devices";
  Print(opts, "discover_real_sys", testing::Summarise(full), extra, note);
  Print(opts, "udev_enumerate_real_sys", testing::Summarise(enumerate), extra, note);
  return 0;
}

int Hotplug(const Options& opts) {
  testing::Testbed tb;
  if (!tb.Plug("host.umockdev")) return 1;
  DiscoveryOptions discovery;
  discovery.root = tb.Root();
  discovery.udev = true;

  std::mutex mu;
  std::condition_variable cv;
  int diffs = 0;
  Clock::time_point diff_at;
  Labels labels;
  if (auto report = Discover(discovery)) labels = RenderLabels(report->inventory);

  WatchOptions watch;  // the labeller's defaults
  auto rules = LoadRules({});
  if (!rules) return 1;
  watch.subsystems = UdevSubsystems(*rules);
  HotplugWatcher watcher(watch);
  std::vector<double> rescan_ms;  // the Discover + render part of each change
  auto started = watcher.Start([&] {
    Clock::time_point r0 = Clock::now();
    auto report = Discover(discovery);
    if (!report) return;
    Labels now = RenderLabels(report->inventory);
    size_t changed = 0;
    for (const auto& [k, v] : now) changed += labels.count(k) == 0 || labels.at(k) != v;
    for (const auto& [k, v] : labels) changed += now.count(k) == 0;
    labels = std::move(now);
    std::lock_guard lock(mu);
    rescan_ms.push_back(Ms(Clock::now() - r0));
    if (changed == 0) return;
    ++diffs;
    diff_at = Clock::now();
    cv.notify_all();
  });
  if (!started || watcher.mode() != "udev monitor") {
    std::fprintf(stderr, "hotplug_bench: udev monitor did not start: %s\n",
                 watcher.warning().c_str());
    return 1;
  }

  const std::string stick = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-3";
  std::vector<double> latency, plug, unplug;
  int timeouts = 0;
  for (int i = 0; i < opts.events; ++i) {
    int before;
    {
      std::lock_guard lock(mu);
      before = diffs;
    }
    Clock::time_point t0;
    if (i % 2 == 0) {
      // Plugging in: umockdev writes each device and sends its uevent; the clock starts
      // before the first is written.
      t0 = Clock::now();
      if (!tb.Plug("coral-usb-runtime.umockdev")) return 1;
    } else {
      tb.Unplug(stick, [&] { t0 = Clock::now(); });
    }
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(5), [&] { return diffs > before; })) {
      ++timeouts;
      continue;
    }
    latency.push_back(Ms(diff_at - t0));
    (i % 2 == 0 ? plug : unplug).push_back(latency.back());
  }
  watcher.Stop();
  Print(opts, "event_to_label_diff", testing::Summarise(latency),
        {{"timeouts", timeouts}, {"target_p99_ms", 20}},
        std::to_string(timeouts) + " timeouts, target p99 < 20 ms");
  Print(opts, "event_to_label_diff_plug", testing::Summarise(plug));
  Print(opts, "event_to_label_diff_unplug", testing::Summarise(unplug));
  Print(opts, "rediscover_in_testbed", testing::Summarise(rescan_ms), {}, "(part of the above)");
  return timeouts == 0 ? 0 : 1;
}

// Part 3: discovery after each USB event over a Jetson AGX Orin live tree, kept and fresh.
int HotplugOnOrinTree(const Options& opts) {
  const std::filesystem::path blob = testing::SharedDevicetrees() / "jetson-agx-orin.dtb";
  if (!std::filesystem::exists(blob)) {
    std::fprintf(stderr, "hotplug_bench: %s absent; Orin part skipped\n", blob.c_str());
    return 0;
  }
  auto tree = ReadDeviceTreeBlobFile(blob);
  if (!tree) return 1;
  testing::Testbed tb;
  if (!tb.Plug("host.umockdev")) return 1;
  testing::WriteDirectoryForm(*tree,
                              std::filesystem::path(tb.Root()) / "sys/firmware/devicetree/base");
  DiscoveryOptions discovery;
  discovery.root = tb.Root();
  discovery.udev = true;
  Discoverer kept(discovery);
  if (!kept.Run()) return 1;

  std::mutex mu;
  std::condition_variable cv;
  int events = 0;
  std::vector<double> kept_ms, fresh_ms;
  size_t labels = 0, accel = 0;
  WatchOptions watch;
  auto rules = LoadRules({});
  if (!rules) return 1;
  watch.subsystems = UdevSubsystems(*rules);
  HotplugWatcher watcher(watch);
  auto started = watcher.Start([&] {
    Clock::time_point t0 = Clock::now();
    auto report = kept.Run();
    Labels now = report ? RenderLabels(report->inventory) : Labels{};
    Clock::time_point t1 = Clock::now();
    auto fresh = Discover(discovery);
    Labels again = fresh ? RenderLabels(fresh->inventory) : Labels{};
    Clock::time_point t2 = Clock::now();
    std::lock_guard lock(mu);
    if (!report || !fresh || now != again) {
      std::fprintf(stderr, "hotplug_bench: the kept and fresh discoveries disagree\n");
      std::abort();
    }
    kept_ms.push_back(Ms(t1 - t0));
    fresh_ms.push_back(Ms(t2 - t1));
    labels = now.size();
    accel = now.count("edgefd.io/accel.edgetpu");
    ++events;
    cv.notify_all();
  });
  if (!started) return 1;
  const std::string stick = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-3";
  int timeouts = 0;
  for (int i = 0; i < opts.orin_events; ++i) {
    int before;
    {
      std::lock_guard lock(mu);
      before = events;
    }
    if (i % 2 == 0) {
      if (!tb.Plug("coral-usb-runtime.umockdev")) return 1;
    } else {
      tb.Unplug(stick, [] {});
    }
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(5), [&] { return events > before; })) ++timeouts;
  }
  watcher.Stop();
  const Json extra = {
      {"labels", labels}, {"devicetree_reads", kept.devicetree_reads()}, {"target_median_ms", 2}};
  Print(opts, "orin_rediscover_kept", testing::Summarise(kept_ms), extra,
        std::to_string(kept.devicetree_reads()) + " tree read(s), target median < 2 ms");
  Print(opts, "orin_rediscover_fresh", testing::Summarise(fresh_ms), {{"labels", labels}},
        "the whole tree walked again (main before issue 12 #11)");
  (void)accel;
  return timeouts == 0 ? 0 : 1;
}

// Runs this program again with umockdev's preload library for the hotplug part.
int RunHotplugChild(int argc, char** argv) {
  std::string preload = testing::UmockdevPreload();
  if (const char* old = getenv("LD_PRELOAD"); old != nullptr && *old != '\0')
    preload += std::string(":") + old;
  setenv("LD_PRELOAD", preload.c_str(), 1);
  std::vector<char*> args(argv, argv + argc);
  std::string flag = "--hotplug-child";
  args.push_back(flag.data());
  args.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, args.data(), environ) != 0) return 1;
  unsetenv("LD_PRELOAD");
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

}  // namespace
}  // namespace edgefd

int main(int argc, char** argv) {
  edgefd::Options opts;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json") {
      opts.json = true;
    } else if (a == "--events" && i + 1 < argc) {
      opts.events = std::atoi(argv[++i]);
    } else if (a == "--runs" && i + 1 < argc) {
      opts.runs = std::atoi(argv[++i]);
    } else if (a == "--orin-events" && i + 1 < argc) {
      opts.orin_events = std::atoi(argv[++i]);
    } else if (a == "--hotplug-child") {
      opts.hotplug_child = true;
    } else {
      std::fprintf(stderr,
                   "usage: hotplug_bench [--json] [--events N] [--runs N] [--orin-events N]\n");
      return 2;
    }
  }
  if (opts.hotplug_child) {
    int rc = opts.events > 0 ? edgefd::Hotplug(opts) : 0;
    return rc != 0 ? rc : edgefd::HotplugOnOrinTree(opts);
  }
  int rc = edgefd::RealSys(opts);
  if (rc != 0) return rc;
  return edgefd::RunHotplugChild(argc, argv);
}
