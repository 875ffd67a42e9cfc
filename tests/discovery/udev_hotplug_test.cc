#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <set>
#include <sstream>
#include <string>

#include "edgefd/discovery/discovery.h"
#include "edgefd/discovery/udev.h"
#include "edgefd/testing/udev_testbed.h"

namespace edgefd {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::Testbed;
using namespace std::chrono_literals;

const std::string kUsb = "/sys/devices/pci0000:00/0000:00:14.0/usb1/";

// Counts on_change calls; waits on a condition variable, never sleeps.
class ChangeCounter {
 public:
  std::function<void()> Callback() {
    return [this] {
      std::lock_guard lock(mu_);
      ++count_;
      cv_.notify_all();
    };
  }
  bool WaitFor(int n, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return count_ >= n; });
  }
  int count() {
    std::lock_guard lock(mu_);
    return count_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int count_ = 0;
};

std::vector<std::string> Ids(const Testbed& tb) {
  DiscoveryOptions options;
  options.root = tb.Root();
  options.udev = true;
  auto report = Discover(options);
  std::vector<std::string> out;
  if (!report) return {"error: " + report.error().message};
  for (const Device& d : report->inventory.devices) out.push_back(d.rule + "@" + d.id);
  return out;
}

using UmockdevHotplug = testing::HostTestbedTest;

TEST_F(UmockdevHotplug, MonitorReportsPlugAndUnplugAndTheInventoryFollows) {
  HotplugWatcher watcher(WatchOptions{});
  ChangeCounter changes;
  ASSERT_TRUE(watcher.Start(changes.Callback()));
  EXPECT_EQ(watcher.mode(), "udev monitor");
  EXPECT_EQ(watcher.warning(), "");

  ASSERT_TRUE(tb_->Plug("ncs2-pair.umockdev"));
  ASSERT_TRUE(changes.WaitFor(1));
  EXPECT_THAT(Ids(*tb_), ElementsAre("movidius-ncs@1-1", "movidius-ncs@1-2"));

  int seen = changes.count();
  tb_->Unplug(kUsb + "1-1");
  ASSERT_TRUE(changes.WaitFor(seen + 1));
  EXPECT_THAT(Ids(*tb_), ElementsAre("movidius-ncs@1-2"));
  watcher.Stop();
}

TEST_F(UmockdevHotplug, BurstIsCoalescedIntoOneChange) {
  WatchOptions options;
  options.quiet = 300ms;  // generous, so a slow test machine cannot split the burst
  options.max_delay = 5s;
  HotplugWatcher watcher(options);
  ChangeCounter changes;
  ASSERT_TRUE(watcher.Start(changes.Callback()));
  // The webcam brings five devices: USB device, interface, two video nodes, media node.
  ASSERT_EQ(Testbed::DevicePaths("webcam.umockdev").size(), 5u);
  ASSERT_TRUE(tb_->Plug("webcam.umockdev"));
  ASSERT_TRUE(changes.WaitFor(1));
  // A later, separate event is a second change; the burst before it was exactly one.
  tb_->Unplug(kUsb + "1-4");
  ASSERT_TRUE(changes.WaitFor(2));
  EXPECT_EQ(changes.count(), 2);
  watcher.Stop();
}

TEST_F(UmockdevHotplug, WithoutNetlinkAPeriodicRescanNoticesChanges) {
  WatchOptions options;
  options.netlink = false;
  options.rescan = 20ms;
  HotplugWatcher watcher(options);
  ChangeCounter changes;
  ASSERT_TRUE(watcher.Start(changes.Callback()));
  EXPECT_EQ(watcher.mode(), "rescan every 0.02 s");
  EXPECT_THAT(watcher.warning(), HasSubstr("udev monitor unavailable"));
  // Its uevents go out, but nothing listens: only a rescan can see it.
  ASSERT_TRUE(tb_->Plug("coral-pcie.umockdev"));
  ASSERT_TRUE(changes.WaitFor(1));
  EXPECT_THAT(Ids(*tb_), ElementsAre("edgetpu@0000:01:00.0"));
  watcher.Stop();
}

