#include "edgefd/common/memory.h"

#include <gtest/gtest.h>

#include <string>

namespace edgefd {
namespace {

// One mapping as /proc/self/smaps prints it (the fields the decision reads, and one it skips).
std::string Mapping(const std::string& range, const std::string& perms, const std::string& path,
                    int rss_kib, int anonymous_kib) {
  return range + " " + perms + " 00000000 fe:01 1234    " + path + "\n" +
         "Size:                 64 kB\n" + "Rss:                 " + std::to_string(rss_kib) +
         " kB\n" + "Anonymous:           " + std::to_string(anonymous_kib) + " kB\n" +
         "VmFlags: rd ex mr mw me\n";
}

// The program's own text at 0x1000 (with `own_perms`), libgnutls' read-only text, its
// relocated (copied) part and its data, and libc's text.
std::string Smaps(int rss_kib, const std::string& own_perms = "r-xp") {
  return Mapping("00001000-00002000", own_perms, "/usr/bin/edgefd-labeller-agent", rss_kib, 0) +
         Mapping("70000000-70010000", "r-xp", "/usr/lib/x86_64-linux-gnu/libgnutls.so.30", rss_kib,
                 0) +
         Mapping("70010000-70011000", "r--p", "/usr/lib/x86_64-linux-gnu/libgnutls.so.30", rss_kib,
                 rss_kib == 0 ? 0 : 4) +
         Mapping("70011000-70012000", "rw-p", "/usr/lib/x86_64-linux-gnu/libgnutls.so.30", rss_kib,
                 0) +
         Mapping("70020000-70030000", "r-xp", "/usr/lib/x86_64-linux-gnu/libc.so.6", rss_kib, 0) +
         Mapping("7ff00000-7ff21000", "rw-p", "[stack]", rss_kib, rss_kib);
}

TEST(PagesToRelease, OnlyTheCleanReadOnlyMappingsOfUnusedLibraries) {
  auto ranges = PagesToRelease(Smaps(8), 0x1800);
  ASSERT_EQ(ranges.size(), 1u);
  EXPECT_EQ(ranges[0].begin, 0x70000000u);
  EXPECT_EQ(ranges[0].end, 0x70010000u);
}

// Under qemu-user guest code is mapped without PROT_EXEC (qemu runs its translation), and
// MADV_DONTNEED on libgnutls' clean text there crashed edgefd-labeller-agent at exit (armhf
// suite, 36 tests).
TEST(PagesToRelease, NothingWhereTheCallersCodeIsNotExecutableOrNotResident) {
  EXPECT_TRUE(PagesToRelease(Smaps(8, "r--p"), 0x1800).empty());
  EXPECT_TRUE(PagesToRelease(Smaps(0), 0x1800).empty());
}

TEST(PagesToRelease, NothingWhereTheCallersCodeIsInNoMapping) {
  EXPECT_TRUE(PagesToRelease(Smaps(8), 0x9000).empty());
  EXPECT_TRUE(PagesToRelease("", 0x1800).empty());
  EXPECT_TRUE(PagesToRelease("garbage\nRss: 12 kB\n\n", 0x1800).empty());
}

}  // namespace
}  // namespace edgefd
