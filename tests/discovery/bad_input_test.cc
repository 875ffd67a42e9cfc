// Malformed blobs, odd directory trees and hostile strings: each gives a clear error naming
// the input or a skipped node with a warning, never a crash, hang or invalid label.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <random>

#include "edgefd/discovery/devicetree.h"
#include "edgefd/discovery/discovery.h"
#include "edgefd/discovery/labels.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/paths.h"
#include "edgefd/testing/process.h"

namespace edgefd {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::LabellerBin;
using testing::RunCommand;
using testing::TempDir;
using testing::TestdataBin;

std::string ReadBytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void PutFile(const fs::path& p, std::string_view bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void PutBe32(std::string& blob, size_t offset, uint32_t v) {
  for (int i = 0; i < 4; ++i) blob[offset + i] = static_cast<char>(v >> (24 - 8 * i));
}

// Compiles a .dts given as text with the dtc the build found.
std::string CompileDts(const TempDir& tmp, const std::string& dts) {
  PutFile(tmp.path() / "in.dts", dts);
  auto r = RunCommand({"/usr/bin/dtc", "-q", "-I", "dts", "-O", "dtb", "-o",
                       (tmp.path() / "out.dtb").string(), (tmp.path() / "in.dts").string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return ReadBytes(tmp.path() / "out.dtb");
}

class BadBlob : public ::testing::Test {
 protected:
  void SetUp() override { good_ = ReadBytes(TestdataBin() / "jetson-nano-blog.dtb"); }
  std::string good_;
};

TEST_F(BadBlob, TruncatedBlobIsRejectedWithItsSizes) {
  for (size_t keep : {size_t{0}, size_t{8}, size_t{39}, good_.size() / 2, good_.size() - 1}) {
    auto r = ParseDeviceTreeBlob(good_.substr(0, keep), "cut.dtb");
    ASSERT_FALSE(r.ok()) << keep;
    EXPECT_THAT(r.error().message, HasSubstr("cut.dtb: "));
  }
  auto r = ParseDeviceTreeBlob(good_.substr(0, good_.size() / 2), "cut.dtb");
  EXPECT_THAT(r.error().message, HasSubstr("truncated"));
}

TEST_F(BadBlob, WrongMagicIsNamed) {
  std::string blob = good_;
  PutBe32(blob, 0, 0x12345678);
  auto r = ParseDeviceTreeBlob(blob, "x.dtb");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("x.dtb: bad magic 0x12345678"));
}

TEST_F(BadBlob, HeaderOffsetsPastTheEndAreRejected) {
  // Header fields: 4 totalsize, 8 off_dt_struct, 12 off_dt_strings, 32 size_dt_strings,
  // 36 size_dt_struct.
  for (size_t field : {size_t{8}, size_t{12}, size_t{32}, size_t{36}}) {
    std::string blob = good_;
    PutBe32(blob, field, 0x7ffffff0);
    auto r = ParseDeviceTreeBlob(blob, "hdr.dtb");
    EXPECT_FALSE(r.ok()) << "field at " << field;
  }
  std::string blob = good_;
  PutBe32(blob, 4, static_cast<uint32_t>(good_.size() + 4096));
  auto r = ParseDeviceTreeBlob(blob, "hdr.dtb");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("truncated"));
}

TEST_F(BadBlob, CorruptStructureBytesNeverCrash) {
  std::mt19937 rng(42);
  int rejected = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string blob = good_;
    for (int k = 0; k < 4; ++k) blob[40 + rng() % (blob.size() - 40)] = static_cast<char>(rng());
    auto tree = ParseDeviceTreeBlob(blob, "fuzz.dtb");
    if (!tree.ok()) {
      ++rejected;
      continue;
    }
    Inventory inv;
    inv.board = ExtractBoard(*tree);
    inv.dt_nodes = ExtractNamedNodes(*tree, DefaultDtNodeNames());
    for (const auto& [k, v] : RenderLabels(inv)) {
      ASSERT_TRUE(IsValidLabelKey(k)) << k;
      ASSERT_TRUE(IsValidLabelValue(v)) << v;
    }
  }
  EXPECT_GT(rejected, 0);
}

TEST(BadBlobDepth, AbsurdNestingIsAnErrorNotAStackOverflow) {
  TempDir tmp;
  std::string dts = "/dts-v1/;\n/ {\n";
  for (int i = 0; i < 100; ++i) dts += "n" + std::to_string(i) + " {\n";
  for (int i = 0; i < 100; ++i) dts += "};\n";
  dts += "};\n";
  auto r = ParseDeviceTreeBlob(CompileDts(tmp, dts), "deep.dtb");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("deep.dtb: nodes nested deeper than 64"));
}

