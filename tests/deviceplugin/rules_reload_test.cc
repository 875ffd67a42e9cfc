// The device plugin follows its rules files: a ConfigMap update (the kubelet's `..data` swap)
// rediscovers, so the registry, and with it ListAndWatch and the sockets, carries the new
// rule's resource; a broken version keeps the resources of the rules in force.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "edgefd/deviceplugin/feed.h"
#include "edgefd/deviceplugin/flags.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/paths.h"

namespace edgefd::deviceplugin {
namespace {

const char kTegraRules[] =
    "rules:\n  - name: tegra-gpu\n    match:\n      - compatible: [\"nvidia,gm20b\"]\n";
const char kMaxwellRules[] =
    "rules:\n  - name: maxwell-gpu\n    match:\n      - compatible: [\"nvidia,gm20b\"]\n";

// Whether `resource` is served with a device present.
bool Serves(const InventoryRegistry& registry, const std::string& resource) {
  auto snapshot = registry.Snapshot(resource);
  if (!snapshot) return false;
  for (const PluginDevice& d : snapshot->devices) {
    if (d.present) return true;
  }
  return false;
}

TEST(DevicePluginRulesReload, AConfigMapUpdateChangesTheResourcesAndABrokenOneKeepsThem) {
  testing::TempDir dir;
  testing::ProjectedVolume volume(dir.path() / "rules");
  volume.Publish({{"rules.yaml", kTegraRules}});
  DevicePluginFlags flags;
  flags.discovery.discovery.root = testing::TestdataDir() / "roots/jetson-nano-blog";
  flags.discovery.discovery.udev = false;
  flags.discovery.discovery.rule_files = {volume.path() / "rules.yaml"};
  std::mutex mu;
  std::condition_variable cv;
  // What the binaries would post as Events: here, a wake-up (a refused reload changes no
  // resource, so the registry's listener does not fire for it).
  RulesReload reload(flags.discovery.discovery.rule_files,
                     [&](std::string_view, const std::string&, bool) {
                       std::lock_guard lock(mu);
                       cv.notify_all();
                     });
  InventoryRegistry registry;
  int listener = registry.AddListener([&](const std::string&) {
    std::lock_guard lock(mu);
    cv.notify_all();
  });
  auto wait_for = [&](auto pred) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), pred);
  };
  // Wired as edgefd-deviceplugin wires it (cli.cc Serve).
  std::unique_ptr<ChangeSource> rules = MakeRulesWatcher(flags.discovery.discovery);
  ASSERT_NE(rules, nullptr);
  InventoryFeed feed(registry, MakeDiscover(flags, &reload), *rules);
  ASSERT_TRUE(feed.Start().ok());
  EXPECT_TRUE(Serves(registry, "edgefd.io/tegra-gpu"));

  volume.Publish({{"rules.yaml", kMaxwellRules}});
  EXPECT_TRUE(wait_for([&] { return Serves(registry, "edgefd.io/maxwell-gpu"); }));
  // The old resource's device left the inventory: listed, not present (so capacity drops).
  EXPECT_FALSE(Serves(registry, "edgefd.io/tegra-gpu"));
  EXPECT_EQ(reload.last().generation, 2u);

  // A broken version: the resources stay, the reload is refused and said so.
  volume.Publish({{"rules.yaml", "rules:\n  - name: maxwell-gpu\n    matchs: {}\n"}});
  EXPECT_TRUE(wait_for([&] { return reload.last().rejected == 1; }));
  EXPECT_TRUE(Serves(registry, "edgefd.io/maxwell-gpu"));
  EXPECT_NE(reload.last().error.find("unknown key 'matchs'"), std::string::npos)
      << reload.last().error;
  feed.Stop();
  registry.RemoveListener(listener);
}

}  // namespace
}  // namespace edgefd::deviceplugin
