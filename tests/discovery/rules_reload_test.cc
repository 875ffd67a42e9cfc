// What every binary says about a rules reload: log lines, Events, metrics; and the change
// sources it watches with.
#include "edgefd/discovery/rules_reload.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "edgefd/testing/manual_change_source.h"

namespace edgefd {
namespace {

using ::testing::HasSubstr;

struct Posted {
  std::string reason;
  std::string message;
  bool warning;
};

RulesStatus Loaded(uint64_t generation, std::string hash) {
  RulesStatus s;
  s.generation = generation;
  s.hash = std::move(hash);
  s.loaded_unix = 1700000000 + static_cast<double>(generation);
  return s;
}

TEST(RulesReload, TellsAReloadAndARejectionOnceEach) {
  std::vector<Posted> events;
  RulesReload reload({"/etc/edgefd/rules/rules.yaml"},
                     [&](std::string_view reason, const std::string& message, bool warning) {
                       events.push_back({std::string(reason), message, warning});
                     });
  reload.Observe(Loaded(1, "aaaa"));
  reload.Observe(Loaded(1, "aaaa"));  // a hardware event: nothing to say
  EXPECT_TRUE(events.empty());

  reload.Observe(Loaded(2, "bbbb"));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].reason, "RulesReloaded");
  EXPECT_FALSE(events[0].warning);
  EXPECT_THAT(events[0].message, HasSubstr("generation 2"));

  RulesStatus broken = Loaded(2, "bbbb");
  broken.rejected = 1;
  broken.error = "/etc/edgefd/rules/rules.yaml:3: rule 'x': unknown key 'matchs'";
  reload.Observe(broken);
  reload.Observe(broken);  // seen again by the next run: told once
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].reason, "RulesRejected");
  EXPECT_TRUE(events[1].warning);
  EXPECT_THAT(events[1].message, HasSubstr("rules.yaml:3: rule 'x': unknown key 'matchs'"));
  EXPECT_THAT(events[1].message, HasSubstr("generation 2"));
}

TEST(RulesReload, MetricsSayWhichRulesAreInForceAndWhetherTheFilesAre) {
  RulesReload reload({"rules.yaml"});
  RulesStatus s = Loaded(3, "0123456789abcdef");
  s.rejected = 2;
  s.error = "rules.yaml: deleted";
  reload.Observe(s);
  PrometheusWriter out;
  reload.Render(out);
  const std::string text = out.text();
  EXPECT_THAT(text, HasSubstr("\nedgefd_rules_generation 3\n"));
  EXPECT_THAT(text, HasSubstr("\nedgefd_rules_reloads_total 2\n"));
  EXPECT_THAT(text, HasSubstr("\nedgefd_rules_reload_errors_total 2\n"));
  EXPECT_THAT(text, HasSubstr("\nedgefd_rules_stale 1\n"));
  EXPECT_THAT(text, HasSubstr("\nedgefd_rules_last_reload_success_timestamp_seconds 1700000003\n"));
  EXPECT_THAT(text, HasSubstr("\nedgefd_rules_info{hash=\"0123456789abcdef\"} 1\n"));
}

TEST(RulesReload, NoRulesFilesNoWatcher) {
  EXPECT_EQ(MakeRulesWatcher(DiscoveryOptions{}), nullptr);
  DiscoveryOptions with;
  with.rule_files = {"/etc/edgefd/rules.yaml"};
  EXPECT_NE(MakeRulesWatcher(with), nullptr);
}

// A ChangeSource that cannot start.
class Broken final : public ChangeSource {
 public:
  Status Start(std::function<void()>) override { return Error{"broken source"}; }
  void Stop() override { ADD_FAILURE() << "stopped without having started"; }
};

TEST(ChangeSources, EachSourceReportsAndOneThatCannotStartIsLeftOut) {
  testing::ManualChangeSource a, b;
  Broken broken;
  ChangeSources all({&a, nullptr, &broken, &b});
  int changes = 0;
  ASSERT_TRUE(all.Start([&] { ++changes; }).ok());
  a.Fire();
  b.Fire();
  EXPECT_EQ(changes, 2);
  all.Stop();
  Broken only;
  ChangeSources none({&only});
  Status started = none.Start([] {});
  ASSERT_FALSE(started.ok());
  EXPECT_THAT(started.error().message, HasSubstr("broken source"));
}

}  // namespace
}  // namespace edgefd
