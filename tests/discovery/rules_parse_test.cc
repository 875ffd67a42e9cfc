#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "edgefd/discovery/rules.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/paths.h"
#include "edgefd/testing/process.h"
#include "edgefd/testing/udev_testbed.h"

namespace edgefd {
namespace {

using ::testing::HasSubstr;

std::vector<std::string> Names(const std::vector<Rule>& rules) {
  std::vector<std::string> out;
  for (const Rule& r : rules) out.push_back(r.name);
  return out;
}

const Rule* Find(const std::vector<Rule>& rules, const std::string& name) {
  auto it = std::find_if(rules.begin(), rules.end(), [&](const Rule& r) { return r.name == name; });
  return it == rules.end() ? nullptr : &*it;
}

std::string ErrorOf(std::string_view yaml) {
  auto rules = ParseRules(yaml, "site.yaml");
  return rules ? std::string("(parsed)") : rules.error().message;
}

using testing::TempDir;

TEST(DefaultRules, CoverTheDesignList) {
  auto rules = LoadRules({});
  ASSERT_TRUE(rules) << rules.error().message;
  EXPECT_THAT(Names(*rules), ::testing::IsSupersetOf({"movidius-ncs", "edgetpu", "hailo",
                                                      "nvidia-gpu", "jetson-gpu", "mali-gpu",
                                                      "rknpu", "vivante-npu", "camera"}));
  const Rule* ncs = Find(*rules, "movidius-ncs");
  ASSERT_NE(ncs, nullptr);
  ASSERT_EQ(ncs->match.size(), 1u);
  EXPECT_EQ(ncs->match[0].usb,
            (std::vector<HexId>{{"03e7", "2150"}, {"03e7", "2485"}, {"03e7", "f63b"}}));
  EXPECT_TRUE(ncs->resource);
  EXPECT_EQ(ncs->origin, "built-in");
  const Rule* camera = Find(*rules, "camera");
  ASSERT_NE(camera, nullptr);
  EXPECT_EQ(camera->kind, RuleKind::kCamera);
  EXPECT_FALSE(camera->resource);
}

TEST(ParseRules, ReadsEveryKey) {
  auto rules = ParseRules(R"(rules:
  - name: my-fpga
    kind: accelerator
    resource: false
    match:
      - subsystem: [pci]
        pci: "10EE:*"
        pci-class: "0x1200"
        driver: xdma*
        devnode: /dev/xdma*
        property: {ID_PATH: "pci-*"}
      - compatible: "xlnx,*"
        dt-node: fpga
    devnodes: /dev/xdma*
    require-devnodes: false
)",
                          "site.yaml");
  ASSERT_TRUE(rules) << rules.error().message;
  ASSERT_EQ(rules->size(), 1u);
  const Rule& r = rules->front();
  EXPECT_EQ(r.name, "my-fpga");
  EXPECT_FALSE(r.resource);
  EXPECT_FALSE(r.require_devnodes);
  EXPECT_EQ(r.origin, "site.yaml:2");
  ASSERT_EQ(r.match.size(), 2u);
  EXPECT_EQ(r.match[0].pci, (std::vector<HexId>{{"10ee", ""}}));
  EXPECT_EQ(r.match[0].pci_classes, (std::vector<std::string>{"1200"}));
  EXPECT_EQ(r.match[0].properties.at("ID_PATH"), "pci-*");
  EXPECT_TRUE(r.match[1].IsDeviceTree());
  EXPECT_EQ(r.devnodes, (std::vector<std::string>{"/dev/xdma*"}));
}

TEST(ParseRules, UnknownKeyNamesFileLineAndSuggestion) {
  EXPECT_EQ(ErrorOf("rules:\n  - name: x\n    matchs: {usb: \"03e7\"}\n"),
            "site.yaml:3: rule 'x': unknown key 'matchs' \u2014 did you mean 'match'?");
  EXPECT_EQ(ErrorOf("rules:\n  - name: x\n    match:\n      - usbb: \"03e7\"\n"),
            "site.yaml:4: rule 'x': unknown key 'usbb' \u2014 did you mean 'usb'?");
  EXPECT_THAT(ErrorOf("rule:\n  - name: x\n"),
              HasSubstr("site.yaml:1: unknown key 'rule' \u2014 did you mean 'rules'?"));
  EXPECT_THAT(ErrorOf("rules:\n  - name: x\n    colour: red\n    match: {usb: \"03e7\"}\n"),
              HasSubstr("site.yaml:3: rule 'x': unknown key 'colour' (expected one of: name kind"));
}

TEST(ParseRules, WrongTypesNameTheKey) {
  EXPECT_EQ(ErrorOf("rules:\n  - name: x\n    resource: maybe\n    match: {usb: \"03e7\"}\n"),
            "site.yaml:3: rule 'x': 'resource' must be true or false");
  EXPECT_EQ(ErrorOf("rules:\n  - name: x\n    match: {usb: {a: b}}\n"),
            "site.yaml:3: rule 'x': 'usb' must be a string or a list of strings");
  EXPECT_EQ(ErrorOf("rules: {name: x}\n"), "site.yaml:1: 'rules' must be a list");
  EXPECT_EQ(ErrorOf("rules:\n  - name: Bad_Name\n    match: {usb: \"03e7\"}\n"),
            "site.yaml:2: 'name': 'Bad_Name' is not a valid rule name (lower-case letters, digits "
            "and '-', at most 50 characters)");
  EXPECT_EQ(ErrorOf("rules:\n  - name: x\n    kind: gpu\n    match: {usb: \"03e7\"}\n"),
            "site.yaml:3: rule 'x': 'kind': 'gpu' (expected accelerator or camera)");
}

TEST(ParseRules, BadGlobsAndHexIdsAreErrors) {
  EXPECT_EQ(
      ErrorOf("rules:\n  - name: x\n    match: {usb: \"03e7\"}\n    devnodes: [\"/dev/[ab\"]\n"),
      "site.yaml:4: rule 'x': 'devnodes': bad pattern '/dev/[ab': unclosed '['");
  EXPECT_EQ(
      ErrorOf("rules:\n  - name: x\n    match: {usb: \"03e7:24g5\"}\n"),
      "site.yaml:3: rule 'x': 'usb': bad id '03e7:24g5' (expected 4 hex digits, optionally ':' "
      "and 4 hex digits or '*', e.g. \"03e7:2485\")");
  EXPECT_THAT(ErrorOf("rules:\n  - name: x\n    match: {pci: \"10de0\"}\n"),
              HasSubstr("bad id '10de0'"));
  EXPECT_THAT(ErrorOf("rules:\n  - name: x\n    match: {pci-class: \"030\"}\n"),
              HasSubstr("bad class '030'"));
  EXPECT_THAT(ErrorOf("rules:\n  - name: x\n    match: {property: {A: \"x\\\\\"}}\n"),
              HasSubstr("trailing backslash"));
}

TEST(ParseRules, StructuralMistakes) {
  EXPECT_EQ(ErrorOf("rules:\n  - name: x\n"), "site.yaml:2: rule 'x': no 'match'");
  EXPECT_EQ(ErrorOf("rules:\n  - match: {usb: \"03e7\"}\n"), "site.yaml:2: rule without a 'name'");
  EXPECT_EQ(ErrorOf("rules:\n  - name: x\n    match: {usb: \"03e7\", compatible: \"a,b\"}\n"),
            "site.yaml:3: rule 'x': a match entry uses either udev keys or devicetree keys "
            "(compatible, dt-node), not both");
  EXPECT_EQ(ErrorOf("rules:\n  - name: x\n    match: {usb: \"03e7\"}\n  - name: x\n    match: "
                    "{usb: \"03e7\"}\n"),
            "site.yaml:4: rule 'x' is defined twice in this file");
  EXPECT_THAT(ErrorOf("rules:\n  - name: x\n    match: [\n"),
              HasSubstr("site.yaml:4:1: YAML syntax error"));
  EXPECT_EQ(ErrorOf(""), "(parsed)");  // an empty file adds nothing
}

// A 10 KB document whose aliases copy a list of 1,000 ids into 1,000 match entries: a million
// ids (gigabytes once converted) from a file that looks small.
std::string AliasBomb() {
  std::string yaml = "rules:\n  - name: bomb\n    match: [&e {usb: &u [03e7";
  for (int i = 1; i < 1000; ++i) yaml += ",03e7";
  yaml += "]},\n";
  for (int i = 1; i < 1000; ++i) yaml += "*e,";
  yaml += "*e]\n";
  return yaml;
}

TEST(ParseRules, RefusesADocumentWhoseAliasesExpandPastTheBound) {
  const std::string bomb = AliasBomb();
  ASSERT_LT(bomb.size(), 16u * 1024);
  EXPECT_THAT(ErrorOf(bomb),
              ::testing::AllOf(::testing::StartsWith("site.yaml:3: "), HasSubstr("aliases")));
  // Aliases themselves are fine where the document stays small.
  EXPECT_EQ(ErrorOf("rules:\n  - name: a\n    match: {usb: &ids [\"03e7\", \"1a6e\"]}\n"
                    "  - name: b\n    match: {usb: *ids}\n"),
            "(parsed)");
}

TEST(ParseRules, RefusesADocumentOverTheSizeBoundAndDeepNesting) {
  // Valid YAML (comments), just too much of it.
  std::string big = "rules: []\n";
  while (big.size() <= kMaxRulesBytes) big += "# " + std::string(78, 'x') + "\n";
  EXPECT_THAT(ErrorOf(big), HasSubstr("site.yaml: " + std::to_string(big.size()) + " bytes"));
  // yaml-cpp stops at its own depth bound: an error naming the place, not a crash.
  EXPECT_THAT(ErrorOf("rules: " + std::string(100000, '[')), HasSubstr("site.yaml:1:"));
}

TEST(LoadRules, RefusesAHugeFileWithoutReadingIt) {
  TempDir dir;
  const auto huge = dir.Write("huge.yaml", "rules: []\n");
  std::filesystem::resize_file(huge, 100u << 20);  // sparse: costs no disk
  auto rules = LoadRules({huge});
  ASSERT_FALSE(rules);
  EXPECT_EQ(rules.error().message, huge.string() + ": larger than a rules file may be (" +
                                       std::to_string(kMaxRulesBytes) + " bytes)");
}

TEST(LoadRules, FilesAddOverrideAndDisableByName) {
  TempDir dir;
  auto first = dir.Write("a.yaml", R"(rules:
  - name: movidius-ncs
    match: {usb: "03e7:2485"}
  - name: my-npu
    match: {pci: "1234:5678"}
  - name: camera
    enabled: false
)");
  auto second = dir.Write(
      "b.yaml", "rules:\n  - name: my-npu\n    resource: false\n    match: {pci: \"1234\"}\n");
  auto rules = LoadRules({first, second});
  ASSERT_TRUE(rules) << rules.error().message;
  const Rule* ncs = Find(*rules, "movidius-ncs");
  ASSERT_NE(ncs, nullptr);
  EXPECT_EQ(ncs->match[0].usb, (std::vector<HexId>{{"03e7", "2485"}}));
  EXPECT_EQ(ncs->origin, first.string() + ":2");
  const Rule* mine = Find(*rules, "my-npu");
  ASSERT_NE(mine, nullptr);
  EXPECT_FALSE(mine->resource);
  EXPECT_EQ(Find(*rules, "camera"), nullptr);
  // Built-in order is kept; new rules come after.
  EXPECT_EQ(Names(*rules).front(), "movidius-ncs");
  EXPECT_EQ(Names(*rules).back(), "my-npu");
}

TEST(LoadRules, AnyBadFileFailsTheWholeLoad) {
  TempDir dir;
  auto good = dir.Write("good.yaml", "rules:\n  - name: a\n    match: {usb: \"1234\"}\n");
  auto bad = dir.Write("bad.yaml", "rules:\n  - name: b\n    mach: {usb: \"1234\"}\n");
  auto rules = LoadRules({good, bad});
  ASSERT_FALSE(rules);
  EXPECT_EQ(rules.error().message,
            bad.string() + ":3: rule 'b': unknown key 'mach' \u2014 did you mean 'match'?");
  auto missing = LoadRules({dir.Write("x", "").parent_path() / "nope.yaml"});
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error().message, HasSubstr("nope.yaml: cannot open rules file"));
}