TEST_F(UmockdevHotplug, RescanZeroMeansNeverRescan) {
  WatchOptions options;
  options.netlink = false;
  options.rescan = 0ms;  // --rescan 0
  HotplugWatcher watcher(options);
  ChangeCounter changes;
  ASSERT_TRUE(watcher.Start(changes.Callback()));
  EXPECT_EQ(watcher.mode(), "no rescan");
  EXPECT_THAT(watcher.warning(), HasSubstr("hardware changes go unnoticed"));
  watcher.Stop();  // returns at once: the watcher thread waits only for Stop
  EXPECT_EQ(changes.count(), 0);
}

TEST_F(UmockdevHotplug, StopIsIdempotentAndNoCallbackRunsAfterIt) {
  HotplugWatcher watcher(WatchOptions{});
  ChangeCounter changes;
  ASSERT_TRUE(watcher.Start(changes.Callback()));
  watcher.Stop();
  watcher.Stop();
  ASSERT_TRUE(tb_->Plug("ncs2-pair.umockdev"));
  EXPECT_EQ(changes.count(), 0);
}

// A rules reload that names a subsystem the watcher did not follow (Vivante's own `galcore`
// class): SetSubsystems swaps the monitor for one with the wider filter, reports a change
// once it listens (the re-scan that finds what came meanwhile), and the class's events
// arrive from then on.
TEST_F(UmockdevHotplug, SetSubsystemsFollowsAClassTheRulesNowName) {
  ASSERT_TRUE(tb_->Plug("virtual-misc.umockdev"));
  WatchOptions options;
  options.subsystems = {"usb", "misc"};
  HotplugWatcher watcher(options);
  ChangeCounter changes;
  ASSERT_TRUE(watcher.Start(changes.Callback()));
  watcher.SetSubsystems({"misc", "usb"});  // the same set: nothing to swap
  watcher.SetSubsystems({"usb", "misc", "galcore"});
  ASSERT_TRUE(changes.WaitFor(1));
  int seen = changes.count();
  tb_->Unplug("/sys/devices/virtual/galcore/galcore");
  ASSERT_TRUE(changes.WaitFor(seen + 1));
  // Narrowed again, the subsystems both filters name keep reporting.
  watcher.SetSubsystems({"usb", "misc"});
  ASSERT_TRUE(changes.WaitFor(seen + 2));
  seen = changes.count();
  tb_->Unplug("/sys/devices/virtual/misc/nvmap");
  ASSERT_TRUE(changes.WaitFor(seen + 1));
  watcher.Stop();
  watcher.SetSubsystems({"usb"});  // stopped: nothing runs, nothing breaks
}

TEST_F(UmockdevHotplug, SetSubsystemsBeforeStartIsWhatStartWatches) {
  ASSERT_TRUE(tb_->Plug("virtual-misc.umockdev"));
  WatchOptions options;
  options.subsystems = {"usb"};
  HotplugWatcher watcher(options);
  watcher.SetSubsystems({"usb", "galcore"});
  ChangeCounter changes;
  ASSERT_TRUE(watcher.Start(changes.Callback()));
  tb_->Unplug("/sys/devices/virtual/galcore/galcore");
  ASSERT_TRUE(changes.WaitFor(1));
  watcher.Stop();
}

TEST_F(UmockdevHotplug, TheRescanFallbackRescansTheNewSubsystemsAtOnce) {
  ASSERT_TRUE(tb_->Plug("virtual-misc.umockdev"));
  WatchOptions options;
  options.netlink = false;
  options.rescan = std::chrono::hours(1);  // only the new subsystems can make it rescan
  options.subsystems = {"usb"};
  HotplugWatcher watcher(options);
  ChangeCounter changes;
  ASSERT_TRUE(watcher.Start(changes.Callback()));
  // The galcore device is new to the fingerprint: a change.
  watcher.SetSubsystems({"usb", "galcore"});
  ASSERT_TRUE(changes.WaitFor(1));
  watcher.Stop();
}

