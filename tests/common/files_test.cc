#include "edgefd/common/files.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "edgefd/testing/files.h"
#include "edgefd/testing/measure.h"

namespace edgefd {
namespace {

using testing::TempDir;
using testing::WriteFile;

// A small file read under a large limit costs what it holds, not the limit. The idle daemons
// read /proc/self/smaps (limit 16 MiB) at each release of start-up memory, and the whole limit
// used to be allocated and zero-filled each time: the agent's peak RSS went from 11 to 29 MiB.
TEST(ReadFileAtMost, ASmallFileCostsItsSizeNotTheLimit) {
  TempDir dir;
  WriteFile(dir.path() / "small", "hello\n");
  const long before_kib = testing::ProcStatus(::getpid(), "VmHWM");
  ASSERT_GT(before_kib, 0);
  auto text = ReadFileAtMost(dir.path() / "small", 128 << 20, "test file");
  const long grew_kib = testing::ProcStatus(::getpid(), "VmHWM") - before_kib;
  ASSERT_TRUE(text.ok()) << text.error().message;
  EXPECT_EQ(*text, "hello\n");
  EXPECT_LT(grew_kib, 16 * 1024);
}

TEST(ReadFileAtMost, ReadsUpToTheLimitAndNotAByteMore) {
  TempDir dir;
  const std::string big(300 * 1024 + 7, 'x');  // more than one read
  WriteFile(dir.path() / "big", big);
  auto whole = ReadFileAtMost(dir.path() / "big", big.size(), "test file");
  ASSERT_TRUE(whole.ok()) << whole.error().message;
  EXPECT_EQ(*whole, big);
  auto over = ReadFileAtMost(dir.path() / "big", big.size() - 1, "test file");
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.error().message.find("larger than a test file may be"), std::string::npos)
      << over.error().message;
  // An endless file ends at the limit.
  auto zero = ReadFileAtMost("/dev/zero", 1 << 20, "test file");
  EXPECT_FALSE(zero.ok());
  auto empty = ReadFileAtMost("/dev/null", 1 << 20, "test file");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");
  EXPECT_FALSE(ReadFileAtMost(dir.path() / "missing", 10, "test file").ok());
}

}  // namespace
}  // namespace edgefd
