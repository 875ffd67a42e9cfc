// The checkpoint file: what a restarted plugin knows about the claims it prepared.
#include "edgefd/dra/checkpoint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "dra_test_support.h"

namespace edgefd::dra {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::TempDir;

PreparedClaims TwoClaims() {
  PreparedClaims claims;
  claims["uid-1"] = {
      "uid-1",
      "default",
      "cores",
      {{"cpus", "rock5b", "cpu4", {"edgefd.io/device=cpu4", "edgefd.io/device=claim-uid-1"}}},
      {"EDGEFD_BIG_CPUS=4"}};
  claims["uid-2"] = {"uid-2", "ml", "tpu", {{"tpu", "rock5b", "edgetpu-2-1", {}}}, {}};
  return claims;
}

TEST(Checkpoint, RoundTripsAndAMissingFileIsEmpty) {
  TempDir dir;
  Checkpoint cp(dir.path() / "checkpoint.json");
  auto empty = cp.Load();
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  ASSERT_TRUE(cp.Save(TwoClaims()));
  auto loaded = cp.Load();
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(*loaded, TwoClaims());
}

TEST(Checkpoint, CorruptionVersionsAndGarbageAreErrorsNamingTheFile) {
  TempDir dir;
  const fs::path path = dir.path() / "checkpoint.json";
  Checkpoint cp(path);
  ASSERT_TRUE(cp.Save(TwoClaims()));
  std::string good;
  {
    std::ifstream in(path);
    good.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto expect_error = [&](const std::string& content, const std::string& what) {
    std::ofstream(path, std::ios::trunc) << content;
    auto loaded = cp.Load();
    ASSERT_FALSE(loaded) << content;
    EXPECT_THAT(loaded.error().message, HasSubstr(path.string()));
    EXPECT_THAT(loaded.error().message, HasSubstr(what)) << content;
  };
  std::string edited = good;
  edited.replace(edited.find("cpu4"), 4, "cpu5");  // a bit flipped on disk
  expect_error(edited, "checksum");
  std::string v2 = good;
  v2.replace(v2.find("\"version\": 1"), 12, "\"version\": 2");
  expect_error(v2, "version 2");
  expect_error("{\"version\": \"one\"}", "version");
  expect_error("{\"claims\": {}}", "version missing");
  expect_error("{\"version\": 1, \"claims\": []}", "no claims");
  expect_error("not json", "corrupt checkpoint");
  expect_error("[1,2]", "not a JSON object");
  expect_error("", "corrupt checkpoint");
}

// The device plugin and the DRA driver read the file alike: never through a symbolic link,
// which would let whoever can write the directory choose what they read.
TEST(Checkpoint, ASymbolicLinkIsNotFollowed) {
  TempDir dir;
  Checkpoint real(dir.path() / "real.json");
  ASSERT_TRUE(real.Save(TwoClaims()));
  fs::create_symlink(dir.path() / "real.json", dir.path() / "checkpoint.json");
  Checkpoint cp(dir.path() / "checkpoint.json");
  auto text = cp.Read();
  ASSERT_FALSE(text);
  EXPECT_THAT(text.error().message, HasSubstr("symbolic link"));
  EXPECT_THAT(text.error().message, HasSubstr((dir.path() / "checkpoint.json").string()));
  EXPECT_FALSE(cp.Load());
  // A directory in its place is no file either.
  fs::remove(dir.path() / "checkpoint.json");
  fs::create_directory(dir.path() / "checkpoint.json");
  EXPECT_FALSE(cp.Load());
}

TEST(Checkpoint, TheVersionOfANewerFormatIsReadOut) {
  EXPECT_EQ(deviceplugin::DraCheckpointVersion(R"({"version": 2, "claims": 7})"), 2);
  EXPECT_EQ(deviceplugin::DraCheckpointVersion("not json"), std::nullopt);
  EXPECT_EQ(deviceplugin::DraCheckpointVersion(R"({"claims": {}})"), std::nullopt);
}

}  // namespace
}  // namespace edgefd::dra