// --- edgefd-labeller --dry-run --watch, as a user runs it ---------------------------------

// Starts the labeller on the testbed and waits until it is watching.
std::unique_ptr<testing::Child> StartWatching(const Testbed& tb,
                                              std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {
      testing::LabellerBin(), "--dry-run", "--watch", "--udev", "--root", tb.Root()};
  args.insert(args.end(), extra.begin(), extra.end());
  auto cli = std::make_unique<testing::Child>(args);
  EXPECT_TRUE(cli->started());
  EXPECT_TRUE(cli->WaitFor([](const std::string&, const std::string& err) {
    return err.find("watching for hardware changes") != std::string::npos;
  })) << cli->err();
  return cli;
}

// Waits until what was printed after `from` ends with the last line of `expected`; returns
// all of it, so callers see any extra lines too.
std::string NextDiff(testing::Child& cli, size_t& from, const std::string& expected) {
  // A diff is one write and its last line comes last; wait for that line.
  std::string last = expected.substr(expected.rfind('\n', expected.size() - 2) + 1);
  cli.WaitFor([&](const std::string& out, const std::string&) {
    return out.size() >= from + last.size() && out.ends_with(last);
  });
  std::string diff = cli.out().substr(std::min(from, cli.out().size()));
  from = cli.out().size();
  return diff;
}

struct PlugCase {
  const char* file;
  std::string unplug;  // the device to pull out again
  std::string plus;    // diff printed on plug
  std::string minus;   // diff printed on unplug
  // Two devices plugged together are two bursts when their events are further apart than
  // the coalescing window (a loaded test machine): the diff may come in two steps.
  std::string split_plus = "";
};

void PrintTo(const PlugCase& c, std::ostream* os) {
  *os << (c.file != nullptr ? c.file : "(host only)");
}

class UmockdevWatchDiff : public UmockdevHotplug, public ::testing::WithParamInterface<PlugCase> {};

TEST_P(UmockdevWatchDiff, PlugAndUnplugPrintExactlyTheChangedLabels) {
  auto cli = StartWatching(*tb_);
  size_t from = cli->out().size();
  ASSERT_TRUE(tb_->Plug(GetParam().file));
  std::string printed = NextDiff(*cli, from, GetParam().plus);
  if (GetParam().split_plus.empty() || printed != GetParam().split_plus) {
    EXPECT_EQ(printed, GetParam().plus) << cli->err();
  }
  tb_->Unplug(GetParam().unplug);
  EXPECT_EQ(NextDiff(*cli, from, GetParam().minus), GetParam().minus);
  EXPECT_EQ(cli->Terminate(), 0);
  EXPECT_THAT(cli->err(), ::testing::Not(HasSubstr("warn")));
}

std::string Plus(const std::string& name, int count) {
  return "+edgefd.io/" + name + "=true\n+edgefd.io/" + name + ".count=" + std::to_string(count) +
         "\n";
}
std::string Minus(const std::string& name) {
  return "-edgefd.io/" + name + "\n-edgefd.io/" + name + ".count\n";
}

INSTANTIATE_TEST_SUITE_P(
    Testbeds, UmockdevWatchDiff,
    ::testing::Values(
        PlugCase{"ncs2-pair.umockdev", kUsb + "1-1", Plus("accel.movidius-ncs", 2),
                 "+edgefd.io/accel.movidius-ncs.count=1\n",
                 Plus("accel.movidius-ncs", 1) + "+edgefd.io/accel.movidius-ncs.count=2\n"},
        PlugCase{"coral-usb-bootloader.umockdev", kUsb + "1-3", Plus("accel.edgetpu", 1),
                 Minus("accel.edgetpu")},
        PlugCase{"coral-pcie.umockdev", "/sys/devices/pci0000:00/0000:01:00.0",
                 Plus("accel.edgetpu", 1), Minus("accel.edgetpu")},
        PlugCase{"hailo8.umockdev", "/sys/devices/pci0000:00/0000:02:00.0/hailo_chardev/hailo0",
                 Plus("accel.hailo", 1), Minus("accel.hailo")},
        PlugCase{"nvidia-dgpu.umockdev", "/sys/devices/pci0000:00/0000:03:00.0",
                 Plus("accel.nvidia-gpu", 1), Minus("accel.nvidia-gpu")},
        PlugCase{"webcam.umockdev", kUsb + "1-4", Plus("camera", 1), Minus("camera")}),
    [](const ::testing::TestParamInfo<PlugCase>& info) {
      return testing::FileParamName(info.param.file);
    });