TEST(BadStrings, HugeAndBinaryCompatiblesStillGiveValidLabels) {
  TempDir tmp;
  std::string huge(10 * 1024, 'a');
  std::string dts = "/dts-v1/;\n/ {\n compatible = \"vendor," + huge +
                    "\", \"\\xff\\xfe\\x01\\x7f,\\t odd \\\\ chars \", \",\", \"\";\n"
                    " model = [00 ff 41 42];\n"
                    " gpu { compatible = \"x,y\"; status = [6f 6b 61 79]; };\n};\n";
  auto tree = ParseDeviceTreeBlob(CompileDts(tmp, dts), "odd.dtb");
  ASSERT_TRUE(tree.ok()) << tree.error().message;
  Inventory inv;
  inv.board = ExtractBoard(*tree);
  inv.dt_nodes = ExtractNamedNodes(*tree, DefaultDtNodeNames());
  Labels labels = RenderLabels(inv);
  for (const auto& [k, v] : labels) {
    EXPECT_TRUE(IsValidLabelKey(k)) << k;
    EXPECT_TRUE(IsValidLabelValue(v)) << v;
  }
  // The 10 kB string is cut to 63 characters with a stable hash suffix.
  std::string name = CompatibleToLabelName("vendor," + huge);
  EXPECT_EQ(name.size(), 63u);
  EXPECT_EQ(labels.count(std::string(kDtLabelPrefix) + name), 1u);
  EXPECT_EQ(name, CompatibleToLabelName("vendor," + huge));
  EXPECT_NE(name, CompatibleToLabelName("vendor," + huge + "b"));
  // A status without its NUL still reads as "okay".
  EXPECT_EQ(labels[std::string(kDtLabelPrefix) + "x-y"], "1");
}

TEST(BadStrings, RandomBytesAlwaysSanitiseToValidLabels) {
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::string raw(rng() % 200, '\0');
    for (char& c : raw) c = static_cast<char>(rng());
    std::string name = SanitizeLabelName(raw);
    if (!name.empty()) {
      ASSERT_TRUE(IsValidLabelKey("edgefd.io/" + name)) << name;
    }
    ASSERT_TRUE(IsValidLabelValue(SanitizeLabelValue(raw)));
    std::string compat = CompatibleToLabelName(raw);
    if (!compat.empty()) {
      ASSERT_TRUE(IsValidLabelKey(std::string(kDtLabelPrefix) + compat));
    }
  }
}

TEST(BadTree, SymlinkCyclesAreNotFollowed) {
  TempDir tmp;
  fs::path base = tmp.path() / "base";
  PutFile(base / "compatible", std::string("a,b\0", 4));
  PutFile(base / "cpus/cpu@0/compatible", std::string("arm,cortex-a53\0", 15));
  fs::create_directory_symlink("..", base / "cpus/cpu@0/loop");
  std::vector<std::string> warnings;
  auto tree = ReadDeviceTreeDir(base, &warnings);
  ASSERT_TRUE(tree.ok());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("cpu@0/loop: symlink, not followed"));
  EXPECT_EQ(ExtractNamedNodes(*tree, DefaultDtNodeNames()).size(), 1u);
}

TEST(BadTree, AbsurdDepthIsCutWithAWarning) {
  TempDir tmp;
  fs::path p = tmp.path() / "base";
  for (int i = 0; i < 100; ++i) p /= "n";
  fs::create_directories(p);
  std::vector<std::string> warnings;
  auto tree = ReadDeviceTreeDir(tmp.path() / "base", &warnings);
  ASSERT_TRUE(tree.ok());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("deeper than 64 levels, skipping subtree"));
}

TEST(BadTree, FifosAndPropertiesWithoutNulDoNotHangOrBreak) {
  TempDir tmp;
  fs::path base = tmp.path() / "base";
  PutFile(base / "compatible", "acme,board");  // no NUL, as a hand-made tree may have
  PutFile(base / "gpu/compatible", "acme,gpu\xff\xfe");
  ASSERT_EQ(::mkfifo((base / "gpu/status").c_str(), 0600), 0);
  std::vector<std::string> warnings;
  auto tree = ReadDeviceTreeDir(base, &warnings);
  ASSERT_TRUE(tree.ok());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("gpu/status: not a regular file, skipping"));
  Inventory inv;
  inv.board = ExtractBoard(*tree);
  inv.dt_nodes = ExtractNamedNodes(*tree, DefaultDtNodeNames());
  Labels labels = RenderLabels(inv);
  EXPECT_EQ(labels["beta.devicetree.org/acme-board"], "1");
  EXPECT_EQ(labels["beta.devicetree.org/acme-gpu"], "1");
}

