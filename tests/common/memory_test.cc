#include "edgefd/common/memory.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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
// ReleaseStartUpMemory's scope: every regular file the process maps read-only (the program,
// every library), still never a mapping with a copied page, a writable one, a device's or a
// deleted file's.
TEST(PagesToRelease, EveryCleanReadOnlyMappingOfARegularFileInTheWideScope) {
  const std::string smaps =
      Smaps(8) + Mapping("70040000-70041000", "r--s", "/dev/dri/card0", 4, 0) +
      Mapping("70050000-70051000", "r--p", "/sys/bus/pci/devices/0000:00:02.0/rom", 4, 0) +
      Mapping("70060000-70070000", "r-xp", "/usr/lib/libold.so.1 (deleted)", 8, 0) +
      Mapping("70080000-70090000", "r--p", "/usr/lib/locale/C.utf8/LC_CTYPE", 8, 0);
  auto ranges = PagesToRelease(smaps, 0x1800, ReleaseScope::kEveryFile);
  std::vector<std::pair<uintptr_t, uintptr_t>> got;
  for (const PageRange& r : ranges) got.emplace_back(r.begin, r.end);
  EXPECT_EQ(got, (std::vector<std::pair<uintptr_t, uintptr_t>>{{0x1000, 0x2000},
                                                               {0x70000000, 0x70010000},
                                                               {0x70020000, 0x70030000},
                                                               {0x70080000, 0x70090000}}));
  // The narrow scope of the same smaps: libgnutls' text only.
  EXPECT_EQ(PagesToRelease(smaps, 0x1800).size(), 1u);
}

TEST(PagesToRelease, NothingWhereTheCallersCodeIsNotExecutableOrNotResident) {
  for (ReleaseScope scope : {ReleaseScope::kUnusedLibraries, ReleaseScope::kEveryFile}) {
    EXPECT_TRUE(PagesToRelease(Smaps(8, "r--p"), 0x1800, scope).empty());
    EXPECT_TRUE(PagesToRelease(Smaps(0), 0x1800, scope).empty());
  }
}

TEST(PagesToRelease, NothingWhereTheCallersCodeIsInNoMapping) {
  EXPECT_TRUE(PagesToRelease(Smaps(8), 0x9000).empty());
  EXPECT_TRUE(PagesToRelease("", 0x1800).empty());
  EXPECT_TRUE(PagesToRelease("garbage\nRss: 12 kB\n\n", 0x1800).empty());
}

bool Listed(std::string_view path) {
  const std::string_view name = path.substr(path.rfind('/') + 1);
  for (size_t i = 0; i < kUnusedLibraryCount; ++i) {
    if (name.starts_with(kUnusedLibraries[i])) return true;
  }
  return false;
}

// KiB resident in the read-only mappings of the files `chosen` picks (by path) that hold no
// copied page: what the release gives back. `mappings` counts those mappings.
long ResidentCleanKiB(int* mappings, bool (*chosen)(std::string_view path) = Listed) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool candidate = false;
  long rss = 0, total = 0;
  *mappings = 0;
  auto close = [&](long anonymous) {
    if (candidate && anonymous == 0) {
      total += rss;
      ++*mappings;
    }
    candidate = false;
  };
  while (std::getline(smaps, line)) {
    std::istringstream in(line);
    std::string range, perms, offset, dev, inode, path;
    if (line.find('-') < line.find(' ') && (in >> range >> perms >> offset >> dev >> inode)) {
      in >> path;
      candidate = !path.empty() && path[0] == '/' && perms[1] != 'w' && chosen(path);
      rss = 0;
      continue;
    }
    if (line.rfind("Rss:", 0) == 0) rss = std::stol(line.substr(4));
    if (line.rfind("Anonymous:", 0) == 0) close(std::stol(line.substr(10)));
  }
  return total;
}

// libcurl4 loads GnuTLS, Kerberos, LDAP, ... which edgefd never calls; the loader touched their
// pages, and the release unmaps every clean one of them (a later touch maps it again from the
// page cache: nothing is lost).
TEST(ReleaseStartUpMemory, LeavesNoCleanPageOfAnUnusedLibraryResident) {
  void* curl = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (curl == nullptr) GTEST_SKIP() << "libcurl.so.4 is not installed: " << dlerror();
  std::ifstream in("/proc/self/smaps");
  const std::string smaps((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (PagesToRelease(smaps, reinterpret_cast<uintptr_t>(&ReleaseUnusedLibraryPages)).empty()) {
    GTEST_SKIP() << "this smaps is not how the kernel runs the process (qemu-user): nothing is "
                    "released here";
  }
  int mappings = 0;
  EXPECT_GT(ResidentCleanKiB(&mappings), 0);
  ASSERT_GT(mappings, 0) << "none of kUnusedLibraries is loaded with libcurl";
  ReleaseStartUpMemory();
  EXPECT_EQ(ResidentCleanKiB(&mappings), 0);
  // The libraries still work after the release: libcurl calls into them as it starts.
  using VersionFn = const char* (*)();
  auto version = reinterpret_cast<VersionFn>(dlsym(curl, "curl_version"));
  ASSERT_NE(version, nullptr);
  EXPECT_NE(std::string(version()).find("libcurl"), std::string::npos);
}

bool IsZlib(std::string_view path) {
  return path.ends_with("/libz.so.1") || path.find("/libz.so.1.") != std::string_view::npos;
}

// Start-up touches every library, and most of what it touched the idle program never touches
// again (OpenSSL's initialisation and handshake, parsing, set-up): the release gives back the
// clean pages of any library, not only of the unused ones, and the library still works.
TEST(ReleaseStartUpMemory, LeavesNoCleanPageOfALibraryInUseResident) {
  void* z = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
  if (z == nullptr) GTEST_SKIP() << "libz.so.1 is not installed: " << dlerror();
  std::ifstream in("/proc/self/smaps");
  const std::string smaps((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (PagesToRelease(smaps, reinterpret_cast<uintptr_t>(&ReleaseUnusedLibraryPages),
                     ReleaseScope::kEveryFile)
          .empty()) {
    GTEST_SKIP() << "this smaps is not how the kernel runs the process (qemu-user): nothing is "
                    "released here";
  }
  using VersionFn = const char* (*)();
  auto version = reinterpret_cast<VersionFn>(dlsym(z, "zlibVersion"));
  ASSERT_NE(version, nullptr);
  const std::string before = version();
  int mappings = 0;
  EXPECT_GT(ResidentCleanKiB(&mappings, IsZlib), 0);
  ASSERT_GT(mappings, 0);
  ReleaseStartUpMemory();
  EXPECT_EQ(ResidentCleanKiB(&mappings, IsZlib), 0);
  EXPECT_EQ(version(), before);
}

}  // namespace
}  // namespace edgefd