TEST_F(UmockdevHotplug, WatchKeepsTheCoralWhenItReenumeratesWithANewProductId) {
  ASSERT_TRUE(tb_->Plug("coral-usb-bootloader.umockdev"));
  ASSERT_TRUE(tb_->Plug("ncs2-pair.umockdev"));
  auto cli = StartWatching(*tb_);
  EXPECT_THAT(cli->out(), HasSubstr("edgefd.io/accel.edgetpu.count=1\n"));
  size_t from = cli->out().size();
  tb_->Unplug(kUsb + "1-3");
  ASSERT_TRUE(tb_->Plug("coral-usb-runtime.umockdev"));
  // A later, unrelated change flushes anything the Coral's swap would have printed.
  tb_->Unplug(kUsb + "1-1");
  std::string expected = "+edgefd.io/accel.movidius-ncs.count=1\n";
  std::string printed = NextDiff(*cli, from, expected);
  // Depending on how the events were grouped the Coral may have flapped out and back in,
  // but never as anything but edgetpu, and it ends where it began. Under emulation (qemu) its
  // return can even come in a diff of its own after the NCS's.
  if (printed != expected) {
    const std::string back = Plus("accel.edgetpu", 1);
    if (printed.find(back) == std::string::npos) printed += NextDiff(*cli, from, back);
    auto lines = [](const std::string& text) {
      std::multiset<std::string> out;
      std::istringstream in(text);
      for (std::string line; std::getline(in, line);) out.insert(line);
      return out;
    };
    EXPECT_EQ(lines(printed), lines(Minus("accel.edgetpu") + back + expected)) << printed;
  }
  EXPECT_EQ(cli->Terminate(), 0);
}

TEST_F(UmockdevHotplug, WatchFallsBackToRescanningWhenNetlinkCannotBind) {
  // umockdev's preload binds each emulated uevent socket at $UMOCKDEV_DIR/event<fd>; with
  // those names taken, the labeller's netlink bind fails as it does in a container that
  // forbids netlink sockets, and the real fallback path runs.
  for (int fd = 0; fd < 256; ++fd)
    std::filesystem::create_directory(tb_->Root() + "/event" + std::to_string(fd));
  auto cli = StartWatching(*tb_, {"--rescan", "0.05"});
  EXPECT_THAT(cli->err(), HasSubstr("warn"));
  EXPECT_THAT(cli->err(), HasSubstr("udev monitor unavailable (cannot bind the netlink socket"));
  EXPECT_THAT(cli->err(), HasSubstr("watching for hardware changes (rescan every 0.05 s)"));
  size_t from = cli->out().size();
  ASSERT_TRUE(tb_->Plug("ncs2-pair.umockdev"));  // its uevents find no socket to go to
  // A rescan may catch the testbed half-written (one stick, then two); it ends at two.
  std::string printed = NextDiff(*cli, from, "+edgefd.io/accel.movidius-ncs.count=2\n");
  EXPECT_THAT(printed, HasSubstr("+edgefd.io/accel.movidius-ncs=true\n"));
  EXPECT_THAT(printed, ::testing::EndsWith("+edgefd.io/accel.movidius-ncs.count=2\n"));
  EXPECT_EQ(cli->Terminate(), 0);
}

}  // namespace
}  // namespace edgefd