TEST(BadTree, UnreadableFilesAreSkippedWithAWarning) {
  // Root reads files whatever their mode, so as root the labeller runs as nobody (setpriv),
  // as it would in the unprivileged DaemonSet.
  TempDir tmp;
  fs::path base = tmp.path() / "sys/firmware/devicetree/base";
  PutFile(base / "compatible", std::string("a,b\0", 4));
  PutFile(base / "gpu/compatible", std::string("x,y\0", 4));
  PutFile(base / "npu@1/compatible", std::string("x,z\0", 4));
  fs::permissions(tmp.path(),
                  fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  fs::permissions(base / "gpu/compatible", fs::perms::none);
  fs::permissions(base / "npu@1", fs::perms::none);
  std::vector<std::string> argv = {LabellerBin(), "--dry-run", "--root", tmp.path().string()};
  if (::geteuid() == 0) {
    std::vector<std::string> as_nobody = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                                          "--clear-groups"};
    auto probe = as_nobody;
    probe.push_back(LabellerBin());
    probe.push_back("--version");
    if (RunCommand(probe).exit_code != 0) {
      GTEST_SKIP() << "nobody cannot run " << LabellerBin() << " (a parent is not searchable)";
    }
    argv.insert(argv.begin(), as_nobody.begin(), as_nobody.end());
  }
  auto r = RunCommand(argv);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("gpu/compatible: Permission denied, skipping property"));
  EXPECT_THAT(r.err, HasSubstr("npu@1: Permission denied, skipping node"));
  EXPECT_THAT(r.out, HasSubstr("beta.devicetree.org/a-b=1\n"));
  EXPECT_EQ(r.out.find("x-y"), std::string::npos);
}

// The CLI turns each of these into one line on stderr naming the input, and exit status 2.
class CliBadInput : public ::testing::Test {
 protected:
  testing::CommandResult Run(std::vector<std::string> args) {
    args.insert(args.begin(), LabellerBin());
    return RunCommand(args);
  }
  TempDir tmp_;
};

TEST_F(CliBadInput, MalformedBlobsExitTwoNamingTheFile) {
  std::string good = ReadBytes(TestdataBin() / "jetson-nano-blog.dtb");
  PutFile(tmp_.path() / "cut.dtb", good.substr(0, good.size() / 3));
  PutFile(tmp_.path() / "text.dtb", "this is not a devicetree at all, just text\n");
  struct Case {
    std::string file, expect;
  } cases[] = {
      {(tmp_.path() / "cut.dtb").string(), "truncated"},
      {(tmp_.path() / "text.dtb").string(), "bad magic"},
      {(tmp_.path() / "missing.dtb").string(), "cannot open: No such file or directory"},
      {tmp_.path().string(), "is a directory"},
  };
  for (const Case& c : cases) {
    auto r = Run({"--dry-run", "--dtb", c.file});
    EXPECT_EQ(r.exit_code, 2) << c.file;
    EXPECT_EQ(r.out, "") << c.file;
    EXPECT_THAT(r.err, HasSubstr(c.file + ": ")) << c.file;
    EXPECT_THAT(r.err, HasSubstr(c.expect)) << c.file;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

TEST_F(CliBadInput, MalformedLiveFdtIsAnError) {
  PutFile(tmp_.path() / "sys/firmware/fdt", "garbage");
  auto r = Run({"--dry-run", "--root", tmp_.path().string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr((tmp_.path() / "sys/firmware/fdt").string() + ": "));
}

TEST_F(CliBadInput, BadUsageExitsTwo) {
  for (auto args : std::vector<std::vector<std::string>>{{"--dry-run", "--output", "xml"},
                                                         {"--dry-run", "--bogus"},
                                                         {"--dry-run", "--dtb"},
                                                         {"--dry-run", "stray"},
                                                         {"--dry-run", "--node", "bad name!"},
                                                         {"--dry-run", "--log-level", "loud"}}) {
    auto r = Run(args);
    EXPECT_EQ(r.exit_code, 2) << args[1];
    EXPECT_THAT(r.err, HasSubstr("edgefd-labeller: ")) << args[1];
    EXPECT_EQ(r.out, "");
  }
}

}  // namespace
}  // namespace edgefd