TEST(LabellerCli, BadRulesFileExitsTwoAndPrintsNoLabels) {
  TempDir dir;
  auto bad = dir.Write(
      "bad.yaml", "rules:\n  - name: x\n    match: {usb: \"03e7\"}\n    devnodes: 7\n  - nme: y\n");
  testing::CommandResult cli = testing::RunCommand(
      {testing::LabellerBin(), "--dry-run", "--no-udev", "--config", bad.string()});
  EXPECT_EQ(cli.exit_code, 2);
  EXPECT_EQ(cli.out, "");
  EXPECT_THAT(cli.err, HasSubstr(bad.string() + ":5: rule without a 'name'"));
}

TEST(LabellerCli, RulesFileAddsADevicetreeAccelerator) {
  TempDir dir;
  auto rules = dir.Write("site.yaml",
                         "rules:\n  - name: acme-npu\n    match: {compatible: \"acme,npu-*\"}\n");
  std::filesystem::path base = rules.parent_path() / "sys/firmware/devicetree/base";
  testing::WriteDtNode(base, {"acme,board"});
  testing::WriteDtNode(base / "npu@1000", {"acme,npu-v2"});
  testing::CommandResult cli =
      testing::RunCommand({testing::LabellerBin(), "--dry-run", "--root",
                           rules.parent_path().string(), "--config", rules.string()});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_THAT(cli.out,
              HasSubstr("edgefd.io/accel.acme-npu=true\nedgefd.io/accel.acme-npu.count=1\n"));
}

TEST(LabellerCli, WatchOptionsAreChecked) {
  // --rescan takes seconds from 0 (never) to 86400, fractions allowed; the same in every binary.
  testing::CommandResult bad =
      testing::RunCommand({testing::LabellerBin(), "--dry-run", "--watch", "--rescan", "-1"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--rescan: '-1' is not a number of seconds from 0 to 86400"));
  testing::CommandResult junk =
      testing::RunCommand({testing::LabellerBin(), "--dry-run", "--rescan", "5s"});
  EXPECT_EQ(junk.exit_code, 2);
  EXPECT_THAT(junk.err, HasSubstr("'5s'"));
  testing::CommandResult rules = testing::RunCommand({testing::LabellerBin(), "--print-rules"});
  EXPECT_EQ(rules.exit_code, 0);
  EXPECT_EQ(rules.out, std::string(DefaultRulesYaml()));
}

}  // namespace
}  // namespace edgefd
